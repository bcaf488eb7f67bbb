"""The output side of the JSON contract (see `rules/detect/jsonspan.py`): denied tokens → bytes.

`edits` turns the denied tokens into edits by the policy, with the semantics the tree filter
had: `strip` drops a denied list element, turns a denied member value into `null`, and removes a
contact point (`{"email": x, "verified": true}`) as a whole; `drop` removes the outermost record
(`record_of`: an element of a list, an object keyed in a map of records, else the body's object
member) that holds a denied token, and strips what no record holds. A denied object
key removes its member. `apply` writes the body with the edits made, commas fixed, every other
byte as it was. `spliced` does both in one
compiled call over a compiled structure (rules/native/src/splice.rs); `spliced_reference` is its
contract, and tests/test_splice_native.py proves with hypothesis that both agree.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from rules.detect import finder
from rules.detect.contact import is_entries_key
from rules.detect.jsonspan import Kind, Node, Path, Token, wrapper

Policy = Literal["strip", "drop"]
_WHITESPACE = b" \t\n\r"
_COMMA = ord(",")


class Nodes(Protocol):
    """The containers of a scan (`jsonspan.Scan`, or a `rules.detect.structure.Structure`)."""

    def node(self, index: int) -> Node: ...


class Tokens(Nodes, Protocol):
    """A structure whose tokens are asked by index (`rules.detect.structure.Structure`)."""

    def token(self, index: int) -> Token: ...


class Action(enum.Enum):
    CUT = "cut"  # remove a list element or object member, with the comma that separates it
    NULL = "null"  # replace a value by `null`


@dataclass(frozen=True, slots=True)
class Edit:
    start: int
    end: int
    action: Action


def splice(body: bytes, scan: Nodes, denied: Iterable[Token], policy: Policy) -> bytes:
    """`body` with the denied tokens removed by `policy`; `body` itself when nothing is denied."""
    changes = edits(scan, denied, policy)
    return apply(body, changes) if changes else body


def spliced(
    scan: Tokens, body: bytes, denied: Sequence[int], records: Sequence[int], policy: Policy
) -> tuple[bytes, list[Replaced]]:
    """`spliced_reference`, in one compiled call when `scan` is the compiled structure."""
    if _native_splice is not None and type(scan) is _NativeStructure:
        out, replaced = _native_splice(scan, denied, records, policy == "drop", is_entries_key)
        return out, replaced
    return spliced_reference(scan, body, denied, records, policy)


def spliced_reference(
    scan: Tokens, body: bytes, denied: Sequence[int], records: Sequence[int], policy: Policy
) -> tuple[bytes, list[Replaced]]:
    """`body` (the bytes `scan` read) without the tokens at the indexes `denied` (sorted), by
    `policy`, and without the records (nodes) `records` (-1: none, left out), with the regions
    replaced; `body` itself and no region when there is nothing to edit."""
    changes = edits(scan, [scan.token(i) for i in denied], policy)
    changes += [_cut(scan, r) for r in records if r >= 0 and scan.node(r).slot is not None]
    return apply_mapped(body, changes) if changes else (body, [])


def edits(scan: Nodes, denied: Iterable[Token], policy: Policy) -> list[Edit]:
    tokens = list(denied)
    if policy == "strip":
        return [_strip(scan, token) for token in tokens]
    return [_drop(scan, token) for token in tokens]


def _strip(scan: Nodes, token: Token) -> Edit:
    """A key: its member goes. A value: its element goes, or its contact point, or it is null."""
    if token.kind is Kind.KEY or (token.parent >= 0 and not scan.node(token.parent).is_object):
        return Edit(*token.slot, Action.CUT)
    point = wrapper(scan.node, token)
    node = scan.node(point) if point >= 0 else None
    if node is None or node.slot is None:  # no contact point, or it is the whole body: keep it
        return Edit(token.start, token.end, Action.NULL)
    if node.in_list:
        return Edit(*node.slot, Action.CUT)
    return Edit(node.start, node.end, Action.NULL)


def _drop(scan: Nodes, token: Token) -> Edit:
    """The record that holds `token` goes; with none, it is stripped where it is."""
    record = record_of(scan, token.parent, token.path)
    return _cut(scan, record) if record >= 0 else _strip(scan, token)


def record_of(scan: Nodes, node: int, path: Path = ()) -> int:
    """The record `--policy drop` removes for what `node` holds, or -1 (none: strip instead).

    The outermost container at or above `node` that is an element of a list (an object, or a
    row array) or an object keyed in a map of records: a person's own entries (`emails: [{…}]`,
    `[[email, label]]`) are the person's, and the person goes. A map of records is an object of
    object values (`{"p1": {…}, "p2": {…}}`) that is not a record; the body only when none of
    its values is one (`{"person": {…}}`; in `{"people": {"p1": {…}}}` the records are the
    people). Below the body's member, a list under an identifier key (`contact.is_entries_key`,
    read from `path`, the path of what `node` holds) holds its holder's entries (`is_entry`),
    no records; an element that says more than an entry (a person) is a record, alone.
    With none, the body's member that holds `node` when it is an object
    (`{"success": true, "data": {person}}`: `data` goes, key and value)."""
    chain: list[int] = []
    while node >= 0:
        chain.append(node)
        node = scan.node(node).parent
    down = chain[::-1]
    person = _person(scan, down, path)
    if person >= 0:  # a person in `emails` (`{"value": …, "first_name": …}`): she goes alone
        return person
    keyed = False  # the node above is a map of records
    for depth, index in enumerate(down):
        n = scan.node(index)
        if n.slot is not None and (n.in_list or (n.is_object and keyed)):
            return index
        if depth > 1 and not n.is_object and _entries(path[depth - 1]):
            break  # `{"data": {"emails": [{…}], "phone": …}}`: the holder's, `data` goes
        keyed = 0 < n.keyed <= (1 if n.slot is None else 2)  # see above
    member = chain[-2] if len(chain) > 1 else -1  # the body's member on the way down
    return member if member >= 0 and scan.node(member).is_object else -1


def _person(scan: Nodes, down: list[int], path: Path) -> int:
    """The element of a list under an identifier key below the body's object member, with no
    record between them, when it says more than an entry (`is_entry`: a person), else -1. She
    is the record even where the body's member is one (`{"data": {"emails": [person…]}}`)."""
    if len(down) < 4 or scan.node(down[1]).in_list:
        return -1
    for depth in range(2, len(down) - 1):
        n = scan.node(down[depth])
        if n.in_list or (n.is_object and scan.node(down[depth - 1]).keyed > 0):
            return -1  # a record above any list of entries
        if not n.is_object and _entries(path[depth - 1]):
            element = down[depth + 1]
            return -1 if is_entry(scan.node(element)) else element
    return -1


def _entries(part: str | int) -> bool:
    return type(part) is str and is_entries_key(part)


def is_entry(element: Node) -> bool:
    """Is this element of a list under an identifier key its holder's entry? A row array
    (`[email, "work"]`) or an object of one content key (`{"email": …, "domain": …}`) is; an
    object saying more (`{"value": …, "first_name": …}`: a person) is a record of its own."""
    return not element.is_object or element.sole_key is not None


def _cut(scan: Nodes, node: int) -> Edit:
    slot = scan.node(node).slot
    assert slot is not None  # a record is a list element or an object member
    return Edit(*slot, Action.CUT)


Replaced = tuple[int, int, int]  # input bytes [start, end) and the length written instead


def apply(body: bytes, edits: Iterable[Edit]) -> bytes:
    """The body with every edit made; an edit inside another is part of it."""
    return apply_mapped(body, edits)[0]


def apply_mapped(body: bytes, edits: Iterable[Edit]) -> tuple[bytes, list[Replaced]]:
    """`apply`, and the input regions it replaced in order (verify reads around them again)."""
    out: list[bytes] = []
    replaced: list[Replaced] = []
    pos = 0
    last: tuple[Edit, bool] | None = None  # the previous edit, and whether it led its container
    for edit in _outermost(edits):
        start, end, leading = _region(body, edit, last)
        written = b"null" if edit.action is Action.NULL else b""
        out += (body[pos:start], written)
        replaced.append((start, end, len(written)))
        pos, last = end, (edit, leading)
    out.append(body[pos:])
    return b"".join(out), replaced


def _outermost(edits: Iterable[Edit]) -> Iterator[Edit]:
    """Edits in order, each one inside an earlier one left out (that one removes it already)."""
    end = -1
    for edit in sorted(edits, key=lambda e: (e.start, -e.end, e.action is Action.NULL)):
        if edit.end <= end:
            continue
        end = edit.end
        yield edit


def _region(body: bytes, edit: Edit, last: tuple[Edit, bool] | None) -> tuple[int, int, bool]:
    """The bytes an edit replaces; a cut takes one comma along.

    A cut that leads its container (no element before it is kept) takes the comma after it
    (`[x, b]` → `[b]`); any other takes the comma before it (`[a, x]` → `[a]`). Returns the
    region and whether the edit leads."""
    if edit.action is Action.NULL:
        return edit.start, edit.end, False
    before = _back(body, edit.start)
    if body[before] == _COMMA:  # there is an element before this one: was it cut, leading?
        prev_end = _back(body, before) + 1
        if last is None or last[0].action is Action.NULL or last[0].end != prev_end or not last[1]:
            return prev_end, edit.end, False
    after = _skip(body, edit.end)
    if after < len(body) and body[after] == _COMMA:
        return edit.start, _skip(body, after + 1), True
    return edit.start, edit.end, True


def _back(body: bytes, pos: int) -> int:
    """Index of the last byte before `pos` that is not JSON whitespace."""
    pos -= 1
    while body[pos] in _WHITESPACE:
        pos -= 1
    return pos


def _skip(body: bytes, pos: int) -> int:
    """Index of the first byte at or after `pos` that is not JSON whitespace."""
    while pos < len(body) and body[pos] in _WHITESPACE:
        pos += 1
    return pos


_Splice = Callable[
    [Tokens, Sequence[int], Sequence[int], bool, Callable[[str], bool]],
    tuple[bytes, list[Replaced]],
]
_native = finder._native
_native_splice: _Splice | None = _native.splice if _native is not None else None
_NativeStructure: object = _native.Structure if _native is not None else None
