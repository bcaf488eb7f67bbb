"""Per-assignment state: created when the group assigns partitions, dropped when it revokes them.

The Assignment object is also the loop's cancellation token: a batch fetched, or a write
retried, under an assignment that is no longer current is dropped (positions come again
from the store when the new assignment is positioned).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
from aiokafka.structs import TopicPartition

from rules import metrics


def _idle() -> asyncio.Event:
    idle = asyncio.Event()
    idle.set()
    return idle


@dataclass(eq=False, slots=True)
class Assignment:
    """The partitions of one assignment and how far the store has got in each."""

    partitions: frozenset[TopicPartition]
    positioned: bool = False
    revoked: bool = False
    applied: dict[int, int] = field(default_factory=dict)
    """Next offset the store has reached, per partition."""
    targets: dict[int, int] = field(default_factory=dict)
    """End offset seen when the partition was positioned (or rebuilt)."""
    idle: asyncio.Event = field(default_factory=_idle)
    """Clear while a store write is in flight: a revocation (or a stop) waits for it."""

    def caught_up(self) -> bool:
        """Positioned, and every partition reached the end offset seen then."""
        return self.positioned and all(
            self.applied.get(p, -1) >= end for p, end in self.targets.items()
        )

    def start_at(self, partition: int, start: int, target: int) -> None:
        self.applied[partition], self.targets[partition] = start, target

    def report_lag(self, kafka: AIOKafkaConsumer, topic: str) -> dict[int, int]:
        """Records not yet applied, per partition (the highwater once a fetch has seen it)."""
        lags: dict[int, int] = {}
        for p, applied in self.applied.items():
            high = kafka.highwater(TopicPartition(topic, p))
            end = self.targets.get(p, applied) if high is None else high
            lags[p] = max(end - applied, 0)
            metrics.CONSUMER_LAG.labels(str(p)).set(lags[p])
        return lags


class Assignments:
    """The current assignment; what the rebalance listener calls (and nothing else)."""

    def __init__(self, kafka: AIOKafkaConsumer) -> None:
        self._kafka = kafka
        self.current: Assignment | None = None
        self.closed = False
        """The consumer is stopping: no assignment is current again, the loop ends."""

    def is_current(self, assignment: Assignment | None) -> bool:
        return assignment is self.current and not (assignment and assignment.revoked)

    def assign(self, partitions: set[TopicPartition]) -> None:
        """After assignment: paused until the loop seeks them from the store."""
        self.current = Assignment(frozenset(partitions), revoked=self.closed)
        if partitions:
            self._kafka.pause(*partitions)

    async def revoke(self) -> None:
        """Before revocation (or a stop): drop the batch in hand, let a write in flight finish."""
        current, self.current = self.current, None
        if current is None:
            return
        current.revoked = True
        await current.idle.wait()
        for tp in current.partitions:
            forget_lag(tp.partition)

    async def close(self) -> None:
        """At stop: as a revocation, and for good (a later assignment is never current)."""
        self.closed = True
        await self.revoke()


class Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka's base is untyped
    """Hands group rebalances to Assignments; never takes a lock the fetch loop holds."""

    def __init__(self, assignments: Assignments) -> None:
        self._assignments = assignments

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._assignments.revoke()

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self._assignments.assign(set(assigned))


def forget_lag(partition: int) -> None:
    with contextlib.suppress(KeyError):
        metrics.CONSUMER_LAG.remove(str(partition))
