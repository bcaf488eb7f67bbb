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
    leaked = removed = 0
    for path in data.small[:4] + data.large[:1]:
        status, body = http_get(server.url + path, KEYS[0])
        if status != 200:
            return f"HTTP {status}"
        present = strings_of(json.loads(body))
        expected = strings_of(data.docs[path]) & data.denied_raw[KEYS[0]]
        leaked += len(expected & present)
        removed += len(expected - present)
    return verdict(removed, leaked)
