"""Prometheus metrics of the HTTP side (names: denyproxy_<area>_<thing>_<unit>)."""

from __future__ import annotations

import functools

from prometheus_client import Counter, Gauge

from proxy.tallies import Increments, counter, histogram
from rules.model import RuleType

_FAST = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)

# Per request: counted in plain Python in one process (proxy/tallies.py says why)
REQUESTS = counter("denyproxy_http_requests_total", "Requests answered", ["method", "status"])
UPSTREAM_LATENCY = histogram(
    "denyproxy_upstream_latency_seconds",
    "Time from forwarding a request to the upstream's response headers",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
SUPPRESSED = counter("denyproxy_suppressed_total", "Identifiers suppressed", ["type"])
STORE_LATENCY = histogram(
    "denyproxy_store_latency_seconds", "One rule lookup round trip", buckets=_FAST
)
STORE_ERRORS = Counter("denyproxy_store_errors_total", "Rule lookups that failed (answered 503)")
OUTPUT_REFUSALS = Counter(
    "denyproxy_output_refusals_total",
    "Responses withheld (502): the final bytes or headers still held a denied identifier",
)
SECOND_LOOKUPS = Counter(
    "denyproxy_second_lookups_total",
    "Extra store round trips for candidates first seen in the final bytes (text joined across "
    "a removed span)",
)
READY = Gauge(
    "denyproxy_ready",
    "1 when the last /readyz answered 200, else 0 (set by the probe)",
    multiprocess_mode="livemax",  # only the parent (admin listener) sets it
)
READINESS_CHANGES = Counter(
    "denyproxy_readiness_changes_total",
    "Times /readyz changed its answer; a fast-rising count is a flapping instance",
)


METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
"""Methods counted by name; any other is `OTHER`, so a client cannot grow the label set."""


@functools.lru_cache(maxsize=1024)
def requests_counter(method: str, status: int) -> Increments:
    """The labelled child of REQUESTS: looked up once per (method, status), not per request."""
    return REQUESTS.labels(method if method in METHODS else "OTHER", str(status))


_SUPPRESSED_BY_TYPE: dict[RuleType, Increments] = {}


def suppressed_counter(rule_type: RuleType) -> Increments:
    """The labelled child of SUPPRESSED, made on first use (a type never suppressed is not
    exported): a plain dict, no enum `.value` or label lookup per response."""
    child = _SUPPRESSED_BY_TYPE.get(rule_type)
    if child is None:
        child = _SUPPRESSED_BY_TYPE[rule_type] = SUPPRESSED.labels(rule_type.value)
    return child


class ReadinessMetric:
    """The last readiness answer, so a change (not every probe) is counted."""

    last: bool | None = None

    def observe(self, ready: bool) -> None:
        READY.set(1 if ready else 0)
        if self.last is not None and ready != self.last:
            READINESS_CHANGES.inc()
        self.last = ready


READINESS = ReadinessMetric()
