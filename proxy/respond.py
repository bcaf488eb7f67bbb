"""The one dispatch point of the response path: a body kind selects its filter.

Every filter has the same shape, so the response path stays one straight line whatever the
body is: the filter reads the (content-decoded) body and finds its candidates (→
`Plan.query()`, joined with the headers' into the one lookup); `Plan.filtered(answer,
policy)` removes the denied ones; `Plan.verify(result, …)` reads the output again the cheapest
way the plan allows (a JSON body only around its splice joins, an unchanged text body from the
candidates already found). The kind comes from `proxy.media.classify`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from operator import attrgetter
from typing import Protocol

from proxy.errors import UpstreamBodyError
from proxy.media import BodyKind, Label, TextBody
from rules.detect import company, pipeline, rendered
from rules.detect.jsonspan import JsonBodyError
from rules.detect.match import Policy, query_for
from rules.detect.scan import Candidate
from rules.model import Lookup, RuleType

MAX_DEPTH = 256  # nesting a filter reads; deeper is a 502 (no real API nests this deep)


class Plan(Protocol):
    def query(self) -> dict[RuleType, set[str]]: ...

    def filtered(self, answer: Lookup, policy: Policy) -> pipeline.Filtered: ...

    def verify(
        self, result: pipeline.Filtered, region: str, answer: Lookup, asked: Lookup
    ) -> pipeline.Verdict: ...


BodyFilter = Callable[[bytes, Label, str], Plan]


@dataclass(frozen=True, slots=True)
class JsonPlan:
    inspection: pipeline.Inspection | None  # None: an empty body, nothing to read

    def query(self) -> dict[RuleType, set[str]]:
        return self.inspection.query() if self.inspection else {}

    def filtered(self, answer: Lookup, policy: Policy) -> pipeline.Filtered:
        if self.inspection is None:
            return pipeline.Filtered(b"")
        return pipeline.filtered(self.inspection, answer, policy)

    def unchecked(self) -> int:
        """Records too large to check for company rules: they refuse whatever the answer."""
        return company.unchecked(self.inspection.companies) if self.inspection else 0

    def verify(
        self, result: pipeline.Filtered, region: str, answer: Lookup, asked: Lookup
    ) -> pipeline.Verdict:
        if self.inspection is None:
            return pipeline.verify(result.body, region, answer, asked)
        verdict = pipeline.verify_filtered(self.inspection, result, region, answer, asked)
        if result.body is self.inspection.body:
            return verdict  # its rendered candidates are the inspection's
        shown = rendered.candidates_bytes(result.body, region)
        if not shown:
            return verdict
        more = pipeline.verdict({(c.kind, n) for c in shown for n in c.normal}, answer, asked)
        unasked = {t: verdict.unasked.get(t, set()) | more.unasked.get(t, set())
                   for t in {*verdict.unasked, *more.unasked}}
        return pipeline.Verdict(verdict.leaked or more.leaked, unasked)


def json_filter(body: bytes, region: str) -> JsonPlan:
    """JSON of any shape; a body the proxy cannot read is a 502, never passed on."""
    if not body or body.isspace():
        return JsonPlan(None)
    try:
        inspection = pipeline.inspect(body, region, MAX_DEPTH)
    except JsonBodyError as exc:
        detail = f"upstream sent a JSON body that cannot be filtered: {exc}"
        raise UpstreamBodyError(detail) from exc
    return JsonPlan(with_rendered(inspection, region))


def with_rendered(inspection: pipeline.Inspection, region: str) -> pipeline.Inspection:
    """The inspection with the candidates of its strings as a page renders them (HTML in a
    field: `<wbr>`, `\\u0000` dropped): a denied one denies its string token. Merged in span
    order, as the scanner's: the join windows (rules/detect/joins.py) bisect on it."""
    found = rendered.candidates_bytes(inspection.body, region)
    if not found:
        return inspection
    ids = {(c.kind, n) for c in found for n in c.normal}
    asked = {rule_type: set(values) for rule_type, values in inspection.asked.items()}
    for rule_type, values in query_for(ids).items():
        asked.setdefault(rule_type, set()).update(values)
    text = tuple(sorted((*inspection.text, *found), key=_SPAN_ORDER))
    return replace(inspection, text=text, asked=asked)


_SPAN_ORDER = attrgetter("start", "end", "kind")  # rules/detect/scan.py's order


@dataclass(slots=True)
class Embedded:
    """The JSON path bound to one answer, for the JSON documents inside a textual body (NDJSON
    lines, event data); counts what it removed."""

    documents: dict[bytes, JsonPlan]
    region: str
    answer: Lookup
    policy: Policy
    counts: dict[RuleType, int] = field(default_factory=dict)
    unplaced: int = 0  # denied company records outside every list (a line's top object)

    def __call__(self, document: bytes) -> bytes:
        plan = self.documents.get(document) or json_filter(document, self.region)
        result = plan.filtered(self.answer, self.policy)
        self.unplaced += result.unplaced
        for rule_type, count in result.counts.items():
            self.counts[rule_type] = self.counts.get(rule_type, 0) + count
        return result.body


@dataclass(frozen=True, slots=True)
class TextPlan:
    """NDJSON, SSE, text: the text scanner's candidates plus the JSON path's for the JSON
    documents inside, one lookup, `TextBody.output` with the JSON path bound."""

    decoded: bytes
    body: TextBody
    documents: dict[bytes, JsonPlan]
    label: Label

    def query(self) -> dict[RuleType, set[str]]:
        out = query_for({(c.kind, n) for c in self.body.all_candidates() for n in c.normal})
        for plan in self.documents.values():
            for rule_type, values in plan.query().items():
                out.setdefault(rule_type, set()).update(values)
        return out

    def filtered(self, answer: Lookup, policy: Policy) -> pipeline.Filtered:
        embedded = Embedded(self.documents, self.body.region, answer, policy)
        out = self.body.output(answer, policy, embedded)
        # the documents' unchecked records refuse even when no filter ran (nothing denied)
        unplaced = max(embedded.unplaced, sum(p.unchecked() for p in self.documents.values()))
        if out is None:
            return pipeline.Filtered(self.decoded, {}, unplaced)
        counts = self.body.counts(answer)
        for rule_type, count in embedded.counts.items():  # the larger reading of each type
            counts[rule_type] = max(count, counts.get(rule_type, 0))
        return pipeline.Filtered(out, counts, unplaced)  # a change removed a denied one

    def verify(
        self, result: pipeline.Filtered, region: str, answer: Lookup, asked: Lookup
    ) -> pipeline.Verdict:
        """The output read every way the body was (each charset, rendered), from the
        candidates already found when it went out unchanged."""
        if result.body is self.decoded:
            known = self.body.all_candidates()
        else:
            out = TextBody.of(self.body.kind, result.body, self.label, region)
            known = out.all_candidates()
        return pipeline.verify(result.body, region, answer, asked, known)

    def known(self) -> Sequence[Candidate]:
        return self.body.candidates

    def readable(self, out: bytes) -> bytes:
        text = self.body.text
        if text.codec == "utf-8":
            return out
        value = out.removeprefix(text.bom).decode(text.codec, errors="surrogateescape")
        return value.encode("utf-8", errors="surrogatepass")


def _json(body: bytes, label: Label, region: str) -> Plan:
    return json_filter(body, region)


def _text(kind: BodyKind) -> BodyFilter:
    def read(body: bytes, label: Label, region: str) -> Plan:
        text = TextBody.of(kind, body, label, region)
        documents = {d: json_filter(d, region) for d in text.json_documents()}
        return TextPlan(body, text, documents, label)
    return read


FILTERS: dict[BodyKind, BodyFilter] = {
    BodyKind.JSON: _json,
    BodyKind.NDJSON: _text(BodyKind.NDJSON),
    BodyKind.SSE: _text(BodyKind.SSE),
    BodyKind.TEXT: _text(BodyKind.TEXT),
}


def plan_for(kind: BodyKind, body: bytes, label: Label, region: str) -> Plan:
    """The filter of `kind` over a content-decoded body (BINARY never gets here: it streams)."""
    return FILTERS[kind](body, label, region)
