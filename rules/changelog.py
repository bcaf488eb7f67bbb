"""The compacted changelog beside the rule topic: every rule's current record, and offsets.

Kafka Streams keeps a store's changelog this way. The consumer writes, per rule it touched,
the record the store now holds (or a tombstone), then per partition the input offset those
records reach. A rebuild reads the changelog (bounded by the live rules, not by history), then
the input topic from the offsets the changelog recorded (rules/consumer/rebuild.py).

Keys never hold an identifier: `rule:<sha256(scope \\0 type \\0 value)>`, `list:<list id>` (a
named list's metadata and assignments) and `offsets:<p>`. Values hold what the Redis store
already holds (the normal form and its catalogue record; a list's metadata and tenants).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import NewTopic
from aiokafka.errors import KafkaTimeoutError, TopicAlreadyExistsError, for_code
from aiokafka.structs import TopicPartition

from rules.kafka import (
    MAX_MESSAGE_BYTES,
    KafkaOptions,
    Producer,
    make_admin,
    make_producer,
    partition_ids,
)
from rules.model import RuleType

RECORD_FIELDS = ("created_at", "updated_at", "source", "event_id", "reason", "expires_at")
"""What a changelog record keeps of a catalogue record; enforced_at and suppressions are
the store's own (the time it applied, the proxies' counts) and restart with a generation."""

CONFIG = {
    "cleanup.policy": "compact",
    "retention.ms": "-1",
    "min.compaction.lag.ms": "0",
    "delete.retention.ms": "86400000",
    "max.message.bytes": str(MAX_MESSAGE_BYTES),
}
"""`delete.retention.ms`: a tombstone stays a day; a rebuild reading longer may miss it
(the rule then stays suppressed: over-matching, never a leak)."""


READ_WITHIN = 600.0
"""Seconds a read to a partition's end may take: a broker that stopped answering fails the read
(a rebuild, a consumer's restore, which retries) with a detail instead of hanging it."""


def overdue(deadline: float, what: str) -> None:
    """Raise KafkaTimeoutError (retriable) once `deadline` (monotonic) has passed."""
    if time.monotonic() > deadline:
        raise KafkaTimeoutError(f"{what} not read to its end offset in time: is the broker up?")


def changelog_topic(topic: str) -> str:
    return f"{topic}.changelog"


def rule_key(scope: str, rule_type: RuleType, value: str) -> bytes:
    """One key per rule, no identifier in it."""
    digest = hashlib.sha256(f"{scope}\0{rule_type.value}\0{value}".encode()).hexdigest()
    return f"rule:{digest}".encode()


def offsets_key(partition: int) -> bytes:
    return f"offsets:{partition}".encode()


@dataclass(frozen=True, slots=True)
class RuleRecord:
    """A live rule as the changelog carries it: scope, type, normal form, catalogue fields."""

    scope: str
    type: RuleType
    value: str
    fields: dict[str, str] = field(default_factory=dict)
    partition: int = 0
    """The input partition the rule's events live in: a group member restores only its own."""

    @property
    def key(self) -> bytes:
        return rule_key(self.scope, self.type, self.value)

    def encode(self) -> bytes:
        head = {"scope": self.scope, "type": self.type.value, "value": self.value}
        return orjson.dumps({**head, "p": self.partition, **self.fields})

    @classmethod
    def decode(cls, raw: bytes) -> RuleRecord:
        data = orjson.loads(raw)
        fields = {k: str(data[k]) for k in RECORD_FIELDS if k in data}
        return cls(data["scope"], RuleType(data["type"]), data["value"], fields, int(data["p"]))


def list_key(list_id: str) -> bytes:
    return f"list:{list_id}".encode()


@dataclass(frozen=True, slots=True)
class ListRecord:
    """A named list as the changelog carries it: its metadata and the tenants it is assigned
    to, as the store holds them after a slice (rules/lists/snapshot.py)."""

    list_id: str
    name: str
    description: str | None
    created_at: int
    updated_at: int
    """Epoch milliseconds, as in the store's metadata."""
    tenants: tuple[str, ...] = ()
    partition: int = 0
    """The input partition of list events (that of `*`)."""

    @property
    def key(self) -> bytes:
        return list_key(self.list_id)

    def encode(self) -> bytes:
        return orjson.dumps({
            "list": self.list_id, "name": self.name, "description": self.description,
            "created_at": self.created_at, "updated_at": self.updated_at,
            "tenants": list(self.tenants), "p": self.partition,
        })

    @classmethod
    def decode(cls, raw: bytes) -> ListRecord:
        d = orjson.loads(raw)
        return cls(str(d["list"]), str(d["name"]), d.get("description"), int(d["created_at"]),
                   int(d["updated_at"]), tuple(d.get("tenants", ())), int(d["p"]))


Entry = tuple[bytes, RuleRecord | ListRecord | None]
"""A changelog write: the rule's (or list's) key and its record, or None (a tombstone)."""


async def ensure_changelog(options: KafkaOptions, topic: str, partitions: int = 4) -> bool:
    """Create `<topic>.changelog` (compacted) if missing; True when it was created."""
    admin = make_admin(options)
    await admin.start()
    try:
        name = changelog_topic(topic)
        if name in set(await admin.list_topics()):
            return False
        replicas = min(3, max(len((await admin.describe_cluster())["brokers"]), 1))
        config = {**CONFIG, **({"min.insync.replicas": "2"} if replicas >= 3 else {})}
        topic_ = NewTopic(name, partitions, replicas, topic_configs=config)
        response = await admin.create_topics([topic_])
        for _, code, *_ in response.topic_errors:
            if code and for_code(code) is not TopicAlreadyExistsError:
                raise for_code(code)(f"cannot create Kafka topic {name}")
        return True
    finally:
        await admin.close()


class ChangelogWriter:
    """Sends records, then offsets; each step returns once the broker acknowledged it."""

    def __init__(self, options: KafkaOptions, topic: str) -> None:
        self.topic = changelog_topic(topic)
        self._producer: Producer = make_producer(options, "denyproxy-changelog", linger_ms=5)

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def write(self, entries: Iterable[Entry], offsets: Mapping[int, int]) -> None:
        """Records first, all acknowledged; only then the offsets they reach (see EVENTS.md)."""
        await self._send_all((k, None if r is None else r.encode()) for k, r in entries)
        await self._send_all(
            (offsets_key(p), orjson.dumps({"offset": o})) for p, o in offsets.items()
        )

    async def _send_all(self, items: Iterable[tuple[bytes, bytes | None]]) -> None:
        futures = [await self._producer.send(self.topic, v, key=k) for k, v in items]
        if futures:
            await asyncio.gather(*futures)


@dataclass(slots=True)
class ChangelogPart:
    """One changelog partition read to its end: the last value of every key in it."""

    rules: dict[bytes, RuleRecord] = field(default_factory=dict)
    lists: dict[bytes, ListRecord] = field(default_factory=dict)
    offsets: dict[int, int] = field(default_factory=dict)

    def take(self, key: bytes, value: bytes | None) -> None:
        if key.startswith(b"offsets:"):
            if value is not None:
                self.offsets[int(key[8:])] = int(orjson.loads(value)["offset"])
        elif key.startswith(b"list:"):
            if value is None:
                self.lists.pop(key, None)
            else:
                self.lists[key] = ListRecord.decode(value)
        elif value is None:
            self.rules.pop(key, None)
        else:
            self.rules[key] = RuleRecord.decode(value)


async def read_changelog(
    options: KafkaOptions, topic: str, batch: int = 10_000, within: float = READ_WITHIN
) -> list[ChangelogPart]:
    """Every partition of the changelog to the end it had when reading it began; offsets only
    up to the ends every partition had before the first was read.

    A rule's key always hashes to one partition, so a partition read alone is exact for its
    rules. An offset record is written after the records it covers are acknowledged, but
    those may sit in a partition read earlier: bounding offsets by ends taken before any
    partition is read keeps them from covering records this read missed (issue #15: a
    generation switched in with the offsets and without the rule). Memory is bounded by the
    largest partition's live rules. The whole read fails after `within` s (KafkaTimeoutError).
    """
    name = changelog_topic(topic)
    consumer = AIOKafkaConsumer(enable_auto_commit=False, **options.client_kwargs())
    await consumer.start()
    try:
        tps = [TopicPartition(name, p) for p in await partition_ids(options, name)]
        settled = await consumer.end_offsets(tps) if tps else {}
        deadline = time.monotonic() + within
        return [await _read_part(consumer, tp, batch, settled[tp], deadline) for tp in tps]
    finally:
        await consumer.stop()


async def _read_part(
    consumer: AIOKafkaConsumer, tp: TopicPartition, batch: int, settled: int, deadline: float
) -> ChangelogPart:
    """One partition to its end now; an offset record only below `settled` (read_changelog).

    The position, not the last record's offset, says when: it passes offsets that hold no
    record to return (compacted away, transaction markers)."""
    consumer.assign([tp])
    await consumer.seek_to_beginning(tp)
    end = (await consumer.end_offsets([tp]))[tp]
    part = ChangelogPart()
    while await consumer.position(tp) < end:
        overdue(deadline, f"changelog partition {tp.topic}[{tp.partition}]")
        for records in (await consumer.getmany(tp, timeout_ms=500, max_records=batch)).values():
            for record in records:
                if record.key is not None and _kept(record.key, record.offset, end, settled):
                    part.take(record.key, record.value)
    return part


def _kept(key: bytes, offset: int, end: int, settled: int) -> bool:
    """Below the partition's end; an offset record also below `settled`, since a later one may
    cover records of a partition already read."""
    return offset < end and (offset < settled or not key.startswith(b"offsets:"))
