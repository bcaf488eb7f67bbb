"""Apply rule events from Kafka to a store, as a chain of steps in arroyo's manner:

    fetch → decode (and normalise) → cut into writes → dead-letter + apply each → commit last

Positions come from the store (positions.py); the Kafka commit after each write is for lag
tooling only. The store's ready marker says "complete" to every proxy: cleared when a rebuild
starts, set once the mirrored offsets of *every* partition of the topic (also those other group
members own) reached the end offsets seen when the (re)build began (readiness.py). """

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from rules import metrics
from rules.consumer.assignment import Assignment, Assignments, Rebalance
from rules.consumer.cancel import cancel_and_wait
from rules.consumer.claims import refuse_foreign
from rules.consumer.client import kafka_consumer
from rules.consumer.commit import commit
from rules.consumer.dead_letter import DeadLetters
from rules.consumer.errors import DeadLetterError, describe, transient
from rules.consumer.logged import Changelog
from rules.consumer.placement import consumer_refresh, decode_current
from rules.consumer.positions import Positions
from rules.consumer.readiness import Readiness, ReadinessState, Signal
from rules.consumer.stall import Progress
from rules.consumer.steps import Checks, Record, Slice, slices
from rules.consumer.tuning import ConsumerTuning
from rules.kafka import KafkaOptions, ensure_topic
from rules.kafka_access import check_access, consumer_needs
from rules.model import Change
from rules.store import RuleWriter, StoreSwappedError, StoreUnavailableError

log = logging.getLogger("rules.consumer")


class RuleConsumer:
    """Keeps a rule store in step with the topic. `group=None` (or a private store) reads every
    partition; dead-lettering defaults to on with a group (N proxies would each DLQ it)."""

    def __init__(
        self,
        options: KafkaOptions,
        topic: str,
        group: str | None,
        store: RuleWriter,
        region: str,
        *,
        dead_letter: bool | None = None,
        create_topic: bool = True,
        partitions: int = 4,
        tuning: ConsumerTuning = ConsumerTuning(),  # noqa: B008  (frozen: safe to share)
        changelog: bool = False,
    ) -> None:
        if not store.mirrors(topic):
            raise ValueError("the store must mirror offsets for the consumer's topic")
        if not store.shared and group is not None:
            log.info("store private to this process: reading every partition (no group)")
            group = None
        self.options, self.topic, self.group = options, topic, group
        self.store, self.region, self.tuning = store, region, tuning
        self._dead_letter = group is not None if dead_letter is None else dead_letter
        self._create_topic, self._partitions = create_topic, partitions
        self.readiness = ReadinessState()
        self.dead_letters = DeadLetters(topic)
        self.changelog = Changelog(options, topic, store, enabled=changelog)
        self._consumer: AIOKafkaConsumer | None = None
        self._positions: Positions | None = None
        self._task: asyncio.Task[None] | None = None
        self._last_check, self.applied_events = 0.0, 0
        self.last_poll = self._last_activity = time.monotonic()
        self.progress = Progress()

    async def start(self) -> None:
        """Create the topic if needed, join the group (or assign all partitions), run the loop."""
        kept = self.changelog.enabled  # a limited input retention is fine then (EVENTS.md)
        needs = consumer_needs(self.topic, self.group, dead_letters=self._dead_letter)
        await check_access(self.options, needs)
        if self._create_topic:
            await ensure_topic(self.options, self.topic, self._partitions, warn_retention=not kept)
        kwargs = self.options.client_kwargs()
        consumer = self._consumer = kafka_consumer(kwargs, self.group, self.tuning)
        assignments = Assignments(consumer)
        self._positions = Positions(
            consumer, self.options, self.topic, self.store, assignments, self.changelog.restore
        )
        if self.group is not None:
            consumer.subscribe([self.topic], listener=Rebalance(assignments))
        try:
            await self._join(consumer, kwargs)
        except BaseException:
            await self.stop()
            raise
        self.last_poll = self._last_activity = time.monotonic()
        self._task = asyncio.create_task(self.run(), name=f"denyproxy-consumer:{self.topic}")

    async def _join(self, consumer: AIOKafkaConsumer, kwargs: dict[str, object]) -> None:
        await consumer.start()
        if self.group is None:
            await self._parts().assign_all()
        if self._dead_letter:
            await self.dead_letters.start(self.options)
        await self.changelog.start(self._partitions)

    async def stop(self) -> None:
        """Finish a write in flight, cancel the loop (a crash is not re-raised), leave the group."""
        if self._positions is not None:  # as a revocation does: the write lands, so count it
            await self._positions.assignments.close()
        if self._task is not None:  # re-cancelled until it ends: one cancel can be lost
            await cancel_and_wait(self._task, f"rule consumer of {self.topic}")
        self.readiness.advance(Signal.STOPPED)
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()
        await self.dead_letters.stop()
        await self.changelog.stop()

    async def wait(self) -> None:
        """Until the loop ends: re-raises its crash (for `denyproxy consume`)."""
        if self._task is None:
            raise RuntimeError("start() first")
        await self._task

    @property
    def task(self) -> asyncio.Task[None] | None:
        return self._task

    @property
    def caught_up(self) -> bool:
        """Reached the end offsets seen at start (or rebuild), the store marked complete (kept
        through rebalances; a rebuild makes it false)."""
        state = self.readiness.state
        return state is Readiness.READY or (
            state is Readiness.CATCHING_UP and self._locally_caught_up()
        )

    @property
    def healthy(self) -> bool:
        """The loop is alive and polled (or retried the store) within `stall_after` seconds."""
        alive = self._task is not None and not self._task.done()
        alive = alive and self.readiness.state is not Readiness.CRASHED
        recent = time.monotonic() - max(self.last_poll, self._last_activity)
        return alive and recent < self.tuning.stall_after

    def stall(self) -> str | None:
        """Why the consumer has not advanced for `stall_report` seconds while behind, or None."""
        return self.progress.detail(self.tuning.stall_report)

    @property
    def rejected_events(self) -> int:
        return self.dead_letters.rejected

    async def run(self) -> None:
        """The background loop; transient Kafka/store errors back off, anything else crashes."""
        delay = self.tuning.backoff[0]
        try:
            while not self._slots().closed:  # closed by stop(), which also cancels the loop
                try:
                    await self._step()
                    delay = self.tuning.backoff[0]
                except (StoreUnavailableError, KafkaError, DeadLetterError) as exc:
                    if not transient(exc):
                        raise
                    log.warning("rule consumer: %s; retrying in %.1fs", describe(exc), delay)
                    self.progress.problem = describe(exc)
                    await self._back_off(delay)
                    delay = min(delay * 2, self.tuning.backoff[1])
        except Exception:  # CancelledError is a BaseException: a stop is no crash
            self.readiness.advance(Signal.CRASHED)
            log.exception("rule consumer crashed")
            raise

    async def _back_off(self, delay: float) -> None:
        self._parts().rewind()
        self._last_activity = time.monotonic()
        self.progress.observe()
        await asyncio.sleep(delay)

    async def _step(self) -> None:
        """One turn: rebuild or position if due, fetch, process, then check readiness."""
        if self.readiness.rebuild_due:
            await self._parts().rebuild(self.readiness.rebuild_reason)
            self.readiness.advance(Signal.REBUILT)
        current = self._slots().current
        if current is not None and not current.positioned:
            await self._parts().position(current, self.readiness)
        assignment = self._slots().current
        batch = await self._kafka().getmany(
            timeout_ms=int(self.tuning.poll_timeout * 1000), max_records=self.tuning.max_records
        )
        self.last_poll = time.monotonic()
        records = [r for rs in batch.values() for r in rs]
        if records and assignment is not None:
            await self._process(records, assignment)
        await self._check_store(bool(records))
        if self._locally_caught_up():
            self.readiness.advance(Signal.CAUGHT_UP)
        if (current := self._slots().current) is not None:
            self.progress.track({tp.partition for tp in current.partitions})
            self.progress.lagging(current.report_lag(self._kafka(), self.topic))
        self.progress.observe()

    async def _process(self, records: list[Record], assignment: Assignment) -> None:
        """decode → cut into writes → dead-letter and apply each → commit what was applied."""
        checks = Checks.of(self.tuning, self.region, len(self._parts().bounds.end))
        refresh = consumer_refresh(self._kafka(), self.topic, self.tuning.metadata_timeout)
        decoded = await decode_current(records, checks, refresh)  # placed ahead: count refreshed
        if not self._slots().is_current(assignment):
            return  # a rebalance took the batch
        self.progress.lagging(assignment.report_lag(self._kafka(), self.topic))
        live = self.caught_up
        written: dict[int, int] = {}
        for part in slices(records, decoded, self.tuning.max_values_per_write):
            fresh = await self._write_retrying(part, assignment)
            if fresh is None:
                return
            if not fresh and self.readiness.store_complete:
                self.readiness.store_lost("the store lost its ready marker during a write")
                return
            assignment.applied.update(part.offsets)
            self.progress.advanced(set(part.offsets))
            written.update(part.offsets)
            self._account(part, live)
        if self.group is not None and self._slots().is_current(assignment):
            await commit(self._kafka(), self.topic, written)

    async def write(self, changes: Sequence[Change], offsets: Mapping[int, int]) -> bool:
        """The single place where the store is written (rules/consumer/logged.py); crash tests
        override it."""
        return await self.changelog.write(changes, offsets)

    async def _write_retrying(self, part: Slice, assignment: Assignment) -> bool | None:
        """Retry a transient store error with back-off; None when a rebalance (or a switch of
        generations) took the batch."""
        delay = self.tuning.backoff[0]
        while self._slots().is_current(assignment):
            assignment.idle.clear()
            try:
                await refuse_foreign(self.store, part)  # another topic's scopes: dead letters
                await self.dead_letters.drain(part.rejects)  # guarded as the write: both or none
                return await self.write(part.changes, part.offsets)
            except StoreSwappedError:  # a planned rebuild switched: position again
                assignment.positioned = False
                return None
            except StoreUnavailableError as exc:
                log.warning("store unavailable (%s); retry in %.1fs, nothing committed", exc, delay)
                self.progress.problem = f"store unavailable ({exc})"
            finally:
                assignment.idle.set()
            self._last_activity = time.monotonic()
            self.progress.observe()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.tuning.backoff[1])
        return None

    def _account(self, part: Slice, live: bool) -> None:
        """applied_events: events of the writes this member completed and kept (see stop())."""
        self._last_activity = time.monotonic()
        self.applied_events += len(part.events)
        metrics.applied([event.ts for event in part.events], live)

    def _locally_caught_up(self) -> bool:
        current = self._positions.assignments.current if self._positions else None
        return current is not None and not self.readiness.rebuild_due and current.caught_up()

    async def _check_store(self, wrote: bool) -> None:
        """Idle: is the marker still there? Caught up: can we declare the store complete?"""
        now = time.monotonic()
        if not wrote and now - self._last_check < self.tuning.check_interval:
            return
        self._last_check = now
        if self.group is None:  # a group rebalances by itself when partitions are added
            await self._parts().assign_all()
        await self.store.set_heartbeat(self.progress.heartbeat())
        if self.readiness.store_complete and not wrote and not await self.store.ready():
            await self.store.offsets()  # StoreUnavailableError if Redis is down: back off
            if not await self.store.ready():
                why = "the ready marker disappeared (Redis flushed or restarted)"
                self.readiness.store_lost(why)
        elif self.readiness.state is Readiness.LOADING and self._locally_caught_up():
            await self._parts().mark_complete(self.readiness)

    def _kafka(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise RuntimeError("start() first")
        return self._consumer

    def _slots(self) -> Assignments:
        return self._parts().assignments

    def _parts(self) -> Positions:
        if self._positions is None:
            raise RuntimeError("start() first")
        return self._positions
