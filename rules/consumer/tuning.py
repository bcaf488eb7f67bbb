"""The consumer's knobs."""

from __future__ import annotations

from dataclasses import dataclass

from rules.events import MAX_EVENT_BYTES
from rules.model import MAX_VALUES_PER_CHANGE


@dataclass(frozen=True, slots=True)
class ConsumerTuning:
    """Knobs with safe defaults; tests and the benchmark shorten the timings."""

    max_records: int = 500
    max_values_per_write: int = 100_000
    poll_timeout: float = 0.5
    check_interval: float = 1.0
    stall_after: float = 60.0
    stall_report: float = 5.0
    """Seconds without progress while behind before `/readyz` detail names the stall."""
    max_event_values: int = MAX_VALUES_PER_CHANGE
    max_event_bytes: int = MAX_EVENT_BYTES
    backoff: tuple[float, float] = (0.1, 5.0)
    metadata_max_age: float = 5.0
    """Seconds between metadata refreshes: how soon partitions added to the topic are read
    (aiokafka's default is 5 minutes, all that time with the consumer ready)."""
    metadata_timeout: float = 10.0
    """Seconds a metadata refresh may take before a record placed ahead of our partition count
    is retried later (rules/consumer/placement.py)."""
