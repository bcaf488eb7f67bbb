"""Before measuring: does a contender's response for key 0 still carry key 0's denied values?"""

from __future__ import annotations

import json
from typing import Any

from bench.data import KEYS, Data
from bench.procs import Server, http_get


def strings_of(node: Any) -> set[str]:
    """Every string anywhere in a decoded JSON document."""
    out: set[str] = set()
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, dict):
            stack.extend(n.values())
        elif isinstance(n, list):
            stack.extend(n)
        elif isinstance(n, str):
            out.add(n)
    return out


def verdict(removed: int, leaked: int) -> str:
    if removed and not leaked:
        return f"yes ({removed} removed)"
    if leaked and not removed:
        return "no (pass-through)"
    return f"PARTIAL ({removed} removed, {leaked} left)"


def check_filtering(server: Server, data: Data) -> str:
    return check_key(server, data, data.small[:4] + data.large[:1], KEYS[0],
                     data.denied_raw[KEYS[0]])


def check_lists(server: Server, data: Data) -> str:
    """The lists key: its payload values are denied only through its named lists."""
    if data.lists is None:
        return "?"
    return check_key(server, data, data.small, data.lists.key, data.lists.denied_raw)


def check_key(server: Server, data: Data, paths: list[str], key: str, denied: set[str]) -> str:
    leaked = removed = 0
    for path in paths:
        status, body = http_get(server.url + path, key)
        if status != 200:
            return f"HTTP {status}"
        present = strings_of(json.loads(body))
        expected = strings_of(data.docs[path]) & denied
        leaked += len(expected & present)
        removed += len(expected - present)
    return verdict(removed, leaked)
