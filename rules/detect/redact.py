"""The tree filter: a parsed JSON document without its denied values, by policy.

The reference the byte-level filter (`rules/detect/jsonspan.py`, `rules/detect/splice.py`) is
proved against on every generated document (tests/test_jsonspan.py), and the baseline
bench/detect_cost.py measures it by. `strip` drops a denied list element, nulls a denied
member value and removes a contact point as a whole; `drop` removes the record that holds one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rules.detect.contact import CONTACT_META_KEYS, describes, is_entries_key
from rules.detect.splice import Policy
from rules.model import RuleType

Raw = str | int | float  # a JSON scalar, as `rules.detect.match.Found` keys it


@dataclass(slots=True)
class Redaction:
    denied: dict[Raw, RuleType]
    keys: dict[str, RuleType] = field(default_factory=dict)  # denied keys: their members go
    counts: dict[RuleType, int] = field(default_factory=dict)

    def is_denied(self, value: Any) -> bool:
        kind = type(value)  # exact types: orjson gives str, int, float; a bool is not an int
        return (kind is str or kind is int or kind is float) and value in self.denied

    def cut_keys(self, node: dict[str, Any]) -> bool:
        """Removes (and counts) the members under denied keys; True if there was one."""
        cut = [k for k in node if k in self.keys]
        for key in cut:
            del node[key]
            rule_type = self.keys[key]
            self.counts[rule_type] = self.counts.get(rule_type, 0) + 1
        return bool(cut)

    def hit(self, value: Any) -> bool:
        """Is `value` denied? Counts it if so."""
        if not self.is_denied(value):
            return False
        rule_type = self.denied[value]
        self.counts[rule_type] = self.counts.get(rule_type, 0) + 1
        return True

    def contact_point(self, node: dict[str, Any]) -> bool:
        """One denied value plus only describing members: `{"email": x, "is_verified": true}`."""
        outside = [k for k, v in node.items() if k not in CONTACT_META_KEYS and not describes(k, v)]
        return len(outside) == 1 and self.is_denied(node[outside[0]])

    def gone(self, value: Any) -> bool:
        """A denied value, or a contact point wrapping one: it goes (and is counted)."""
        if type(value) is dict and self.contact_point(value):
            # A list, not a generator: every item is hit (and counted), not just the first.
            return any([self.hit(item) for item in value.values()])  # noqa: C419 - see above
        return self.hit(value)


def redact(
    doc: Any, denied: dict[Raw, RuleType], policy: Policy, keys: dict[str, RuleType] | None = None
) -> tuple[Any, dict[RuleType, int]]:
    """`doc` without the denied values (and members under denied `keys`), changed in place
    (it is ours: parsed for this response). The counts say what went, by type.
    """
    keys = keys or {}
    state = Redaction(denied, keys)
    if state.hit(doc):  # the whole body is one denied value
        return None, state.counts
    if type(doc) is not dict and type(doc) is not list:
        return doc, state.counts
    if policy == "strip":
        _strip(doc, state)
    elif _drop_body(doc, state):  # a denied value outside every record: strip it where it is
        _strip(doc, Redaction(denied, keys))
    return doc, state.counts


def _strip(node: Any, state: Redaction) -> None:
    if type(node) is dict:
        state.cut_keys(node)
        for key, value in node.items():
            if state.gone(value):
                node[key] = None
            elif type(value) is dict or type(value) is list:
                _strip(value, state)
    else:
        if any(state.is_denied(v) or (type(v) is dict and state.contact_point(v)) for v in node):
            node[:] = [value for value in node if not state.gone(value)]
        for value in node:
            if type(value) is dict or type(value) is list:
                _strip(value, state)


def _drop_body(doc: dict[str, Any] | list[Any], state: Redaction) -> bool:
    """Removes the records holding denied values; True if a denied value is still inside.

    Records (`splice.record_of`): the outermost list elements and objects keyed in a map of
    records (an object of objects that is not a record; the body only when none of its values
    is an object of objects too; none in a list under an identifier key below the body's
    member, `contact.is_entries_key`); with none, the body's object member that holds one."""
    if isinstance(doc, list):
        return _drop_below(doc, state)
    keyed = 0 < _keyed(doc) <= 1
    inside = bool(state.keys) and state.cut_keys(doc)
    gone: list[str] = []
    for key, value in doc.items():
        if keyed and type(value) is dict:
            _drop_persons(value, state)  # a person in its `emails` goes alone
        if type(value) is dict and (_holds(value, state) if keyed else _drop_below(value, state)):
            gone.append(key)  # a record keyed in the map, or the body's member holding one
        elif type(value) is list:
            inside = _drop_below(value, state) or inside
        else:
            inside = state.hit(value) or inside
    for key in gone:
        del doc[key]
    return inside


def _drop_below(node: dict[str, Any] | list[Any], state: Redaction) -> bool:
    """`_drop_body` below the body, above every record: the records under `node` go."""
    if isinstance(node, list):
        kept = [v for v in node if not ((type(v) is dict or type(v) is list) and _holds(v, state))]
        inside = any([state.hit(value) for value in kept])  # noqa: C419 - every one counted
        if len(kept) != len(node):
            node[:] = kept
        return inside
    keyed = _keyed(node) > 0
    inside = bool(state.keys) and state.cut_keys(node)
    gone: list[str] = []
    for key, value in node.items():
        if keyed and type(value) is dict:
            if _holds(value, state):  # a record keyed in a map of records: it goes
                gone.append(key)
        elif type(value) is list and is_entries_key(key):  # the holder's entries: it goes
            inside = _drop_entries(value, state) or inside
        elif type(value) is dict or type(value) is list:
            inside = _drop_below(value, state) or inside
        else:
            inside = state.hit(value) or inside
    for key in gone:
        del node[key]
    return inside


def _drop_entries(entries: list[Any], state: Redaction) -> bool:
    """A list of its holder's entries: a person in it (`splice.is_entry` says no) is a record
    and goes alone; True if an entry holds a denied value (the holder goes)."""
    kept = [v for v in entries if _entry(v) or not _holds(v, state)]
    inside = any([_holds_any(v, state) for v in kept])  # noqa: C419 - every one counted
    if len(kept) != len(entries):
        entries[:] = kept
    return inside


def _drop_persons(node: dict[str, Any], state: Redaction) -> None:
    """Below a record keyed in the body's map: the persons in its lists of entries with no
    record between (`splice._person`) go alone."""
    keyed = _keyed(node) > 0
    for key, value in node.items():
        if type(value) is dict and not keyed:
            _drop_persons(value, state)
        elif type(value) is list and is_entries_key(key):
            value[:] = [v for v in value if _entry(v) or not _holds(v, state)]


def _holds_any(value: Any, state: Redaction) -> bool:
    """`_holds` for any value: a scalar holds itself."""
    if type(value) is dict or type(value) is list:
        return _holds(value, state)
    return state.hit(value)


def _entry(element: Any) -> bool:
    """`splice.is_entry` on a parsed element: no object, or one of one content key."""
    if type(element) is not dict:
        return True
    content = [k for k, v in element.items() if k not in CONTACT_META_KEYS and not describes(k, v)]
    return len(content) == 1


def _holds(node: dict[str, Any] | list[Any], state: Redaction) -> bool:
    """Does `node` (a record) hold a denied value or key? Counts every one: they go with it."""
    found = type(node) is dict and bool(state.keys) and state.cut_keys(node)
    for value in node.values() if type(node) is dict else node:
        if type(value) is dict or type(value) is list:
            found = _holds(value, state) or found
        else:
            found = state.hit(value) or found
    return found


def _keyed(node: dict[str, Any]) -> int:
    """1: an object of objects, 2: some of them objects of objects too (`jsonspan.Node`)."""
    if not _objects(node):
        return 0
    return 1 + any(_objects(value) for value in node.values())


def _objects(node: dict[str, Any]) -> bool:
    return bool(node) and all(type(value) is dict for value in node.values())
