"""mitmproxy addon (contender 8): the same JSON filtering as the Lua body filter.

    mitmdump --mode reverse:http://127.0.0.1:PORT -s bench/mitm_filter.py

Denied values come from the file named by BENCH_DENY_FILE: lines `<api key>\t<value>`, values
exactly as they appear in responses (no normalisation: that is denyproxy's job, not this one's).
In a list, a denied string or a contact point (`{"phone_number": x, "line_type": ...}`) holding
one goes; in an object, such a value becomes null.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict

from mitmproxy import http  # type: ignore[import-not-found]  # only in bench/.venv-mitm

META = frozenset({
    "verified", "valid", "line_type", "type", "label", "status", "primary", "is_primary",
    "confidence", "score", "source", "sources", "carrier", "country_code", "kind",
})


def _load(path: str) -> dict[str, set[str]]:
    deny: dict[str, set[str]] = defaultdict(set)
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            key, _, value = line.rstrip("\n").partition("\t")
            deny[key].add(value)
    return dict(deny)


DENY = _load(os.environ["BENCH_DENY_FILE"])


def _point(node: dict[str, object], denied: set[str]) -> bool:
    hits = [k for k, v in node.items() if isinstance(v, str) and v in denied]
    return len(hits) == 1 and all(k in META for k in node if k != hits[0])


def _gone(value: object, denied: set[str]) -> bool:
    if isinstance(value, str):
        return value in denied
    return isinstance(value, dict) and _point(value, denied)


def walk(node: object, denied: set[str]) -> object:
    if isinstance(node, dict):
        return {k: None if _gone(v, denied) else walk(v, denied) for k, v in node.items()}
    if isinstance(node, list):
        return [walk(v, denied) for v in node if not _gone(v, denied)]
    return node


def response(flow: http.HTTPFlow) -> None:
    denied = DENY.get(flow.request.headers.get("X-API-Key", ""))
    if not denied or flow.response is None:
        return
    if "json" not in flow.response.headers.get("Content-Type", ""):
        return
    try:
        doc = json.loads(flow.response.content or b"")
    except ValueError:
        return
    flow.response.content = json.dumps(walk(doc, denied), separators=(",", ":")).encode()
