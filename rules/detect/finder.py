"""Which finder serves the scanner: the compiled core when it is built, else the reference.

Two contracts, each with its pure-Python reference: the text finder (rules/detect/textfind.py):
`find_text(text)` with spans in characters, `find_bytes(body)` with spans in bytes; and the
structural JSON scan (rules/detect/jsonspan.py): `scan_json(body, meta_keys, max_depth) -> Scan`,
and its flat form the filter uses (rules/detect/structure.py): `json_structure(...) -> Structure`.
The compiled core (`rules._native`, built from rules/native by `pip install .` when a Rust
toolchain is present) does the same work several times faster; without it the proxy still
works, slower, and says so once at start-up (`announce()`).
`DENYPROXY_REQUIRE_NATIVE=1` turns the fallback into an import error (CI proves the core).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from types import ModuleType
from typing import Any, Generic, NamedTuple, TypeVar

from rules.detect import jsonspan, structure, textfind
from rules.detect.contact import TYPE_KEYS, describes, is_phone_key, is_phone_type
from rules.detect.textfind import Raw

__all__ = ["BACKEND", "Raw", "announce", "find_bytes", "find_text", "json_structure", "scan_json"]

log = logging.getLogger(__name__)


def _load_native() -> ModuleType | None:
    try:
        from rules import _native  # type: ignore[attr-defined]  # built by setuptools-rust
    except ImportError:
        return None
    return _native  # type: ignore[no-any-return]  # an extension module, untyped


_native = _load_native()
BACKEND = "native" if _native is not None else "python"


def _native_text(text: str) -> list[Raw]:
    """The compiled core over the text's UTF-8; spans come back in characters."""
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: only the reference reads them as Python does
        return textfind.find_text(text)
    return _native_find(data, True)


def _native_bytes(body: bytes) -> list[Raw]:
    return _native_find(body, False)


# What the compiled scan builds its results from: the reference's own classes and rules.
_JSON_CONTEXT = (
    jsonspan.Token, jsonspan.Node, jsonspan.Kind.STRING, jsonspan.Kind.KEY,
    jsonspan.Kind.NUMBER, describes, jsonspan.JsonBodyError, is_phone_key, is_phone_type,
    TYPE_KEYS,
)


# What the rules say of each object key (phone key? describing?), per meta-key set: the
# compiled scan asks Python once per key, not once per key and body, and keeps the answers on
# its side (`_native.KeyFacts`: no Python string per key and body). Bounded: keys come from
# upstream bodies.
_KEY_FACTS: dict[frozenset[str], object] = {}
_MAX_KEYS = 65_536


def _facts(meta_keys: frozenset[str]) -> object:
    facts = _KEY_FACTS.get(meta_keys)
    if facts is None:
        if len(_KEY_FACTS) > 16:
            _KEY_FACTS.clear()
        assert _native is not None  # only the compiled scans keep key facts
        facts = _KEY_FACTS[meta_keys] = _native.KeyFacts(_MAX_KEYS)
    return facts


def _native_json(
    body: bytes, meta_keys: frozenset[str] = frozenset(), max_depth: int = 512
) -> jsonspan.Scan:
    """`jsonspan.scan` compiled: the same tokens, nodes and `JsonBodyError`s."""
    tokens, nodes = _native_json_scan(
        body, meta_keys, max_depth, _JSON_CONTEXT, _facts(meta_keys)
    )
    return jsonspan.Scan(tokens, nodes)


def _native_structure(
    body: bytes, meta_keys: frozenset[str] = frozenset(), max_depth: int = 512
) -> structure.Structure:
    """`structure.reference` compiled: flat records, Python objects only for sites."""
    return _native_json_structure(body, meta_keys, max_depth, _JSON_CONTEXT, _facts(meta_keys))


_JsonParts = tuple[tuple[jsonspan.Token, ...], tuple[jsonspan.Node, ...]]
_native_find: Callable[[bytes, bool], list[Raw]]
_native_json_scan: Callable[[bytes, frozenset[str], int, tuple[object, ...], object], _JsonParts]
_native_json_structure: Callable[
    [bytes, frozenset[str], int, tuple[object, ...], object], structure.Structure
]
find_text: Callable[[str], list[Raw]]
find_bytes: Callable[[bytes], list[Raw]]


class Fused(NamedTuple):
    """The finder and the normalising after it in one compiled call (rules/native/src/
    normalised.rs), for rules/detect/scan.py: `candidates(data, char_spans, memo, context)`
    (a list), `records(...)` (the same as a compiled `Candidates` sequence)."""

    memo: Callable[[int], object]  # Memo(entries): the normal forms it keeps
    candidates: Callable[[bytes, bool, object, tuple[object, ...]], list[Any]]
    records: Callable[[bytes, bool, object, tuple[object, ...]], Any]  # the same, `Candidates`
    identifiers: Callable[[bytes, list[tuple[int, int]], object, tuple[object, ...]], Any]


FUSED: Fused | None = None
MEMO_ENTRIES = 131_072
"""Distinct texts whose answers one compiled memo keeps (~13 MB when full of e-mail-sized
texts), as many as `readings.normals` caches; then it starts afresh."""
KEPT_TEXT = 1024 // 12
"""Texts shorter than this are always kept by a compiled memo (it keeps keys up to 1 kB, and a
character is at most 12 bytes of a body: a JSON-escaped surrogate pair). What a memo asks of
them skips Python's caches: a memo asks only on its own miss, which on a cold body misses those
caches too, and a full cache's miss costs an eviction. Longer texts are answered, not kept:
they go through the caches."""
T = TypeVar("T")


class Memos(Generic[T]):
    """A compiled `Memo` per region, with what it remembers the answers of for that region
    (`make(region)`: a callable the compiled core asks on a miss). Regions come from settings:
    a handful; bounded all the same."""

    def __init__(self, make: Callable[[str], T], entries: int = MEMO_ENTRIES) -> None:
        self.make = make
        self.entries = entries
        self.held: dict[str, tuple[object, T]] = {}
        _EVERY.append(self)

    def of(self, fused: Fused, region: str) -> tuple[object, T]:
        held = self.held.get(region)
        if held is None:
            if len(self.held) >= 8:
                self.held.clear()
            held = self.held[region] = (fused.memo(self.entries), self.make(region))
        return held

    def clear(self) -> None:
        self.held.clear()


_EVERY: list[Memos[Any]] = []


def forget() -> None:
    """Empty every compiled memo (benchmarks measure cold caches with it)."""
    for memos in _EVERY:
        memos.clear()
scan_json: Callable[[bytes, frozenset[str], int], jsonspan.Scan]
json_structure: Callable[[bytes, frozenset[str], int], structure.Structure]
if _native is not None:
    _native_find, _native_json_scan = _native.find, _native.json_scan
    _native_json_structure = _native.json_structure
    find_text, find_bytes, scan_json = _native_text, _native_bytes, _native_json
    json_structure = _native_structure
    FUSED = Fused(
        _native.Memo, _native.candidates, _native.candidate_records, _native.identifiers
    )
else:
    if os.environ.get("DENYPROXY_REQUIRE_NATIVE") == "1":
        raise ImportError("DENYPROXY_REQUIRE_NATIVE=1 but rules._native is not built")
    find_text, find_bytes, scan_json = textfind.find_text, textfind.find_bytes, jsonspan.scan
    json_structure = structure.reference

_announced = False


def announce() -> str:
    """The backend's name; the first call (the proxy's start-up) warns if it is the fallback."""
    global _announced
    if BACKEND != "native" and not _announced:
        log.warning(
            "compiled scanning core rules._native is not built: using the pure-Python finder "
            "(slower; install a Rust toolchain and reinstall denyproxy to build it)"
        )
    _announced = True
    return BACKEND
