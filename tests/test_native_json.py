"""The compiled JSON scan (`rules._native.json_scan`, through rules/detect/finder.py) against its
reference (`rules/jsonspan.scan`).

A hypothesis differential test: random JSON documents (tests/test_jsonspan.py's generators:
big ints, odd number spellings, escapes, duplicate keys, contact points, any whitespace), deep
nesting against small depth limits, long numbers, random byte strings and mutations of valid
documents must give the same `Scan` from both — every token and node, types included
(`1` is not `1.0`, `-0.0` is not `0.0`), and the same wrapper of every token — or the same
`JsonBodyError` (message included) from both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from rules.detect import finder, jsonspan, structure
from rules.detect.jsonspan import JsonBodyError, Scan
from rules.detect.structure import Structure
from tests.budgets import examples
from tests.test_jsonspan import META, documents

try:
    from rules import _native  # type: ignore[attr-defined]  # optional extension
except ImportError:  # pragma: no cover - only without a Rust toolchain
    _native = None
needs_native = pytest.mark.skipif(finder.BACKEND != "native", reason="rules._native is not built")
SETTINGS = settings(max_examples=examples(200), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
Scanner = Callable[[bytes, frozenset[str], int], Scan]

# Pieces that make or break JSON: structure, escapes, number parts, bad bytes, bad UTF-8.
_PIECES = [b'"', b"\\", b",", b":", b"[", b"]", b"{", b"}", b"0", b"1", b"9", b"-", b".", b"e",
           b"E", b"+", b" ", b"\n", b"\r", b"\t", b"\x0b", b"\x0c", b"\x00", b"\x1f", b"\x7f",
           b"\xff", b"\xc3", b"\xa9", b"\xc3\xa9", b"\xed\xa0\x80", b"\xf0\x9f\x98\x80", b"u",
           b"\\u", b"\\u00e9", b"\\ud83d", b"\\ude00", b"\\ud83d\\ude00", b'\\"', b"\\/",
           b"\\x", b"true", b"false", b"null", b"tru", b"nul", b"NaN", b"/", b"x", b'"a"',
           b'"email"', b'"verified"', b"\xef\xbb\xbf"]
_piece_strings = st.lists(st.sampled_from(_PIECES), max_size=24).map(b"".join)


def outcome(scan: Scanner, body: bytes, meta: frozenset[str], depth: int) -> tuple[str, Any]:
    """What a scan makes of `body`, comparable exactly across backends."""
    try:
        found = scan(body, meta, depth)
    except JsonBodyError as e:
        return "error", (type(e), str(e))
    return "scan", strict(found)


def strict(found: Scan) -> Any:
    """Everything a Scan holds, with the types `==` would blur (1 == 1.0 == True)."""
    tokens = [(type(t), repr(t), [type(v) for v in t]) for t in found.tokens]
    nodes = [(type(n), repr(n)) for n in found.nodes]
    return tokens, nodes, [found.wrapper(t) for t in found.tokens], found


def assert_same(body: bytes, meta: frozenset[str] = META, depth: int = 512) -> None:
    expected = outcome(jsonspan.scan, body, meta, depth)
    assert outcome(finder.scan_json, body, meta, depth) == expected
    assert flat(finder.json_structure, body, meta, depth) == flat(
        structure.reference, body, meta, depth
    )


def flat(
    scan: Callable[[bytes, frozenset[str], int], Structure], body: bytes,
    meta: frozenset[str], depth: int,
) -> tuple[str, Any]:
    """What the flat contract (rules/detect/structure.py) makes of `body`, exactly."""
    try:
        found = scan(body, meta, depth)
    except JsonBodyError as e:
        return "error", (type(e), str(e))
    sites = [(i, type(v), repr(v), ctx) for i, v, ctx in found.sites()]
    tokens = [found.token(i) for i in range(len(found))]
    nodes = {t.parent: found.node(t.parent) for t in tokens if t.parent >= 0}
    spans = [(t.start, t.end) for t in tokens] + [(t.start + 1, t.end + 2) for t in tokens]
    placed = [found.overlapping(start, end) for start, end in spans]
    typed = [(type(t), repr(t), [type(v) for v in t], jsonspan.wrapper(found.node, t))
             for t in tokens]
    fields = [(r, k, type(v), repr(v)) for r, k, v in found.records(_field_kind)]
    return "structure", (sites, typed, sorted(nodes.items()), placed, fields, identified(found))


def identified(found: Structure) -> list[tuple[int, tuple[Any, ...]]]:
    """`identified` (the compiled one keeps its answers in a memo): asked twice, the second
    time from the memo, both must read as the reference's."""
    memo = _native.Memo(1024) if finder.BACKEND == "native" else None
    first, again = (found.identified(memo, _identify) for _ in range(2))
    assert first == again
    return first


def _identify(value: str | int | float, ctx: bool) -> tuple[Any, ...]:
    """Some sites hold something, some do not; the answer tells type, value and context."""
    return () if isinstance(value, str) and value[:1] == "a" else ((type(value), repr(value), ctx),)


def _field_kind(name: str) -> str | None:
    """Some keys name a field (as company.py's do), some do not: both paths are compared."""
    return f"kind-{name[:1]}" if name[:1] not in ("", "a", "e") else None


@st.composite
def mutated(draw: Any) -> bytes:
    """A valid document with a few bytes inserted, deleted, replaced, or cut off."""
    body = bytearray(draw(documents(unique=False))[0])
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(body)))
        how = draw(st.sampled_from(["insert", "delete", "replace", "truncate"]))
        piece = draw(st.sampled_from(_PIECES))
        if how == "insert":
            body[at:at] = piece
        elif how == "delete":
            del body[at:at + draw(st.integers(1, 3))]
        elif how == "replace":
            body[at:at + 1] = piece
        else:
            del body[at:]
    return bytes(body)


@needs_native
def test_the_compiled_scan_is_selected() -> None:
    assert finder.scan_json is not jsonspan.scan
    assert finder.json_structure is not structure.reference


@needs_native
@pytest.mark.parametrize("body", [
    b'{"phones": [{"n": "5125550100"}, 15125550100], "x": {"mobile_no": 5}}',
    b'[{"type": "Mobile", "value": "512 555 0100", "id": 1234567}, {"v": "12345"}]',
    b'{"a@b.co": 1, "LinkedIn": "x", "note": "caf\\u00e9 %40 &#64;", "n": 1e6, "m": 999999}',
    b'"+1 512 555 0100"',
])
def test_same_sites_and_phone_context(body: bytes) -> None:
    """Phone keys on the path, typed contact points, keys, encodings, number sizes."""
    assert_same(body)
    assert finder.json_structure(body, META, 512).sites()  # something is a site here


_HOLDERS = ["123456", "1234567", "a1b2c3d4e5f6g", "1-2-3-4-5-6-7", "x" * 9 + "1234567",
            "LinkedIn", "xxxxxxxlinkedin", "lInKeDiN.com/in/a", "linkedi", "k" * 20, "caf\u00e9",
            "x" * 15 + "@", "x" * 16 + "%", "&", "tab\\there", "abcdefgh" * 3 + "linkedin"]


@needs_native
@pytest.mark.parametrize("text", _HOLDERS)
def test_same_sites_by_text_at_every_offset(text: str) -> None:
    """The compiled `could_hold` reads eight bytes at a time: marks, digits and `linkedin`
    on either side of a word's edge, and values that end the body (no word left to read)."""
    for pad in range(9):
        value = "y" * pad + text
        for body in (f'"{value}"', f'["{value}"]', f'{{"{value}": 1, "k": "{value}"}}'):
            assert_same(body.encode())


@needs_native
@pytest.mark.parametrize("body", [
    b'[{"a": 1, "b": 2}, {"b": 1, "a": 2}, {"a": {"a": 1, "c": 2}, "c": 3}, {"c": 1}]',
    b'[{"k": 1, "k": 2, "kk": 3}, {"k": 1, "kk": 2, "k": 3}, {"phone": "5125550100"}]',
    b'{"a\\u0062": 1, "ab": "5125550100", "a": {"ab": 2, "b": {"phone": 15125550100}}}',
])
def test_same_keys_in_any_order(body: bytes) -> None:
    """Keys are read by guessing the one that followed last time: wrong guesses, repeated
    keys, escaped spellings of one key and the same key at other depths read as ever."""
    assert_same(body)


@needs_native
def test_identified_sites_read_as_a_sequence_of_tuples() -> None:
    """The compiled `identified` answers a `Sites`: a sequence of the reference's tuples."""
    body = b'[{"a": "x@y.co", "phones": ["5125550100", "abc"]}, "a@b.co", "5125550101"]'
    found = finder.json_structure(body, META, 512)
    sites = found.identified(_native.Memo(16), _identify)
    expected = structure.reference(body, META, 512).identified(None, _identify)
    assert len(expected) == 3 and len(sites) == 3
    assert list(sites) == expected and sites == expected and sites == tuple(expected)
    assert [sites[i] for i in range(-3, 3)] == expected + expected
    assert sites != expected[:2] and sites != None and sites != 3  # noqa: E711
    with pytest.raises(IndexError):
        sites[3]
    with pytest.raises(IndexError):
        sites[-4]


@needs_native
@SETTINGS
@given(documents(unique=False), st.sampled_from([META, frozenset()]))
def test_same_scan_of_random_documents(doc: tuple[bytes, Any], meta: frozenset[str]) -> None:
    assert_same(doc[0], meta)


@needs_native
@SETTINGS
@given(documents(unique=False), st.integers(0, 6))
def test_same_depth_limit(doc: tuple[bytes, Any], depth: int) -> None:
    assert_same(doc[0], META, depth)


@needs_native
@SETTINGS
@given(mutated())
def test_same_result_on_mutated_documents(body: bytes) -> None:
    assert_same(body)


@needs_native
@SETTINGS
@given(st.one_of(st.binary(max_size=48), _piece_strings))
@example(b'["a" : 1]')
@example(b'{"a": 1 "b": 2}')
@example(b"[1,]")
@example(b"[1] ,")
@example(b'"\\ud83d\\u0041"')
@example(b'"\\udc00\\ud83d"')
def test_same_result_on_random_bytes(body: bytes) -> None:
    assert_same(body)


@needs_native
@SETTINGS
@given(st.integers(1, 5000), st.sampled_from(["", "-"]), st.sampled_from(["", ".5", "e5",
       "E-400", "e+400", ".0000000000000000000000001e-320"]), st.sampled_from("0123456789"))
@example(4300, "", "", "1")
@example(4301, "-", "", "1")
def test_same_value_of_long_numbers(size: int, sign: str, tail: str, digit: str) -> None:
    body = f'[{sign}1{digit * (size - 1)}{tail}, {{"n": {sign}{digit}{tail}}}]'.encode()
    assert_same(body)


@needs_native
@pytest.mark.parametrize("size", [0, 1, 511, 512, 513, 100_000])
def test_same_result_on_deep_nesting(size: int) -> None:
    assert_same(b"[" * size + b"]" * size)
    assert_same(b'{"a":' * size + b"1" + b"}" * size)
    assert_same(b"[" * size)
