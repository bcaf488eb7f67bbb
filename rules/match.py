"""Find contact identifiers in a JSON document and remove the denied ones.

Two pure passes around one store round trip: `collect` walks the document and normalises
every candidate; the caller asks the store; `redact` removes what the store denied.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from rules import normalize
from rules.model import Lookup, RuleType

Policy = Literal["strip", "drop"]
Raw = str | int
Identifier = tuple[RuleType, str]

# The one list of keys whose values (and everything under them) are read as phone numbers,
# compared without case, `_` or `-` (`phone_number`, `phoneNumber`, `Phone-Number`).
PHONE_KEYS = frozenset(
    {
        "phone", "phones", "phonenumber", "phonenumbers", "mobile", "mobiles", "mobilenumber",
        "cell", "cellphone", "tel", "telephone", "telephones", "fax", "directdial", "sms",
        "whatsapp", "contactnumber", "businessphones", "storephones",
    }
)
_PHONE_KEY_ENDINGS = (("phone",), ("phones",), ("phone", "number"), ("phone", "numbers"))
# Keys that only describe a contact point: an object made of one denied value and these
# (`{"email": ..., "verified": true}`) is the contact point itself, removed as a whole.
CONTACT_META_KEYS = frozenset(
    {
        "verified", "valid", "line_type", "type", "label", "status", "primary", "is_primary",
        "confidence", "score", "source", "sources", "carrier", "country_code", "kind",
        "first_seen", "last_seen", "validation", "deliverability", "catch_all",
    }
)
_EMAIL_IN_TEXT = re.compile(r"[^\s@<>()\[\],;:\"/]+@[^\s@<>()\[\],;:\"'/]+")
_AROUND_EMAIL = "'`.!?"  # quotes and sentence punctuation that may touch an address in text
_LINKEDIN_HINT = re.compile(r"linkedin\.com/", re.IGNORECASE).search
_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])")


@lru_cache(maxsize=4096)
def is_phone_key(key: str) -> bool:
    """`phones`, `business_phones`, `mobilePhone`, `Office-Phone-Number`; not `headphones`."""
    words = tuple(w.lower() for w in _WORD.findall(key))
    return "".join(words) in PHONE_KEYS or any(words[-len(e):] == e for e in _PHONE_KEY_ENDINGS)


@dataclass(slots=True)
class Found:
    """Every candidate string (or number) in a document and the identifiers it carries."""

    by_raw: dict[Raw, tuple[Identifier, ...]] = field(default_factory=dict)

    def query(self) -> dict[RuleType, set[str]]:
        return query_for(i for ids in self.by_raw.values() for i in ids)

    def denied(self, answer: Lookup) -> dict[Raw, RuleType]:
        """The raw values to remove, with the type that denied each (for metrics)."""
        out: dict[Raw, RuleType] = {}
        for raw, identifiers in self.by_raw.items():
            for rule_type, normal in identifiers:
                if is_denied(rule_type, normal, answer):
                    out[raw] = rule_type
                    break
        return out


def query_for(identifiers: Iterable[Identifier]) -> dict[RuleType, set[str]]:
    """What to ask the store: emails also ask for their domain and its parents."""
    query: dict[RuleType, set[str]] = {}
    for rule_type, normal in identifiers:
        query.setdefault(rule_type, set()).add(normal)
        if rule_type is RuleType.EMAIL:
            domains = query.setdefault(RuleType.DOMAIN, set())
            domains.update(normalize.parent_domains(normal.rpartition("@")[2]))
    return query


def is_denied(rule_type: RuleType, normal: str, answer: Lookup) -> bool:
    """A value is denied by its own rule; an email also by a rule on its domain or a parent."""
    if normal in answer.get(rule_type, ()):
        return True
    if rule_type is RuleType.EMAIL and RuleType.DOMAIN in answer:
        denied_domains = answer[RuleType.DOMAIN]
        host = normal.rpartition("@")[2]
        return any(d in denied_domains for d in normalize.parent_domains(host))
    return False


def collect(doc: Any, region: str) -> Found:
    found = Found()
    _Walk(found.by_raw, region).value(doc, False)
    return found


@dataclass(slots=True)
class _Walk:
    """One pass over the document."""

    out: dict[Raw, tuple[Identifier, ...]]
    region: str

    def node(self, node: dict[str, Any] | list[Any], phone_ctx: bool) -> None:
        if type(node) is dict:
            for key, value in node.items():
                self.value(value, phone_ctx or is_phone_key(key))
        else:
            for value in node:
                self.value(value, phone_ctx)

    def value(self, value: Any, phone_ctx: bool) -> None:
        kind = type(value)
        if kind is str:
            if phone_ctx or "@" in value or _LINKEDIN_HINT(value):
                self.scalar(value, phone_ctx)
        elif kind is dict or kind is list:
            self.node(value, phone_ctx)
        elif phone_ctx and kind is int:
            self.scalar(value, phone_ctx)

    def scalar(self, value: Raw, phone_ctx: bool) -> None:
        identifiers = _identifiers(value, phone_ctx, self.region)
        if identifiers:
            known = self.out.get(value)
            self.out[value] = identifiers if known is None else tuple(
                dict.fromkeys(known + identifiers)
            )


@lru_cache(maxsize=65_536)
def _identifiers(value: Raw, phone_ctx: bool, region: str) -> tuple[Identifier, ...]:
    """The identifiers in one string or number (cached: responses repeat their contacts)."""
    return tuple(dict.fromkeys(_find(str(value), phone_ctx, region)))


def _find(text: str, phone_ctx: bool, region: str) -> Iterator[Identifier]:
    if "@" in text:
        for match in _EMAIL_IN_TEXT.finditer(text):
            raw = match.group()
            for variant in {raw, raw.strip(_AROUND_EMAIL)}:  # o'brien@… and 'jane@…'
                normal = normalize.email(variant)
                if normal:
                    yield RuleType.EMAIL, normal
    if _LINKEDIN_HINT(text):
        normal = normalize.linkedin(text)
        if normal:
            yield RuleType.LINKEDIN, normal
    if phone_ctx:
        for normal in normalize.phone_candidates(text, region):
            yield RuleType.PHONE, normal


@dataclass(slots=True)
class Redaction:
    denied: dict[Raw, RuleType]
    counts: dict[RuleType, int] = field(default_factory=dict)

    def is_denied(self, value: Any) -> bool:
        kind = type(value)  # exact types: orjson gives str and int, and a bool is not an int here
        return (kind is str or kind is int) and value in self.denied

    def hit(self, value: Any) -> bool:
        """Is `value` denied? Counts it if so."""
        if not self.is_denied(value):
            return False
        rule_type = self.denied[value]
        self.counts[rule_type] = self.counts.get(rule_type, 0) + 1
        return True

    def contact_point(self, node: dict[str, Any]) -> bool:
        """One denied value plus only describing keys: `{"email": x, "verified": true}`."""
        outside = node.keys() - CONTACT_META_KEYS
        return len(outside) == 1 and self.is_denied(node[next(iter(outside))])

    def gone(self, value: Any) -> bool:
        """A denied value, or a contact point wrapping one: it goes (and is counted)."""
        if type(value) is dict and self.contact_point(value):
            # A list, not a generator: every item is hit (and counted), not just the first.
            return any([self.hit(item) for item in value.values()])  # noqa: C419
        return self.hit(value)


def redact(
    doc: Any, denied: dict[Raw, RuleType], policy: Policy
) -> tuple[Any, dict[RuleType, int]]:
    """`doc` without the denied values, changed in place (it is ours: parsed for this response).

    The counts say what went, by type.
    """
    state = Redaction(denied)
    if state.hit(doc):  # the whole body is one denied value
        return None, state.counts
    if type(doc) is not dict and type(doc) is not list:
        return doc, state.counts
    if policy == "strip":
        _strip(doc, state)
    elif _drop(doc, state):  # a denied value outside any record in a list: strip it there
        _strip(doc, Redaction(denied))
    return doc, state.counts


def _strip(node: Any, state: Redaction) -> None:
    if type(node) is dict:
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


def _drop(node: Any, state: Redaction) -> bool:
    """Removes the records holding denied values; True if a denied value is still inside."""
    inside = False
    if type(node) is dict:
        for value in node.values():
            if state.hit(value) or (
                (type(value) is dict or type(value) is list) and _drop(value, state)
            ):
                inside = True
        return inside
    kept: list[Any] = []
    for value in node:
        if state.hit(value):
            inside = True
            continue
        if (type(value) is dict or type(value) is list) and _drop(value, state):
            if type(value) is dict:  # the nearest record inside a list holding a denied value
                inside = inside or state.contact_point(value)  # a contact point's owner goes
                continue
            inside = True
        kept.append(value)
    if len(kept) != len(node):
        node[:] = kept
    return inside
