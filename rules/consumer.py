"""Apply rule events from Kafka to a store: batch → decode or dead-letter → apply → commit.

Positions come from the offsets mirrored in the store (written in the same pipeline as the
rules), not from Kafka's committed offsets: a store that lost them (Redis flushed or
restarted empty) is rebuilt by replaying the topic from the beginning. The Kafka commit after
each write is for lag tooling only.

The store's ready marker says "complete" to every proxy. A consumer clears it when it starts
a rebuild and sets it once the mirrored offsets of *every* partition of the topic (also those
other group members own) have reached the end offsets it saw when the (re)build began.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError, KafkaTimeoutError
from aiokafka.structs import ConsumerRecord, RecordMetadata, TopicPartition

from rules import metrics
from rules.events import Event, InvalidEventError, check_key, decode_event
from rules.kafka import (
    MAX_MESSAGE_BYTES,
    KafkaOptions,
    dead_letter_topic,
    ensure_topic,
    partition_ids,
)
from rules.model import RuleChange
from rules.store import MemoryStore, RuleStore, StoreUnavailableError

log = logging.getLogger(__name__)

Decoded = Event | InvalidEventError


@dataclass(frozen=True, slots=True)
class ConsumerTuning:
    """Knobs with safe defaults; tests and the benchmark shorten the timings."""

    max_records: int = 500
    max_values_per_write: int = 100_000
    poll_timeout: float = 0.5
    check_interval: float = 1.0
    stall_after: float = 60.0
    backoff: tuple[float, float] = (0.1, 5.0)


@dataclass(slots=True)
class _Slice:
    """Consecutive records written in one pipeline, with the offsets they bring us to."""

    changes: list[RuleChange] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    offsets: dict[int, int] = field(default_factory=dict)
    values: int = 0


class RuleConsumer:
    """Keeps a rule store in step with the topic; see the module docstring for the protocol.

    `group=None` reads every partition without a consumer group (each process its own full
    copy: the in-memory store of `serve`); otherwise the group splits the partitions.
    Dead-lettering defaults to on with a group, off without (N proxies would each DLQ it).
    """

    def __init__(
        self,
        options: KafkaOptions,
        topic: str,
        group: str | None,
        store: RuleStore,
        region: str = "US",
        *,
        dead_letter: bool | None = None,
        create_topic: bool = True,
        partitions: int = 4,
        tuning: ConsumerTuning = ConsumerTuning(),
    ) -> None:
        if getattr(store, "topic", topic) != topic:
            raise ValueError("the store must mirror offsets for the consumer's topic")
        if isinstance(store, MemoryStore) and group is not None:
            log.info("in-memory store: reading every partition (no consumer group)")
            group = None
        self.options, self.topic, self.group = options, topic, group
        self.store, self.region, self.tuning = store, region, tuning
        self._dead_letter = group is not None if dead_letter is None else dead_letter
        self._create_topic, self._partitions = create_topic, partitions
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._task: asyncio.Task[None] | None = None
        self._generation = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._assigned_once = False
        self._positioned = False
        self._settled = False
        self._pending: set[TopicPartition] = set()
        self._rebuild_due: str | None = None
        self._applied: dict[int, int] = {}
        self._targets: dict[int, int] = {}
        self._begin_all: dict[int, int] = {}
        self._target_all: dict[int, int] = {}
        self._store_ready = False
        self._crashed = False
        self._last_check = 0.0
        self.last_poll = time.monotonic()
        self._last_activity = self.last_poll
        self.applied_events = 0
        self.rejected_events = 0

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Create the topic if needed, join the group (or assign all partitions), run the loop."""
        if self._create_topic:
            await ensure_topic(self.options, self.topic, self._partitions)
        kwargs = self.options.client_kwargs()
        self._consumer = AIOKafkaConsumer(
            group_id=self.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.tuning.max_records,
            client_id="denyproxy-consumer",
            **kwargs,
        )
        if self.group is not None:
            self._consumer.subscribe([self.topic], listener=_Rebalance(self))
        try:
            await self._consumer.start()
            if self.group is None:
                await self._assign_all()
            if self._dead_letter:
                self._producer = _dlq_producer(kwargs)
                await self._producer.start()
        except BaseException:
            await self.stop()
            raise
        self.last_poll = self._last_activity = time.monotonic()
        self._task = asyncio.create_task(self.run(), name=f"denyproxy-consumer:{self.topic}")

    async def stop(self) -> None:
        """Cancel the loop and leave the group; a crash of the loop is not re-raised here."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        consumer, producer, self._consumer, self._producer = (
            self._consumer,
            self._producer,
            None,
            None,
        )
        if consumer is not None:
            await consumer.stop()
        if producer is not None:
            await producer.stop()

    async def wait(self) -> None:
        """Until the loop ends: re-raises its crash (for `denyproxy consume`)."""
        assert self._task is not None, "start() first"
        await self._task

    @property
    def task(self) -> asyncio.Task[None] | None:
        return self._task

    # ------------------------------------------------------------------ health

    @property
    def caught_up(self) -> bool:
        """Reached the end offsets seen at start (or rebuild), and the store is marked complete.

        Stays true through later rebalances; a rebuild (store flushed) makes it false again.
        """
        return self._store_ready and (self._settled or self._locally_caught_up())

    @property
    def healthy(self) -> bool:
        """The loop is alive and polled (or retried the store) within `stall_after` seconds."""
        alive = self._task is not None and not self._task.done() and not self._crashed
        recent = time.monotonic() - max(self.last_poll, self._last_activity)
        return alive and recent < self.tuning.stall_after

    def applied_offsets(self) -> dict[int, int]:
        """Next offset to apply per assigned partition (what the store has reached)."""
        return dict(self._applied)

    # ------------------------------------------------------------------ the loop

    async def run(self) -> None:
        """The background loop; transient Kafka/store errors back off, anything else crashes."""
        delay = self.tuning.backoff[0]
        try:
            while True:
                try:
                    await self._step()
                    delay = self.tuning.backoff[0]
                except (StoreUnavailableError, KafkaError) as exc:
                    if not _transient(exc):
                        raise
                    log.warning("rule consumer: %s; retrying in %.1fs", _describe(exc), delay)
                    self._rewind()
                    self._last_activity = time.monotonic()
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.tuning.backoff[1])
        except asyncio.CancelledError:
            raise
        except Exception:
            self._crashed = True
            log.exception("rule consumer crashed")
            raise

    async def _step(self) -> None:
        if self._rebuild_due is not None:
            await self._rebuild(self._rebuild_due)
        if self._assigned_once and not self._positioned:
            await self._position()
        consumer = self._kafka()
        generation = self._generation
        batch = await consumer.getmany(
            timeout_ms=int(self.tuning.poll_timeout * 1000), max_records=self.tuning.max_records
        )
        self.last_poll = time.monotonic()
        records = [r for rs in batch.values() for r in rs]
        if records:
            await self._process(records, generation)
        await self._check_store(bool(records))
        self._settled = self._settled or (self._store_ready and self._locally_caught_up())
        self._update_lag()

    async def _process(self, records: list[ConsumerRecord], generation: int) -> None:
        decoded = await asyncio.to_thread(_decode_all, records, self.region)
        if generation != self._generation:
            return
        await self._send_dead_letters(records, decoded)
        live = self.caught_up
        committed: dict[int, int] = {}
        for part in _slices(records, decoded, self.tuning.max_values_per_write):
            fresh = await self._write_retrying(part, generation)
            if fresh is None:
                return
            if not fresh and self._store_ready:
                self._schedule_rebuild("the store lost its ready marker during a write")
                return
            self._applied.update(part.offsets)
            committed.update(part.offsets)
            self._account(part, live)
        await self._commit(committed, generation)

    async def write(self, changes: Sequence[RuleChange], offsets: Mapping[int, int]) -> bool:
        """One store write: the changes and the offsets they reach, in one pipeline.

        The single place where the store is written; the crash tests override it.
        """
        return await self.store.apply_and_check(changes, offsets)

    async def _write_retrying(self, part: _Slice, generation: int) -> bool | None:
        """Retry a transient store error with back-off; None when a rebalance took the batch."""
        delay = self.tuning.backoff[0]
        while generation == self._generation:
            self._idle.clear()
            try:
                return await self.write(part.changes, part.offsets)
            except StoreUnavailableError as exc:
                log.warning("store unavailable (%s); retry in %.1fs, nothing committed", exc, delay)
            finally:
                self._idle.set()
            self._last_activity = time.monotonic()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.tuning.backoff[1])
        return None

    async def _commit(self, offsets: dict[int, int], generation: int) -> None:
        """Kafka commit after the write: advisory (positions come from the store)."""
        if self.group is None or not offsets or generation != self._generation:
            return
        consumer = self._kafka()
        assigned = consumer.assignment()
        tps = {TopicPartition(self.topic, p): o for p, o in offsets.items()}
        mine = {tp: o for tp, o in tps.items() if tp in assigned}
        if not mine:
            return
        try:
            await consumer.commit(mine)
        except (CommitFailedError, IllegalStateError) as exc:
            log.info("commit skipped after a rebalance: %s", _describe(exc))
        except KafkaError as exc:
            log.warning(
                "commit failed (%s); the store's offsets stay authoritative", _describe(exc)
            )

    def _account(self, part: _Slice, live: bool) -> None:
        """Counters after a write; latency only for live events (a rebuild replays old ones)."""
        self._last_activity = time.monotonic()
        self.applied_events += len(part.events)
        metrics.EVENTS_APPLIED.inc(len(part.events))
        if live:
            wall = time.time()
            for event in part.events:
                metrics.PUBLISH_TO_APPLIED.observe(max(wall - event.ts, 0.0))

    # ------------------------------------------------------------------ dead letters

    async def _send_dead_letters(
        self, records: list[ConsumerRecord], decoded: list[Decoded]
    ) -> None:
        rejects = [(r, d) for r, d in zip(records, decoded) if isinstance(d, InvalidEventError)]
        if not rejects:
            return
        if self._producer is not None:
            futures = [await self._send_one(r, err) for r, err in rejects]
            await asyncio.gather(*futures)
        for record, err in rejects:
            self.rejected_events += 1
            metrics.EVENTS_REJECTED.labels(err.code).inc()
            log.warning(
                "rejected record %s[%d]@%d (%s): %s%s",
                record.topic,
                record.partition,
                record.offset,
                err.code,
                err.reason,
                " -> dead-letter topic" if self._producer is not None else "",
            )

    async def _send_one(
        self, record: ConsumerRecord, err: InvalidEventError
    ) -> asyncio.Future[RecordMetadata]:
        assert self._producer is not None
        headers = [*(record.headers or ()), *_dlq_headers(record, err)]
        future: asyncio.Future[RecordMetadata] = await self._producer.send(
            dead_letter_topic(self.topic), record.value, key=record.key, headers=headers
        )
        return future

    # ------------------------------------------------------------------ positions

    def _assigned(self, assigned: set[TopicPartition]) -> None:
        """Rebalance listener, after assignment: pause until the loop seeks from the store."""
        self._assigned_once = True
        self._positioned = False
        self._generation += 1
        self._pending = set(assigned)
        if assigned:
            self._kafka().pause(*assigned)

    async def _revoked(self, revoked: set[TopicPartition]) -> None:
        """Rebalance listener, before revocation: drop the batch in hand, let a write finish."""
        self._generation += 1
        await self._idle.wait()
        for tp in revoked:
            self._applied.pop(tp.partition, None)
            self._targets.pop(tp.partition, None)
            _forget_lag(tp.partition)
        self._pending -= revoked

    async def _assign_all(self) -> None:
        consumer = self._kafka()
        tps = {TopicPartition(self.topic, p) for p in await self._partition_ids()}
        consumer.assign(tps)
        self._assigned(tps)

    async def _position(self) -> None:
        """Seek newly assigned partitions to the store's mirrored offsets (or the beginning).

        A partition without a mirrored offset starts at the beginning. If the store is marked
        complete that is a partition which had no events when it was completed; if not, the
        store is (re)building and this replays the partition into it.
        """
        consumer, generation, tps = self._kafka(), self._generation, set(self._pending)
        ready = await self.store.ready()
        mirrored = await self.store.offsets()
        begin, end = await self._bounds()
        if generation != self._generation:
            return
        replay: list[int] = []
        for tp in tps & consumer.assignment():
            p = tp.partition
            start = mirrored.get(p)
            if start is None or not begin[p] <= start <= end[p]:
                _warn_out_of_range(p, start, begin[p], end[p])
                start = begin[p]
                if start < end[p] and not ready:
                    replay.append(p)
            consumer.seek(tp, start)
            self._applied[p], self._targets[p] = start, end[p]
        if replay:
            log.info("loading partitions %s of %s from the beginning", replay, self.topic)
        self._set_store_ready(ready)
        consumer.resume(*(tps & consumer.assignment()))
        self._pending -= tps
        self._positioned = True

    def _schedule_rebuild(self, why: str) -> None:
        self._generation += 1
        self._rebuild_due = why
        self._set_store_ready(False)

    async def _rebuild(self, why: str) -> None:
        """Replay every assigned partition from the beginning (the store lost its state).

        The offsets of those partitions are reset in the store too: a write that raced the
        flush may have mirrored offsets whose rules are gone.
        """
        log.warning("rebuilding the rule store from the beginning of %s: %s", self.topic, why)
        generation = self._generation
        await self.store.set_ready(False)
        begin, end = await self._bounds()
        tps = self._kafka().assignment() - self._pending
        await self.store.apply([], {tp.partition: begin[tp.partition] for tp in tps})
        if generation == self._generation:  # else a rebalance re-positions from the store
            for tp in tps:
                self._kafka().seek(tp, begin[tp.partition])
                self._applied[tp.partition] = begin[tp.partition]
                self._targets[tp.partition] = end[tp.partition]
        self._rebuild_due = None

    def _set_store_ready(self, ready: bool) -> None:
        self._store_ready = ready
        if not ready:
            self._settled = False

    async def _bounds(self) -> tuple[dict[int, int], dict[int, int]]:
        """Beginning and end offsets of every partition of the topic; also kept for readiness."""
        consumer = self._kafka()
        tps = [TopicPartition(self.topic, p) for p in await self._partition_ids()]
        begin = {tp.partition: o for tp, o in (await consumer.beginning_offsets(tps)).items()}
        end = {tp.partition: o for tp, o in (await consumer.end_offsets(tps)).items()}
        self._begin_all, self._target_all = begin, end
        return begin, end

    async def _partition_ids(self) -> set[int]:
        consumer = self._kafka()
        ids = consumer.partitions_for_topic(self.topic)
        if not ids:
            ids = set(await partition_ids(self.options, self.topic))
        if not ids:
            raise KafkaTimeoutError(f"no partitions known for topic {self.topic}")
        return set(ids)

    def _rewind(self) -> None:
        """After a failed step: fetch again from what the store has really applied."""
        if self._consumer is None:
            return
        for tp in self._consumer.assignment() - self._pending:
            if tp.partition in self._applied:
                self._consumer.seek(tp, self._applied[tp.partition])

    # ------------------------------------------------------------------ readiness

    def _locally_caught_up(self) -> bool:
        if not self._positioned or self._rebuild_due is not None:
            return False
        return all(self._applied.get(p, -1) >= end for p, end in self._targets.items())

    async def _check_store(self, wrote: bool) -> None:
        """Idle: is the marker still there? Caught up: can we declare the store complete?"""
        now = time.monotonic()
        if not wrote and now - self._last_check < self.tuning.check_interval:
            return
        self._last_check = now
        if self._store_ready and not wrote and not await self.store.ready():
            await self.store.offsets()  # StoreUnavailableError if Redis is down: back off
            if not await self.store.ready():
                self._schedule_rebuild("the ready marker disappeared (Redis flushed or restarted)")
        elif not self._store_ready and self._locally_caught_up():
            await self._maybe_mark_ready()

    async def _maybe_mark_ready(self) -> None:
        """Set the marker once every partition's mirrored offset reached its target."""
        mirrored = await self.store.offsets()
        behind = [
            p
            for p, end in self._target_all.items()
            if mirrored.get(p, self._begin_all.get(p, 0)) < end
        ]
        if behind:
            log.debug("caught up; partitions %s still being loaded by the group", behind)
            return
        await self.store.set_ready(True)
        self._store_ready = True
        log.info("rule store of %s is complete (caught up with the topic)", self.topic)

    def _update_lag(self) -> None:
        consumer = self._consumer
        if consumer is None:
            return
        for p, applied in self._applied.items():
            high = consumer.highwater(TopicPartition(self.topic, p))
            end = self._targets.get(p, applied) if high is None else high
            metrics.CONSUMER_LAG.labels(str(p)).set(max(end - applied, 0))

    def _kafka(self) -> AIOKafkaConsumer:
        assert self._consumer is not None, "start() first"
        return self._consumer


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Hands assignment changes to the consumer; never takes a lock the fetch loop holds."""

    def __init__(self, owner: RuleConsumer) -> None:
        self._owner = owner

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._owner._revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self._owner._assigned(set(assigned))


def _decode_all(records: list[ConsumerRecord], region: str) -> list[Decoded]:
    """Decode a batch (runs in a worker thread: normalising 10,000 phones takes a while)."""
    out: list[Decoded] = []
    for record in records:
        try:
            event = decode_event(record.value, region)
            check_key(record.key, event.change.tenant)
            out.append(event)
        except InvalidEventError as exc:
            out.append(exc)
    return out


def _slices(records: list[ConsumerRecord], decoded: list[Decoded], max_values: int) -> list[_Slice]:
    """Cut a batch into writes of at most ~max_values values, record order kept."""
    parts = [_Slice()]
    for record, item in zip(records, decoded):
        part = parts[-1]
        if isinstance(item, Event):
            if part.values and part.values + len(item.change.values) > max_values:
                part = _Slice()
                parts.append(part)
            part.changes.append(item.change)
            part.events.append(item)
            part.values += len(item.change.values)
        part.offsets[record.partition] = record.offset + 1
    return parts


def _dlq_headers(record: ConsumerRecord, err: InvalidEventError) -> list[tuple[str, bytes]]:
    return [
        ("reason", err.reason.encode()),
        ("reason-code", err.code.encode()),
        ("source-topic", record.topic.encode()),
        ("source-partition", str(record.partition).encode()),
        ("source-offset", str(record.offset).encode()),
    ]


def _dlq_producer(kwargs: dict[str, object]) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        acks="all",
        enable_idempotence=True,
        compression_type="gzip",
        max_request_size=MAX_MESSAGE_BYTES,
        client_id="denyproxy-dead-letter",
        **kwargs,
    )


def _transient(exc: Exception) -> bool:
    if isinstance(exc, StoreUnavailableError):
        return True
    return bool(getattr(exc, "retriable", False)) or isinstance(exc, KafkaTimeoutError)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _warn_out_of_range(partition: int, start: int | None, begin: int, end: int) -> None:
    if start is not None:
        log.warning(
            "mirrored offset %d of partition %d is outside the topic [%d, %d]; replaying it",
            start,
            partition,
            begin,
            end,
        )


def _forget_lag(partition: int) -> None:
    try:
        metrics.CONSUMER_LAG.remove(str(partition))
    except KeyError:
        pass
