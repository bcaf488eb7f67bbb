"""Prometheus metrics of the rule side: the consumer, and company matches on responses.

Default registry, served by the admin listener.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from prometheus_client import Counter, Gauge, Histogram

EVENTS_APPLIED = Counter(
    "denyproxy_rule_events_applied_total",
    "Rule events written to the store.",
)

EVENTS_REJECTED = Counter(
    "denyproxy_rule_events_rejected_total",
    "Rule events dead-lettered (unreadable, misrouted, too large, ...), by reason.",
    ["reason"],
)

HITS_DROPPED = Counter(
    "denyproxy_suppression_hits_dropped_total",
    "Suppression counts not recorded: the pending batch was full (the store unreachable).",
)

CONSUMER_LAG = Gauge(
    "denyproxy_consumer_lag",
    "Records on the rule topic not yet applied to the store, per assigned partition.",
    ["partition"],
)

CONSUMER_STALLED = Gauge(
    "denyproxy_consumer_stalled_seconds",
    "Seconds since the consumer last made progress while it had records to apply (0: none).",
)

PUBLISH_TO_APPLIED = Histogram(
    "denyproxy_rule_publish_to_applied_seconds",
    "From an event's ts to its write to the store (live events only, not rebuilds).",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
)


def applied(event_times: Sequence[float], live: bool) -> None:
    """Counters after a write; latency only for live events (a rebuild replays old ones)."""
    EVENTS_APPLIED.inc(len(event_times))
    if live:
        wall = time.time()
        for ts in event_times:
            PUBLISH_TO_APPLIED.observe(max(wall - ts, 0.0))

COMPANY_MATCHES = Counter(
    "denyproxy_company_matches_total",
    "Response records removed by a company rule, by the highest tier that matched "
    "(external_id, domain, name_city, name).",
    ["tier"],
)
