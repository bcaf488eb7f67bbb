"""The byte-level structure of a JSON body: every string, object key and number, where it is.

This module and `rules/detect/splice.py` are the pure-Python reference of the contract a
compiled core (issue #11, Rust/PyO3) implements; the two must agree on every document:

* `scan(body, meta_keys) -> Scan`: input bytes → candidate sites. One pass over the raw bytes
  (the inner loops are compiled regexes). Every string value, object key and number becomes a
  `Token` (duplicate keys included: nothing the client could read is hidden) with its byte span,
  its decoded value and its context: the member key it belongs to (phone-key context), the path
  of keys and indexes, the `slot` (bytes of its list element or object member), its container
  `parent` and its `record` (nearest object inside a list: a company record; `--policy drop`
  reads records more widely, `splice.record_of`). Every container becomes a `Node`;
  `Scan.wrapper` names the contact point that only wraps a value plus metadata keys
  (`{"email": …, "verified": true}`). Invalid JSON, invalid UTF-8, lone surrogates and
  nesting deeper than `max_depth` raise `JsonBodyError` (the proxy answers 502).
* `splice.edits(scan, denied, policy)` then `splice.apply(body, edits) -> bytes`: sites +
  decisions → output bytes, every byte not removed kept as it was (numbers, whitespace, order).

Spans are `(start, end)` byte offsets into the body, end exclusive. Node and token references
are indexes into `Scan.nodes` (-1: none), so a compiled core can hand back flat arrays.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from rules.detect.contact import describes

Span = tuple[int, int]
Path = tuple[str | int, ...]

_STRING = rb'"[^"\\\x00-\x1f]*(?:\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})[^"\\\x00-\x1f]*)*"'
_NUMBER = rb"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?"
# One match per value or key (with its colon) or bracket, the comma before it included.
# Groups: 1 comma, 2 string, 3 colon (2 is a key), 4 number, 7 open, 8 close, 9 literal, 10 bad.
_TOKEN = re.compile(
    rb"[ \t\n\r]*(,?)[ \t\n\r]*(?:(" + _STRING + rb")([ \t\n\r]*:)?|(" + _NUMBER + rb")"
    rb"|([\[{])|([\]}])|(true|false|null)|([^ \t\n\r]))"
)
_STR, _KEY, _NUM, _OPEN, _CLOSE, _LITERAL, _BAD = 2, 3, 4, 7, 8, 9, 10
_VALUE, _MEMBER, _NEXT, _END = range(4)  # what the grammar expects next
_LITERALS: dict[bytes, bool | None] = {b"true": True, b"false": False, b"null": None}
_CONTAINER: list[object] = []  # the value `describes` sees for an object or array member


class JsonBodyError(ValueError):
    """The body is not a JSON document this proxy can read and filter (it answers 502)."""


class Kind(enum.Enum):
    STRING = "string"
    KEY = "key"
    NUMBER = "number"


class Token(NamedTuple):
    """A string value, object key or number, with the context the filter decides by.

    Immutable records are NamedTuples, not frozen dataclasses: the scan makes one per token,
    and a frozen dataclass's `__init__` costs four times as much."""

    kind: Kind
    start: int  # the token's own bytes: quotes included for strings and keys
    end: int
    value: str | int | float  # decoded: a str, an int (no fraction or exponent) or a float
    key: str | None  # the object member key this value belongs to (None for keys and elements)
    path: Path  # keys and indexes from the root to the value (to the object, for a key)
    slot: Span  # the list element or object member (`"key": value`) that holds the token
    parent: int  # the container holding the token; -1: the body is this one value
    record: int  # nearest object inside a list at or above `parent` (company records); -1: none


class Node(NamedTuple):
    """An object or array."""

    is_object: bool
    start: int
    end: int
    slot: Span | None  # its list element or object member in the parent; None at the root
    parent: int
    in_list: bool  # an element of an array (an object in a list is a record)
    record: int  # nearest record strictly above; -1: none
    sole_key: str | None  # objects: the one distinct key of content (not describing), if one
    keyed: int  # 1: an object of objects (one or more), 2: some of them objects of objects too


@dataclass(frozen=True, slots=True)
class Scan:
    tokens: tuple[Token, ...]
    nodes: tuple[Node, ...]

    def node(self, index: int) -> Node:
        return self.nodes[index]

    def wrapper(self, token: Token) -> int:
        return wrapper(self.node, token)


def wrapper(node: Callable[[int], Node], token: Token) -> int:
    """The contact point `token` is the value of (`{"email": token, "verified": …}`), or -1.

    An object is a contact point when all its members but the describing ones (meta keys,
    booleans, null, small numbers: `rules.detect.contact.describes`) are one key: its value
    *is* the contact point, removed with it."""
    if token.kind is Kind.KEY or token.parent < 0:
        return -1
    sole = node(token.parent).sole_key
    return token.parent if sole is not None and sole == token.key else -1


def scan(body: bytes, meta_keys: frozenset[str] = frozenset(), max_depth: int = 512) -> Scan:
    """Every token and container of `body`, in document order; `JsonBodyError` if not JSON."""
    scanner = _Scanner(body, meta_keys, max_depth)
    for match in _TOKEN.finditer(body):
        scanner.step(match)
    return scanner.finish()


@dataclass(slots=True)
class _Frame:
    """An open container."""

    node: int
    is_object: bool
    start: int
    slot_start: int  # where its element / member starts in the parent
    path: Path
    record: int  # for its children: nearest record at or above it
    count: int = 0
    member_start: int = 0
    key: str = ""
    key_span: Span = (0, 0)
    key_token: int = -1
    sole: str | None = None
    many: bool = False  # more than one distinct non-meta key
    objects: int = 0  # members whose value is an object
    nested: bool = False  # one of them is an object of objects


class _Scanner:
    """The grammar as a small state machine over the regex matches."""

    def __init__(self, body: bytes, meta_keys: frozenset[str], max_depth: int) -> None:
        self.body = body
        self.meta = meta_keys
        self.max_depth = max_depth
        self.stack: list[_Frame] = []
        self.tokens: list[Token | None] = []
        self.nodes: list[Node | None] = []
        self.expect = _VALUE

    def step(self, m: re.Match[bytes]) -> None:
        group = m.lastindex or _BAD
        if group == _CLOSE:
            self.close(m)
            return
        if group == _BAD or not self.ready(bool(m.group(1)), group == _KEY):
            raise JsonBodyError(f"invalid JSON at byte {m.start(group)}")
        if group == _KEY:
            self.member(m.start(_STR), m.end(_STR))
        elif group == _STR:
            start, end = m.span(_STR)
            self.scalar(Kind.STRING, start, end, self.text(start, end))
        elif group == _NUM:
            self.scalar(Kind.NUMBER, m.start(_NUM), m.end(_NUM), _number(m))
        elif group == _OPEN:
            self.open(m.start(_OPEN))
        else:
            self.scalar(None, m.start(_LITERAL), m.end(_LITERAL), _LITERALS[m.group(_LITERAL)])

    def ready(self, comma: bool, is_key: bool) -> bool:
        """Does the grammar allow a key (or value) here, after a comma or not?"""
        if self.expect == _NEXT:
            return comma and is_key == self.stack[-1].is_object
        if self.expect == _MEMBER:
            return not comma and is_key
        return self.expect == _VALUE and not comma and not is_key

    def text(self, start: int, end: int) -> str:
        raw = self.body[start:end]
        try:
            if b"\\" not in raw:
                return raw[1:-1].decode()
            value: str = json.loads(raw.decode())  # the regex let only a string through
            if b"\\u" in raw:
                value.encode()  # a lone surrogate (`"\ud800"`) cannot be encoded: refuse it
            return value
        except ValueError as e:  # UnicodeError included
            raise JsonBodyError(f"invalid string at byte {start}") from e

    def place(self, start: int) -> tuple[Path, str | None, int]:
        """Path, member key and slot start of a value that starts at `start`."""
        if not self.stack:
            return (), None, start
        frame = self.stack[-1]
        if frame.is_object:
            # RUF005 off: concatenation is ~1.8x faster than unpacking, and this runs per value
            return frame.path + (frame.key,), frame.key, frame.member_start  # noqa: RUF005
        frame.member_start = start
        return frame.path + (frame.count,), None, start  # noqa: RUF005 - as above

    def scalar(
        self, kind: Kind | None, start: int, end: int, value: str | float | bool | None
    ) -> None:
        path, key, slot_start = self.place(start)
        if kind is not None and value is not None and type(value) is not bool:
            top = self.stack[-1] if self.stack else None
            parent, record = (top.node, top.record) if top is not None else (-1, -1)
            token = Token(kind, start, end, value, key, path, (slot_start, end), parent, record)
            self.tokens.append(token)
        self.done(end, value)

    def member(self, start: int, end: int) -> None:
        frame = self.stack[-1]
        frame.member_start, frame.key_span = start, (start, end)
        frame.key = self.text(start, end)
        frame.key_token = len(self.tokens)
        self.tokens.append(None)  # filled when the member ends: its slot needs the value's end
        self.expect = _VALUE

    def done(self, end: int, value: object) -> None:
        """A value ended at `end`: close its member (objects) and expect what follows.

        A member that does not only describe (`rules.detect.contact.describes`) is content: an
        object whose content is one key is a contact point (`Scan.wrapper`)."""
        if not self.stack:
            self.expect = _END
            return
        frame = self.stack[-1]
        frame.count += 1
        self.expect = _NEXT
        if frame.is_object:
            key = frame.key
            if key != frame.sole and key not in self.meta and not describes(key, value):
                frame.many = frame.many or frame.sole is not None
                frame.sole = key
            start, stop = frame.key_span
            self.tokens[frame.key_token] = Token(
                Kind.KEY, start, stop, frame.key, None, frame.path,
                (frame.member_start, end), frame.node, frame.record,
            )

    def open(self, start: int) -> None:
        if len(self.stack) >= self.max_depth:
            raise JsonBodyError(f"JSON nested deeper than {self.max_depth} levels")
        path, _, slot_start = self.place(start)
        parent = self.stack[-1] if self.stack else None
        is_object = self.body[start] == ord("{")
        node = len(self.nodes)
        self.nodes.append(None)  # filled when it closes
        outer = parent.record if parent else -1
        record = node if is_object and parent and not parent.is_object else outer
        self.stack.append(_Frame(node, is_object, start, slot_start, path, record))
        self.expect = _MEMBER if is_object else _VALUE

    def close(self, m: re.Match[bytes]) -> None:
        start, end = m.span(_CLOSE)
        frame = self.stack.pop() if self.stack and not m.group(1) else None
        empty = frame is not None and frame.count == 0 and (
            self.expect == (_MEMBER if frame.is_object else _VALUE)
        )
        if frame is None or not (self.expect == _NEXT or empty) or (
            frame.is_object != (self.body[start] == ord("}"))
        ):
            raise JsonBodyError(f"invalid JSON at byte {start}")
        parent = self.stack[-1] if self.stack else None
        keyed = (1 + frame.nested) if frame.is_object and 0 < frame.count == frame.objects else 0
        if parent is not None and parent.is_object and frame.is_object:
            parent.objects += 1
            parent.nested = parent.nested or keyed > 0
        self.nodes[frame.node] = Node(
            frame.is_object, frame.start, end, (frame.slot_start, end) if parent else None,
            parent.node if parent else -1, parent is not None and not parent.is_object,
            parent.record if parent else -1, None if frame.many else frame.sole,
            keyed,
        )
        self.done(end, _CONTAINER)

    def finish(self) -> Scan:
        if self.expect != _END:
            raise JsonBodyError("truncated or empty JSON")
        tokens = tuple(t for t in self.tokens if t is not None)
        return Scan(tokens, tuple(n for n in self.nodes if n is not None))


def _number(m: re.Match[bytes]) -> int | float:
    text = m.group(_NUM)
    try:
        return float(text) if m.start(5) >= 0 or m.start(6) >= 0 else int(text)
    except ValueError as e:  # more digits than Python converts (sys.get_int_max_str_digits)
        raise JsonBodyError(f"number too long at byte {m.start(_NUM)}") from e
