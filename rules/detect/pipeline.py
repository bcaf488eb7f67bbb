"""The JSON body filter as pure steps around the one store lookup: inspect → filtered → verify.

Two independent detectors feed one lookup. The structural one reads every token of the raw
body (`rules/detect/jsonspan.py`: values, numbers, object keys, duplicate keys included) with its
context (phone keys, typed contact points) and decides *what* is removed. The text scanner
(`rules.detect.scan`) reads the body bytes as text, whatever surrounds an identifier; a denied
candidate it finds inside a token denies that token too. The output is spliced
(`rules/detect/splice.py`): every byte not removed stays as it was. Then `verify` reads the output
again with the text scanner: what went out is checked, not assumed.

Free text: a string that holds a denied identifier among other text is removed as a whole
(`strip`: a member value becomes null, a list element goes; `drop`: its record goes). Cutting
the identifier out of the string would keep the rest, but also whatever spelling of it the
detectors did not read as one; nulling the string cannot leave a piece behind.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial

from rules.detect import company, jsonspan, splice
from rules.detect.contact import CONTACT_META_KEYS, TYPE_KEYS, is_phone_key, is_phone_type
from rules.detect.finder import scan_json
from rules.detect.match import Identifier, Policy, candidate, identifiers, is_denied, query_for
from rules.detect.scan import Candidate, scan_bytes, shortest_denied
from rules.model import Lookup, RuleType

_PHONE_SIZE = 10**6  # a number below has fewer than seven digits: no phone
Site = tuple[int, tuple[Identifier, ...]]  # token index, its identifiers


@dataclass(frozen=True, slots=True)
class Inspection:
    """A parsed body and every candidate both detectors found in it."""

    body: bytes
    scan: jsonspan.Scan
    sites: tuple[Site, ...]  # structural: token → identifiers
    text: tuple[Candidate, ...]  # text scanner: byte spans → normal forms
    companies: tuple[company.CompanyRecord, ...] = ()  # records → company keys

    def identifiers(self) -> set[Identifier]:
        found = {i for _, ids in self.sites for i in ids}
        found.update((c.kind, n) for c in self.text for n in c.normal)
        return found

    def query(self) -> dict[RuleType, set[str]]:
        query = query_for(self.identifiers())
        if self.companies:
            query[RuleType.COMPANY] = company.query(self.companies)
        return query


@dataclass(frozen=True, slots=True)
class Filtered:
    body: bytes  # the input bytes themselves when nothing was removed
    counts: dict[RuleType, int] = field(default_factory=dict)
    unplaced: int = 0  # denied text candidates outside every token: verify will refuse


def inspect(body: bytes, region: str, max_depth: int = 512) -> Inspection:
    """Both detectors over `body`; `JsonBodyError` if it is not JSON this proxy can read."""
    found = scan_json(body, CONTACT_META_KEYS, max_depth)
    sites = tuple(structural(found, region))
    companies = company.company_candidates(found)
    return Inspection(body, found, sites, tuple(scan_bytes(body, region)), companies)


def structural(found: jsonspan.Scan, region: str) -> Iterator[Site]:
    """Identifiers token by token: phones anywhere, object keys, phone context from keys."""
    typed = typed_points(found)
    for index, token in enumerate(found.tokens):
        ctx = token.kind is not jsonspan.Kind.KEY and (token.parent in typed or _phone_path(token))
        value = token.value
        if isinstance(value, str):
            if not (ctx or candidate(value)):
                continue
        elif not (ctx or abs(value) >= _PHONE_SIZE):
            continue
        ids = identifiers(value, ctx, region)
        if ids:
            yield index, ids


def _phone_path(token: jsonspan.Token) -> bool:
    return any(type(part) is str and is_phone_key(part) for part in token.path)


def typed_points(found: jsonspan.Scan) -> set[int]:
    """Objects that say they are a phone: `{"type": "phone", …}`, `{"channel": "whatsapp"}`."""
    return {
        t.parent for t in found.tokens
        if t.kind is jsonspan.Kind.STRING and t.key in TYPE_KEYS
        and type(t.value) is str and is_phone_type(t.value)
    }


def filtered(inspection: Inspection, answer: Lookup, policy: Policy) -> Filtered:
    """The body without the denied tokens (by `policy`); the same bytes if none is denied."""
    denied, unplaced = denied_tokens(inspection, answer)
    records = company.denied_records(inspection.companies, answer)
    if not denied and not records:
        return Filtered(inspection.body, {}, unplaced)
    tokens = [inspection.scan.tokens[i] for i in sorted(denied)]
    edits = splice.edits(inspection.scan, tokens, policy)
    edits += company.record_edits(inspection.scan, records)
    body = splice.apply(inspection.body, edits)
    counts: dict[RuleType, int] = {}
    for rule_type in [*denied.values(), *[RuleType.COMPANY] * len(records)]:
        counts[rule_type] = counts.get(rule_type, 0) + 1
    company.observed(records.values())
    return Filtered(body, counts, unplaced)


def denied_tokens(inspection: Inspection, answer: Lookup) -> tuple[dict[int, RuleType], int]:
    """Token index → the type that denied it; and how many denied spans hit no token."""
    out: dict[int, RuleType] = {}
    for index, ids in inspection.sites:
        hit = _first_denied(ids, answer)
        if hit is not None:
            out[index] = hit
    tokens = inspection.scan.tokens
    starts = [t.start for t in tokens]
    unplaced = 0
    for found in shortest_denied(inspection.text, partial(_denies, answer)):
        overlapping = list(_overlapping(tokens, starts, found.start, found.end))
        unplaced += not overlapping
        for index in overlapping:
            out.setdefault(index, found.kind)
    return out, unplaced


def _denies(answer: Lookup, found: Candidate) -> bool:
    return any(is_denied(found.kind, n, answer) for n in found.normal)


def _first_denied(ids: Iterable[Identifier], answer: Lookup) -> RuleType | None:
    return next((kind for kind, normal in ids if is_denied(kind, normal, answer)), None)


def _overlapping(
    tokens: tuple[jsonspan.Token, ...], starts: list[int], start: int, end: int
) -> Iterator[int]:
    index = max(0, bisect_right(starts, start) - 1)
    while index < len(tokens) and tokens[index].start < end:
        if tokens[index].end > start:
            yield index
        index += 1


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the text scanner reads in the final bytes."""

    leaked: bool  # a denied identifier is still there: the response must not go out
    unasked: dict[RuleType, set[str]]  # candidates the one lookup did not cover


def verify(
    out: bytes, region: str, answer: Lookup, asked: Lookup,
    known: Iterable[Candidate] | None = None,
) -> Verdict:
    """Reads `out` again: denied leftovers, and candidates `asked` did not hold.

    `known`: the candidates of `out` when they were found already (the body went out
    unchanged), so an unchanged body is not scanned twice.
    """
    found = scan_bytes(out, region) if known is None else known
    ids = {(c.kind, n) for c in found for n in c.normal}
    return verdict(ids, answer, asked)


def verdict(ids: Iterable[Identifier], answer: Lookup, asked: Lookup) -> Verdict:
    ids = set(ids)
    leaked = any(is_denied(kind, normal, answer) for kind, normal in ids)
    unasked: dict[RuleType, set[str]] = {}
    for rule_type, values in query_for(ids).items():
        missing = values - set(asked.get(rule_type, ()))
        if missing:
            unasked[rule_type] = missing
    return Verdict(leaked, unasked)
