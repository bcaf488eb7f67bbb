"""The one dispatch point of the response path: a body kind selects its filter.

Every filter has the same shape, so the response path stays one straight line whatever the
body is: `inspect(body, region)` finds the candidates (→ `Plan.query()`, joined with the
headers' into the one lookup); `Plan.filtered(answer, policy)` removes the denied ones;
`Plan.known()` gives the candidates of the unchanged body so `verify` need not scan it twice.
JSON is wired here; the text kinds (NDJSON, SSE, CSV, plain, HTML, XML) plug into `FILTERS`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from proxy.errors import UpstreamBodyError
from rules import pipeline
from rules.jsonspan import JsonBodyError
from rules.match import Policy
from rules.model import Lookup, RuleType
from rules.scan import Candidate

JSON = "json"
MAX_DEPTH = 256  # nesting a filter reads; deeper is a 502 (no real API nests this deep)
_JSON_TYPES = ("application/json", "text/json")


class Plan(Protocol):
    def query(self) -> dict[RuleType, set[str]]: ...

    def filtered(self, answer: Lookup, policy: Policy) -> pipeline.Filtered: ...

    def known(self) -> Sequence[Candidate]: ...


BodyFilter = Callable[[bytes, str], Plan]


def body_kind(media_type: str) -> str | None:
    """Which filter reads a body of this media type; None: streamed untouched."""
    if media_type in _JSON_TYPES or media_type.endswith("+json"):
        return JSON
    return None


@dataclass(frozen=True, slots=True)
class JsonPlan:
    inspection: pipeline.Inspection | None  # None: an empty body, nothing to read

    def query(self) -> dict[RuleType, set[str]]:
        return self.inspection.query() if self.inspection else {}

    def filtered(self, answer: Lookup, policy: Policy) -> pipeline.Filtered:
        if self.inspection is None:
            return pipeline.Filtered(b"")
        return pipeline.filtered(self.inspection, answer, policy)

    def known(self) -> Sequence[Candidate]:
        return self.inspection.text if self.inspection else ()


def json_filter(body: bytes, region: str) -> JsonPlan:
    """JSON of any shape; a body the proxy cannot read is a 502, never passed on."""
    if not body or body.isspace():
        return JsonPlan(None)
    try:
        return JsonPlan(pipeline.inspect(body, region, MAX_DEPTH))
    except JsonBodyError as exc:
        detail = f"upstream sent a JSON body that cannot be filtered: {exc}"
        raise UpstreamBodyError(detail) from exc


FILTERS: dict[str, BodyFilter] = {JSON: json_filter}


def plan_for(kind: str, body: bytes, region: str) -> Plan:
    return FILTERS[kind](body, region)
