"""Where each assigned partition reads from: the store's mirrored offsets, else the beginning.

Positions come from the offsets mirrored in the store (written in the same pipeline as the
rules), not from Kafka's committed offsets: a store that lost them (Redis flushed or
restarted empty) is rebuilt by replaying the topic from the beginning, or, with the
changelog, from the rules it holds and the input offsets it recorded (rules/consumer/logged.py).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaTimeoutError
from aiokafka.structs import TopicPartition

from rules.consumer.assignment import Assignment, Assignments
from rules.consumer.readiness import ReadinessState, Signal
from rules.kafka import KafkaOptions, partition_ids
from rules.store import RuleWriter

log = logging.getLogger("rules.consumer")

Restore = Callable[[set[int]], Awaitable[dict[int, int]]]
"""Puts the changelog's rules of these partitions into the store; the input offsets reached."""


@dataclass(slots=True)
class TopicBounds:
    """Beginning and end offsets of every partition of the topic (not only ours)."""

    begin: dict[int, int] = field(default_factory=dict)
    end: dict[int, int] = field(default_factory=dict)

    def behind(self, mirrored: dict[int, int]) -> list[int]:
        """Partitions whose mirrored offset has not reached the end seen at (re)build."""
        return [p for p, end in self.end.items() if mirrored.get(p, self.begin.get(p, 0)) < end]


class Positions:
    """Seeks assigned partitions from the store, and back to the beginning on a rebuild."""

    def __init__(
        self,
        kafka: AIOKafkaConsumer,
        options: KafkaOptions,
        topic: str,
        store: RuleWriter,
        assignments: Assignments,
        restore: Restore | None = None,
    ) -> None:
        self._kafka, self._options, self._topic = kafka, options, topic
        self._store, self.assignments = store, assignments
        self._restore = restore
        self.bounds = TopicBounds()

    async def position(self, assignment: Assignment, readiness: ReadinessState) -> None:
        """Seek newly assigned partitions to the store's mirrored offsets (or the beginning).

        A partition without a mirrored offset starts at the beginning. If the store is marked
        complete that is a partition which had no events when it was completed; if not, the
        store is (re)building and this replays the partition into it.
        """
        await self._store.fence()  # before the offsets: a switch in between refuses our write
        ready = await self._store.ready()
        mirrored = await self._store.offsets()
        bounds = await self.fetch_bounds()
        mine = assignment.partitions & self._kafka.assignment()
        if not ready:
            mirrored.update(await self._restored({tp.partition for tp in mine} - set(mirrored)))
        if not self.assignments.is_current(assignment):
            return  # a rebalance came in between: the next assignment is positioned instead
        replay = [self._seek(tp, mirrored.get(tp.partition), bounds, ready, assignment)
                  for tp in mine]
        if any(replay):
            loading = sorted(tp.partition for tp, r in zip(mine, replay, strict=True) if r)
            log.info("loading partitions %s of %s from the beginning", loading, self._topic)
        readiness.advance(Signal.POSITIONED_COMPLETE if ready else Signal.POSITIONED_INCOMPLETE)
        self._kafka.resume(*mine)
        assignment.positioned = True

    def _seek(
        self,
        tp: TopicPartition,
        start: int | None,
        bounds: TopicBounds,
        ready: bool,
        assignment: Assignment,
    ) -> bool:
        """Seek one partition; True when that replays it into an incomplete store."""
        p, replay = tp.partition, False
        begin, end = bounds.begin[p], bounds.end[p]
        if start is None or not begin <= start <= end:
            _warn_out_of_range(p, start, begin, end)
            start, replay = begin, begin < end and not ready
        self._kafka.seek(tp, start)
        assignment.start_at(p, start, end)
        return replay

    async def rebuild(self, why: str) -> None:
        """Replay every assigned partition from the beginning (the store lost its state).

        The offsets of those partitions are reset in the store too: a write that raced the
        flush may have mirrored offsets whose rules are gone.
        """
        log.warning("rebuilding the rule store from the beginning of %s: %s", self._topic, why)
        assignment = self.assignments.current
        await self._store.set_ready(False)
        await self._store.fence()
        bounds = await self.fetch_bounds()
        tps = self._positioned(assignment)
        starts = {tp.partition: bounds.begin[tp.partition] for tp in tps}
        starts.update(await self._restored(set(starts)))
        await self._store.apply([], starts)
        if assignment is None or not self.assignments.is_current(assignment):
            return  # a rebalance re-positions from the store
        for tp in tps:
            self._kafka.seek(tp, starts[tp.partition])
            assignment.start_at(tp.partition, starts[tp.partition], bounds.end[tp.partition])

    async def _restored(self, partitions: set[int]) -> dict[int, int]:
        """With a changelog: its rules of `partitions` restored, and where the input goes on."""
        if self._restore is None or not partitions:
            return {}
        restored = await self._restore(partitions)
        if restored:
            log.info("restored partitions %s of %s from its changelog", sorted(restored),
                     self._topic)
            await self._store.apply([], restored)
        return restored

    async def mark_complete(self, readiness: ReadinessState) -> None:
        """Set the marker once every partition's mirrored offset reached its target."""
        behind = self.bounds.behind(await self._store.offsets())
        if behind:
            log.debug("caught up; partitions %s still being loaded by the group", behind)
            return
        await self._store.set_ready(True)
        readiness.advance(Signal.MARKED_COMPLETE)
        log.info("rule store of %s is complete (caught up with the topic)", self._topic)

    def rewind(self) -> None:
        """After a failed step: fetch again from what the store has really applied."""
        assignment = self.assignments.current
        for tp in self._positioned(assignment):
            if assignment is not None and tp.partition in assignment.applied:
                self._kafka.seek(tp, assignment.applied[tp.partition])

    def _positioned(self, assignment: Assignment | None) -> set[TopicPartition]:
        if assignment is None or not assignment.positioned:
            return set()
        return set(assignment.partitions & self._kafka.assignment())

    async def fetch_bounds(self) -> TopicBounds:
        """Beginning and end offsets of every partition of the topic; also kept for readiness."""
        tps = [TopicPartition(self._topic, p) for p in await self.partition_ids()]
        begin = await self._kafka.beginning_offsets(tps)
        end = await self._kafka.end_offsets(tps)
        self.bounds = TopicBounds(
            {tp.partition: o for tp, o in begin.items()}, {tp.partition: o for tp, o in end.items()}
        )
        return self.bounds

    async def assign_all(self) -> None:
        """Without a group: read every partition, again once partitions were added (aiokafka
        assigns nothing by itself then); the new assignment is positioned from the store."""
        ids = await self.partition_ids()
        current = self.assignments.current
        if current is not None and {tp.partition for tp in current.partitions} >= ids:
            return
        tps = {TopicPartition(self._topic, p) for p in ids}
        if current is not None:
            log.info("partitions of %s now %s: reading them all", self._topic, sorted(ids))
        self._kafka.assign(tps)
        self.assignments.assign(tps)

    async def partition_ids(self) -> set[int]:
        ids = self._kafka.partitions_for_topic(self._topic)
        if not ids:
            ids = set(await partition_ids(self._options, self._topic))
        if not ids:
            raise KafkaTimeoutError(f"no partitions known for topic {self._topic}")
        return set(ids)


def _warn_out_of_range(partition: int, start: int | None, begin: int, end: int) -> None:
    if start is not None:
        log.warning(
            "mirrored offset %d of partition %d is outside the topic [%d, %d]; replaying it",
            start,
            partition,
            begin,
            end,
        )
