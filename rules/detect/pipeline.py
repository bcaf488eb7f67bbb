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

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from rules.detect import company, finder, gather, joins, splice
from rules.detect.contact import CONTACT_META_KEYS
from rules.detect.match import (
    Identifier,
    Policy,
    identifiers,
    is_denied,
    query_for,
    read_identifiers,
)
from rules.detect.scan import Candidate, identifiers_in, scan_bytes, shortest_denied
from rules.detect.structure import Identify, Structure
from rules.model import Lookup, RuleType

Site = tuple[int, tuple[Identifier, ...]]  # token index, its identifiers


@dataclass(frozen=True, slots=True)
class Inspection:
    """A parsed body and every candidate both detectors found in it."""

    body: bytes
    structure: Structure  # the flat scan: sites, and the tokens a splice needs
    sites: Sequence[Site]  # structural: token → identifiers (a compiled `Sites`, or a list)
    text: Sequence[Candidate]  # text scanner: byte spans → normal forms (a compiled
    # `Candidates`: its items are built when read; or a tuple)
    asked: dict[RuleType, set[str]]  # what to ask the store (read it, do not change it)
    companies: Sequence[company.CompanyRecord] = ()  # records → company keys (a compiled
    # `CompanyRecords`: its items are built when read; or a tuple)

    @property
    def found(self) -> frozenset[Identifier]:
        """Every identifier of both detectors, once (the query holds them all)."""
        return gather.found(self.asked)

    def identifiers(self) -> set[Identifier]:
        return set(self.found)

    def query(self) -> dict[RuleType, set[str]]:
        return self.asked


@dataclass(frozen=True, slots=True)
class Filtered:
    body: bytes  # the input bytes themselves when nothing was removed
    counts: dict[RuleType, int] = field(default_factory=dict)
    unplaced: int = 0  # denied spans outside every token or records outside a list, records
    # too large to check (`company.unchecked`): refuse
    replaced: tuple[splice.Replaced, ...] = ()  # input regions the splice replaced, in order
    denied_text: tuple[Candidate, ...] | None = None  # text candidates `answer` denies (verify
    answer: Lookup | None = None  # reads them again: worked out once, for this answer only)


def inspect(body: bytes, region: str, max_depth: int = 512) -> Inspection:
    """Both detectors over `body`; `JsonBodyError` if it is not JSON this proxy can read."""
    found = finder.json_structure(body, CONTACT_META_KEYS, max_depth)
    sites = structural(found, region)
    text = scan_bytes(body, region)
    text = tuple(text) if type(text) is list else text  # the reference's: kept immutable
    asked = gather.asked(sites, text)
    companies, keys = company.candidates_and_query(found)
    if companies:
        asked[RuleType.COMPANY] = keys
    return Inspection(body, found, sites, text, asked, companies)


def structural(found: Structure, region: str) -> Sequence[Site]:
    """Identifiers site by site: phones anywhere, object keys, phone context from keys.

    No `candidate` pre-filter here: `could_hold` (structure.py) filtered already, and
    `identifiers` of a non-candidate is empty. The compiled structure asks `identifiers` once
    per distinct token text and keeps the answer (`_SITES`); the reference asks per site."""
    memo, identify = _SITES.of(finder.FUSED, region) if finder.FUSED else (None, _identify(region))
    return found.identified(memo, identify)


def _identify(region: str) -> Identify:
    def identify(value: str | int | float, phone_ctx: bool) -> tuple[Identifier, ...]:
        return identifiers(value, phone_ctx, region)

    return identify


def _identify_kept(region: str) -> Identify:
    """`_identify` for the compiled memo: a string it keeps is read uncached (`KEPT_TEXT`);
    numbers (a token of any length) through the cache."""

    def identify(value: str | int | float, phone_ctx: bool) -> tuple[Identifier, ...]:
        if type(value) is str and len(value) < finder.KEPT_TEXT:
            return read_identifiers(value, phone_ctx, region)
        return identifiers(value, phone_ctx, region)

    return identify


_SITES = finder.Memos(_identify_kept)


def filtered(inspection: Inspection, answer: Lookup, policy: Policy) -> Filtered:
    """The body without the denied tokens (by `policy`); the same bytes if none is denied."""
    denied, unplaced, spans = _placed(inspection, answer)
    records = company.denied_records(inspection.companies, answer)
    unplaced += company.OUTSIDE in records  # a denied company no cut can remove: refuse
    unplaced += company.unchecked(inspection.companies)  # not read whole: refuse
    if not denied and not records:
        return Filtered(inspection.body, {}, unplaced, (), spans, answer)
    body, replaced = splice.spliced(
        inspection.structure, inspection.body, sorted(denied), list(records), policy
    )
    counts: dict[RuleType, int] = {}
    for rule_type in [*denied.values(), *[RuleType.COMPANY] * len(records)]:
        counts[rule_type] = counts.get(rule_type, 0) + 1
    company.observed(records.values())
    return Filtered(body, counts, unplaced, tuple(replaced), spans, answer)


def denied_tokens(inspection: Inspection, answer: Lookup) -> tuple[dict[int, RuleType], int]:
    """Token index → the type that denied it; and how many denied spans hit no token."""
    denied, unplaced, _ = _placed(inspection, answer)
    return denied, unplaced


def _placed(
    inspection: Inspection, answer: Lookup
) -> tuple[dict[int, RuleType], int, tuple[Candidate, ...]]:
    """`denied_tokens`, and the text candidates `answer` denies."""
    hits = gather.hits(inspection.asked, answer)
    if not hits:
        return {}, 0, ()
    placed, spans = gather.denied(inspection.sites, inspection.text, hits)
    structure = inspection.structure
    if _native_place is not None and type(structure) is _NativeStructure:
        out, unplaced = _native_place(structure, placed, spans)
    else:
        out, unplaced = _place_reference(structure, placed, spans)
    return out, unplaced, tuple(spans)


def _place_reference(
    structure: Structure, placed: Iterable[tuple[int, RuleType]], spans: Iterable[Candidate]
) -> tuple[dict[int, RuleType], int]:
    """`placed` as a dict, with the tokens each shortest denied span overlaps (the first type
    that denied a token kept); and how many spans overlap no token (rules/native/src/place.rs)."""
    out = dict(placed)
    unplaced = 0
    for found in shortest_denied(spans, lambda c: True):  # `spans`: the denied ones
        overlapping = structure.overlapping(found.start, found.end)
        unplaced += not overlapping
        for index in overlapping:
            out.setdefault(index, found.kind)
    return out, unplaced


_Place = Callable[[Structure, object, object], tuple[dict[int, RuleType], int]]
_native_place: _Place | None = finder._native.place if finder._native is not None else None
_NativeStructure: object = finder._native.Structure if finder._native is not None else None


def _denied(ids: Iterable[Identifier], answer: Lookup) -> set[Identifier]:
    """The identifiers `answer` denies, each asked once (none when it denies nothing)."""
    if not any(answer.values()):
        return set()
    if answer.get(RuleType.DOMAIN):  # an email is denied by its domain's rules too
        return {(kind, normal) for kind, normal in ids if is_denied(kind, normal, answer)}
    # the answer is the few denied values, the body's identifiers are many: walk the answer
    denied = {(kind, normal) for kind, values in answer.items() for normal in values}
    return denied.intersection(ids)


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
    unchanged), so an unchanged body is not scanned twice. Otherwise only the compiled finding
    runs (the compiled scan, its normal forms remembered).
    """
    if known is None:  # the identifiers alone, no `Candidate` built
        return verdict(identifiers_in(out, [(0, len(out))], region), answer, asked)
    return verdict({(c.kind, n) for c in known for n in c.normal}, answer, asked)


def verify_filtered(
    inspection: Inspection, result: Filtered, region: str, answer: Lookup,
    asked: Lookup | None = None,
) -> Verdict:
    """`verify` of `filtered`'s output without a second full scan, the same verdict.

    The inspection's own candidates were all asked for: of them only the denied ones can
    change the verdict, and only if they are still there (not all of them are placed in a
    token). An unchanged body holds them all; a spliced one is read again around its joins,
    or in full when its joins are so many that the windows cost more (`joins.windows_pay`).
    `asked`: the whole lookup when it asked more than this body's query (headers too)."""
    asked = inspection.asked if asked is None else asked
    if result.body is not inspection.body and not joins.windows_pay(result.replaced, result.body):
        return verify(result.body, region, answer, asked)
    denied = _denied_text(inspection, result, answer)
    if result.body is inspection.body:
        ids = {(c.kind, n) for c in denied for n in c.normal}
    else:
        ids = joins.output_ids(
            inspection.structure, inspection.text, inspection.body, result.body,
            result.replaced, region, reuse=denied,
        )
    return verdict(ids, answer, asked)


def _denied_text(inspection: Inspection, result: Filtered, answer: Lookup) -> Sequence[Candidate]:
    """The inspection's text candidates `answer` denies (`filtered` found them already)."""
    if result.denied_text is not None and result.answer is answer:
        return result.denied_text
    hits = gather.hits(inspection.asked, answer)
    return gather.denied((), inspection.text, hits)[1] if hits else []


def verdict(ids: Iterable[Identifier], answer: Lookup, asked: Lookup) -> Verdict:
    """`asked` is a query (`query_for`): an email in it comes with its domains."""
    ids = ids if isinstance(ids, set) else set(ids)
    leaked = bool(_denied(ids, answer))
    rest = {(kind, normal) for kind, normal in ids if normal not in asked.get(kind, ())}
    if not rest:  # the usual case: every identifier went into the lookup
        return Verdict(leaked, {})
    unasked: dict[RuleType, set[str]] = {}
    for rule_type, values in query_for(rest).items():
        missing = values - set(asked.get(rule_type, ()))
        if missing:
            unasked[rule_type] = missing
    return Verdict(leaked, unasked)
