"""Find contact identifiers in a JSON document and remove the denied ones.

Two pure passes around one store round trip: `collect` walks the document and normalises
every candidate; the caller asks the store; `redact` removes what the store denied.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal, TypeVar

from rules import normalize
from rules.detect import scan
from rules.detect.contact import (
    CONTACT_META_KEYS,
    PHONE_KEYS,
    is_phone_key,
    typed_phone,
)
from rules.detect.redact import redact
from rules.model import Lookup, RuleType

__all__ = ["CONTACT_META_KEYS", "PHONE_KEYS", "Found", "collect", "is_phone_key", "redact"]

Policy = Literal["strip", "drop"]
Raw = str | int | float
Identifier = tuple[RuleType, str]
K = TypeVar("K", str, str | int | float)

# Bounded like normalize.EMAIL_IN_TEXT (RFC 5321 lengths): unbounded, every start inside a long
# run of local characters scanned to its end, quadratic (200 KB took minutes). A longer run
# yields its last 64 characters as a candidate: over-matching, the safe failure.
_EMAIL_IN_TEXT = re.compile(r"[^\s@<>()\[\],;:\"/]{1,64}@[^\s@<>()\[\],;:\"'/]{1,253}")
_AROUND_EMAIL = "'`.!?"  # quotes and sentence punctuation that may touch an address in text
_LINKEDIN_HINT = re.compile(r"linkedin\.com\.?/", re.IGNORECASE).search  # `linkedin.com./in`
# Could hold a phone anywhere (phones are found in any string, not only under phone keys):
# seven digits, whatever separates them. Possessive: no backtracking; `.match`: one pass from the
# start (a `search` for `\d(?:\D*+\d){6}` rescanned the rest from every digit, 0.8 µs an address).
_SEVEN_DIGITS = re.compile(r"(?:\D*+\d){7}").match
# No email, LinkedIn or encoding; the text scanner's one candidate is the phone window of the
# whole text (one digit group, none outside 7-18 digits), read as itself (it starts with `+`):
# `normalize.phone(value)`, which `phone_candidates` yields whenever it is a number. So under a
# phone context the scan adds nothing (tests/test_match.py proves it on generated values).
_PLUS_DIGITS = re.compile(r"\+[0-9]+")
# A plain address, nothing around it: `_EMAIL_IN_TEXT` matches it whole (local ≤ 64, domain
# ≤ 253, one `@`), it starts and ends with no `_AROUND_EMAIL` character, holds no LinkedIn hint
# (no `/`) and no encoding: `_find` yields exactly `normalize.email` of it.
_PLAIN_EMAIL = re.compile(
    r"[a-z0-9_+-](?:[a-z0-9._+-]{0,62}[a-z0-9_+-])?@[a-z0-9.-]{0,252}[a-z0-9-]", re.I | re.A
)
# Could hold an identifier only a decoding shows (`jane&#64;acme.com`, `jane%40acme.com`).
_ENCODED = re.compile(r"[\uff20\ufe6b]|%40|&#|&commat;|\\u|linkedin[\u3002\uff0e\uff61]", re.I)
_ENCODING_MARKS = frozenset("%&\\")  # every `_ENCODED` match holds one, or a non-ASCII character


def _encoded(text: str) -> bool:
    """`_ENCODED.search(text)`, the regex skipped for ASCII text without `%`, `&` or `\\`."""
    if text.isascii() and _ENCODING_MARKS.isdisjoint(text):
        return False
    return _ENCODED.search(text) is not None


@dataclass(slots=True)
class Found:
    """Every candidate string (or number) in a document and the identifiers it carries."""

    by_raw: dict[Raw, tuple[Identifier, ...]] = field(default_factory=dict)
    keys: dict[str, tuple[Identifier, ...]] = field(default_factory=dict)  # object keys

    def query(self) -> dict[RuleType, set[str]]:
        found = [*self.by_raw.values(), *self.keys.values()]
        return query_for(i for ids in found for i in ids)

    def denied_keys(self, answer: Lookup) -> dict[str, RuleType]:
        """Object keys that hold a denied identifier (their members go), with its type."""
        return _denied(self.keys, answer)

    def denied(self, answer: Lookup) -> dict[Raw, RuleType]:
        """The raw values to remove, with the type that denied each (for metrics)."""
        return _denied(self.by_raw, answer)


def _denied(found: dict[K, tuple[Identifier, ...]], answer: Lookup) -> dict[K, RuleType]:
    out: dict[K, RuleType] = {}
    for raw, identifiers in found.items():
        for rule_type, normal in identifiers:
            if is_denied(rule_type, normal, answer):
                out[raw] = rule_type
                break
    return out


def query_for(identifiers: Iterable[Identifier]) -> dict[RuleType, set[str]]:
    """What to ask the store: emails also ask for their domain and its parents."""
    query: dict[RuleType, set[str]] = {}
    for rule_type, normal in identifiers:
        (query.get(rule_type) or query.setdefault(rule_type, set())).add(normal)
    for host in {normal.rpartition("@")[2] for normal in query.get(RuleType.EMAIL, ())}:
        query.setdefault(RuleType.DOMAIN, set()).update(normalize.parent_domains(host))
    return query  # each host's domains once (above): a body repeats its hosts


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
    _Walk(found.by_raw, found.keys, region).value(doc, False)
    return found


@dataclass(slots=True)
class _Walk:
    """One pass over the document: values, numbers and object keys."""

    out: dict[Raw, tuple[Identifier, ...]]
    keys: dict[str, tuple[Identifier, ...]]
    region: str

    def node(self, node: dict[str, Any] | list[Any], phone_ctx: bool) -> None:
        if type(node) is dict:
            typed = phone_ctx or typed_phone(node)
            for key, value in node.items():
                if candidate(key):
                    ids = identifiers(key, False, self.region)
                    if ids:
                        self.keys[key] = ids
                self.value(value, typed or is_phone_key(key))
        else:
            for value in node:
                self.value(value, phone_ctx)

    def value(self, value: Any, phone_ctx: bool) -> None:
        kind = type(value)
        if kind is str:
            if phone_ctx or candidate(value):
                self.scalar(value, phone_ctx)
        elif kind is dict or kind is list:
            self.node(value, phone_ctx)
        elif (kind is int or kind is float) and (phone_ctx or abs(value) >= _PHONE_SIZE):
            self.scalar(value, phone_ctx)

    def scalar(self, value: Raw, phone_ctx: bool) -> None:
        found = identifiers(value, phone_ctx, self.region)
        if found:
            known = self.out.get(value)
            self.out[value] = found if known is None else tuple(dict.fromkeys(known + found))


_PHONE_SIZE = 10**6  # a number below has fewer than seven digits: no phone


def candidate(text: str) -> bool:
    """Cheap pre-filter: could `text` hold an identifier at all?"""
    return (
        "@" in text or _LINKEDIN_HINT(text) is not None or _SEVEN_DIGITS(text) is not None
        or _encoded(text)
    )


@lru_cache(maxsize=65_536)
def identifiers(value: Raw, phone_ctx: bool, region: str) -> tuple[Identifier, ...]:
    """`read_identifiers`, cached: responses repeat their contacts."""
    return read_identifiers(value, phone_ctx, region)


def read_identifiers(value: Raw, phone_ctx: bool, region: str) -> tuple[Identifier, ...]:
    """The identifiers in one string or number.

    Strings: emails, LinkedIn profiles, phones anywhere (the text scanner's phone windows),
    and, where something is encoded (entities, percent, `\\u` escapes), every candidate the
    text scanner reads through the decoding; under a phone key also the value's digits.
    Numbers: phone-length whole numbers, floats included (`1.5125550100e10`).
    """
    if not isinstance(value, str):
        return _number(value, phone_ctx, region)
    if phone_ctx and _PLUS_DIGITS.fullmatch(value):  # `+15125550100`, the usual phone
        normal = normalize.phone(value, region)  # a number: `phone_candidates` is its form
        if normal is not None:
            return ((RuleType.PHONE, normal),)
        return tuple((RuleType.PHONE, n) for n in normalize.phone_candidates(value, region))
    seven = _SEVEN_DIGITS(value)
    if not phone_ctx and seven is None and (plain := _plain(value)) is not None:
        return plain
    return _read_text(value, phone_ctx, region, seven is not None)


def _plain(value: str) -> tuple[Identifier, ...] | None:
    """`_read_text` of a plain address (`jane.doe@acme.com`) or profile URL
    (`https://www.linkedin.com/in/jane-doe`) outside a phone context with fewer than seven
    digits, most values of a response: its one normal form. None for any other text."""
    if _PLAIN_EMAIL.fullmatch(value):
        normal = normalize.email(value)
        return ((RuleType.EMAIL, normal),) if normal else ()
    if normalize.PLAIN_PROFILE.fullmatch(value):  # `linkedin`'s own plain spelling
        normal = normalize.linkedin(value)
        return ((RuleType.LINKEDIN, normal),) if normal else ()
    return None


def _read_text(value: str, phone_ctx: bool, region: str, seven: bool) -> tuple[Identifier, ...]:
    """`read_identifiers` of any string (`seven`: seven digits in it): the reference of the
    plain ones' steps (`_plain`; tests/test_match.py compares them)."""
    found = list(_find(value, phone_ctx, region))
    encoded = _encoded(value)
    if encoded or seven:
        found += [
            (c.kind, n) for c in scan.scan(value, region)
            if encoded or c.kind is RuleType.PHONE for n in c.normal
        ]
    return tuple(dict.fromkeys(found))


def _number(value: int | float, phone_ctx: bool, region: str) -> tuple[Identifier, ...]:
    text = repr(value) if type(value) is float else str(value)
    digits = scan.number_digits(text) if type(value) is float else str(abs(int(value)))
    if digits is None:
        return ()
    found = [(c.kind, n) for c in scan.scan(digits, region) for n in c.normal]
    if phone_ctx:
        found += [(RuleType.PHONE, n) for n in normalize.phone_candidates(digits, region)]
    return tuple(dict.fromkeys(found))


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
