"""The flat contract between the structural JSON scan and the filter: sites, not tokens.

A 79 kB body has ~7,000 tokens and ~800 that may hold an identifier. The compiled core
(`rules._native.json_structure`) does the one pass over the bytes and hands Python only:

* `sites()`: `(token index, decoded value, phone_context)` of every token that may hold an
  identifier: under a phone context (a phone key on its path, or an object typed as a phone:
  `{"type": "phone", …}`), or by its text (`could_hold`) or size (a number ≥ 10**6);
* `token(i)` / `node(i)`: the `jsonspan.Token` / `Node` a splice needs (a handful);
* `overlapping(start, end)`: the tokens a text candidate's byte span touches;
* `records(kind_of)`: `(record, kind, value)` of the values whose key names a company field
  (rules/detect/company.py); record -1 for a value outside every record (the body itself).

`Reference` is the same contract over the pure-Python `jsonspan.scan`; tests/test_native_json.py
proves with hypothesis that both give the same answers on every document.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from rules.detect import jsonspan
from rules.detect.contact import TYPE_KEYS, is_phone_key, is_phone_type

PHONE_SIZE = 10**6  # a number below has fewer than seven digits: no phone
Site = tuple[int, str | int | float, bool]  # token index, value, phone context
Field = tuple[int, str, str | int | float]  # record node, field kind, value (company fields)
_MARKS = frozenset("@%&\\")  # an address, or an encoding that may hide one (%40, &#64;, \u0040)


Identify = Callable[[str | int | float, bool], tuple[tuple[object, str], ...]]
"""A site's identifiers from its value and phone context (rules.detect.match.identifiers)."""


class Structure(Protocol):
    def sites(self) -> list[Site]: ...

    def identified(
        self, memo: object, identify: Identify
    ) -> Sequence[tuple[int, tuple[Any, ...]]]:
        """`(index, identify(value, phone_context))` of the sites it finds something in; a
        compiled structure asks once per distinct token and keeps the answer in `memo` (and
        answers a `Sites` sequence: rules/native/src/gather.rs reads it without tuples)."""

    def token(self, index: int) -> jsonspan.Token: ...

    def node(self, index: int) -> jsonspan.Node: ...

    def overlapping(self, start: int, end: int) -> list[int]: ...

    def records(self, kind_of: Callable[[str], str | None]) -> list[Field]: ...

    def __len__(self) -> int: ...


def could_hold(text: str) -> bool:
    """Could `text` hold an identifier? A cheap superset of `rules.detect.match.candidate`:
    any non-ASCII text, `@`, `%`, `&`, a backslash, seven digits or `linkedin` in any case."""
    if not text.isascii() or not _MARKS.isdisjoint(text):
        return True
    return sum(c.isdigit() for c in text) >= 7 or "linkedin" in text.lower()


class Reference:
    """The contract over a full `jsonspan.Scan` (pure Python, or the compiled full scan)."""

    def __init__(self, scan: jsonspan.Scan) -> None:
        self.scan = scan
        self.starts = [t.start for t in scan.tokens]

    def sites(self) -> list[Site]:
        typed = typed_points(self.scan)
        out: list[Site] = []
        for index, token in enumerate(self.scan.tokens):
            ctx = token.kind is not jsonspan.Kind.KEY and (
                token.parent in typed or _phone_path(token)
            )
            value = token.value
            if ctx or (could_hold(value) if isinstance(value, str) else abs(value) >= PHONE_SIZE):
                out.append((index, value, ctx))
        return out

    def identified(self, memo: object, identify: Identify) -> list[tuple[int, tuple[Any, ...]]]:
        return [(index, ids) for index, value, ctx in self.sites() if (ids := identify(value, ctx))]

    def token(self, index: int) -> jsonspan.Token:
        return self.scan.tokens[index]

    def node(self, index: int) -> jsonspan.Node:
        return self.scan.nodes[index]

    def overlapping(self, start: int, end: int) -> list[int]:
        tokens = self.scan.tokens
        index = max(0, bisect_right(self.starts, start) - 1)
        out = []
        while index < len(tokens) and tokens[index].start < end:
            if tokens[index].end > start:
                out.append(index)
            index += 1
        return out

    def records(self, kind_of: Callable[[str], str | None]) -> list[Field]:
        out: list[Field] = []
        for token in self.scan.tokens:
            if token.kind is jsonspan.Kind.KEY:
                continue
            name = token.key if token.key is not None else _list_key(token.path)
            kind = kind_of(name) if name is not None else None
            if kind is not None:
                out.append((token.record, kind, token.value))
        return out

    def __len__(self) -> int:
        return len(self.scan.tokens)


def _list_key(path: jsonspan.Path) -> str | None:
    """For a list element: the key of its list (`business_emails`)."""
    return next((p for p in reversed(path) if isinstance(p, str)), None)


def _phone_path(token: jsonspan.Token) -> bool:
    return any(type(part) is str and is_phone_key(part) for part in token.path)


def typed_points(found: jsonspan.Scan) -> set[int]:
    """Objects that say they are a phone: `{"type": "phone", …}`, `{"channel": "whatsapp"}`."""
    return {
        t.parent for t in found.tokens
        if t.kind is jsonspan.Kind.STRING and t.key in TYPE_KEYS
        and type(t.value) is str and is_phone_type(t.value)
    }


def reference(
    body: bytes, meta_keys: frozenset[str] = frozenset(), max_depth: int = 512
) -> Reference:
    """The pure-Python implementation of the contract."""
    return Reference(jsonspan.scan(body, meta_keys, max_depth))
