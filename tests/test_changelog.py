"""The compacted changelog and planned rebuilds, against the real broker and a real Redis.

Each test runs on a private redis-server (a rebuild swaps whole logical databases) that it
flushes first; Kafka is the suite's broker with fresh topic names.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any

import aiohttp
import orjson
import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.admin.records_to_delete import RecordsToDelete
from aiokafka.errors import KafkaTimeoutError
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.structs import RecordMetadata

from proxy import cli, doctor_kafka
from proxy.settings import Settings
from rules import changelog as changelog_module
from rules import events
from rules.changelog import (
    ChangelogPart,
    ChangelogWriter,
    ListRecord,
    RuleRecord,
    changelog_topic,
    ensure_changelog,
    list_key,
    read_changelog,
    rule_key,
)
from rules.changelog import offsets_key as changelog_offsets_key
from rules.consumer import ConsumerTuning, RuleConsumer
from rules.consumer.rebuild import RebuildPlan, rebuild, renormalise_if_needed
from rules.kafka import KafkaOptions, ensure_topic, partition_ids
from rules.kafka_access import Need, changelog_needs, consumer_needs
from rules.model import (
    DEFAULT_REGION,
    GLOBAL,
    ChangeMeta,
    ListChange,
    ListOp,
    RuleChange,
    RuleType,
    tenant_of,
)
from rules.publisher import RulePublisher
from rules.scopes import list_scope, new_list_id
from rules.store import RedisStore, StoreUnavailableError
from rules.store.generation import NORMALISER_VERSION
from rules.store.keys import (
    LISTS,
    claim_key,
    generation_key,
    lists_meta_key,
    lists_version_key,
    normaliser_key,
    pending_key,
)
from rules.store.mirrored import MirroredRedisStore
from rules.store.snapshot import entries, touched
from tests.harness import eventually, fake_upstream, running_proxy, stop_all
from tests.services import RedisServer, running_redis
from tests.test_suppression import emails, task_result

FAST = ConsumerTuning(poll_timeout=0.1, check_interval=0.1, backoff=(0.05, 0.5), stall_after=30)
VOLATILE = {"enforced_at", "suppressions", "last_suppressed_at"}
"""Record fields that belong to the store that applied and served a rule, not to the rule."""


class Crash(Exception):
    """Stands for the process dying at a chosen point of a write."""


class CrashAfterChangelog(RuleConsumer):
    """Writes the rules and the changelog (records and offsets), then dies before the store's
    offsets: the changelog is ahead of the store."""

    async def write(self, changes: Sequence[RuleChange], offsets: Mapping[int, int]) -> bool:
        store, writer = self.store, self.changelog.writer
        assert isinstance(store, MirroredRedisStore) and writer is not None
        await store.apply_and_check(changes, {})
        await writer.write(await entries(store.client, touched(changes), 4), offsets)
        raise Crash("killed between the changelog write and the store's offsets")


class CrashAfterRules(RuleConsumer):
    """Writes the rules only, then dies: neither changelog nor offsets have them."""

    async def write(self, changes: Sequence[RuleChange], offsets: Mapping[int, int]) -> bool:
        await self.store.apply_and_check(changes, {})
        raise Crash("killed between the rules and the changelog")


@pytest.fixture(scope="module")
def private_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with running_redis(tmp_path_factory.mktemp("redis-changelog")) as server:
        yield server


@pytest.fixture
async def redis(private_redis: RedisServer) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(private_redis.url, decode_responses=True)
    await client.flushall()
    yield client
    await client.aclose()


@pytest.fixture
def topic() -> str:
    return f"rules-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def options(kafka_bootstrap: str) -> KafkaOptions:
    return KafkaOptions(kafka_bootstrap)


@pytest.fixture
async def store(
    private_redis: RedisServer, topic: str, redis: aioredis.Redis
) -> AsyncIterator[MirroredRedisStore]:
    store = RedisStore.from_url(private_redis.url, timeout=5.0, topic=topic)
    yield store
    await store.aclose()


@pytest.fixture
async def publisher(options: KafkaOptions, topic: str) -> AsyncIterator[RulePublisher]:
    await ensure_topic(options, topic)
    async with RulePublisher(options, topic, region=DEFAULT_REGION) as publisher:
        yield publisher


@pytest.fixture
async def running() -> AsyncIterator[list[RuleConsumer]]:
    consumers: list[RuleConsumer] = []
    yield consumers
    await stop_all(consumers)


async def start(
    consumers: list[RuleConsumer], options: KafkaOptions, topic: str, store: MirroredRedisStore,
    *, kind: type[RuleConsumer] = RuleConsumer, changelog: bool = True,
) -> RuleConsumer:
    consumer = kind(options, topic, f"{topic}-g", store, "US", tuning=FAST, changelog=changelog)
    consumers.append(consumer)
    await consumer.start()
    return consumer


async def wait_applied(store: MirroredRedisStore, metas: Sequence[RecordMetadata]) -> None:
    async def passed() -> bool:
        try:
            mirrored = await store.offsets()
        except StoreUnavailableError:
            return False
        return all(mirrored.get(m.partition, -1) > m.offset for m in metas)

    await eventually(passed, "the store to reach the published offsets")


REBUILD_WAIT = 60.0
"""A rebuild's bound on each wait in these tests: a wait that cannot end fails with the
rebuild's own detail (which offsets, which partition) before pytest-timeout's 120 s guard."""


def plan(options: KafkaOptions, topic: str, server: RedisServer, **kw: object) -> RebuildPlan:
    kw.setdefault("wait", REBUILD_WAIT)
    return RebuildPlan(options, topic, server.url, 1, "US", **kw)  # type: ignore[arg-type]


async def rules_of(client: aioredis.Redis) -> dict[str, object]:
    """Every rule key (sets, expiries, records, indexes) with its content; no state keys (nor
    the topic's claims: a deleted list's claim stays, a restore claims only what it restores)."""
    out: dict[str, object] = {}
    async for key in client.scan_iter(match="denyproxy:*", count=1000):
        state = key.endswith((":ready", ":initialised", ":topic"))
        if key.startswith("denyproxy:{state}") or state:
            continue
        kind = await client.type(key)
        if kind == "set":
            out[key] = sorted(await client.smembers(key))
        elif kind == "zset":
            out[key] = await client.zrange(key, 0, -1, withscores=True)
        elif kind == "hash":
            out[key] = {k: v for k, v in (await client.hgetall(key)).items() if k not in VOLATILE}
        else:
            out[key] = await client.get(key)
    return out


async def churn(publisher: RulePublisher, tenants: Sequence[str]) -> list[RecordMetadata]:
    """Adds, removes and re-adds, with reasons and expiries, in several scopes."""
    later = time.time() + 3600
    metas = []
    for i, tenant in enumerate(tenants):
        values = [f"user{n}@acme{i}.com" for n in range(20)]
        meta = ChangeMeta(at=time.time(), source="crm", reason=f"opt-out {i}", expires_at=later)
        metas.append(await publisher.publish("add", tenant, "email", values, meta=meta))
        metas.append(await publisher.publish("remove", tenant, "email", values[:5]))
        metas.append(await publisher.publish("add", tenant, "email", values[:2]))
        metas.append(await publisher.publish("add", tenant, "phone", ["+14155550100"]))
        metas.append(await publisher.publish("add", tenant, "domain", [f"spam{i}.com"]))
        metas.append(await publisher.publish("remove", tenant, "domain", [f"spam{i}.com"]))
    metas.append(await publisher.publish("add", GLOBAL, "linkedin", ["linkedin.com/in/jane"]))
    return metas


async def test_rebuild_from_the_changelog_reproduces_the_store_exactly(
    options: KafkaOptions, topic: str, store: MirroredRedisStore, publisher: RulePublisher,
    redis: aioredis.Redis, running: list[RuleConsumer], private_redis: RedisServer,
) -> None:
    tenants = [tenant_of(f"k{i}-{uuid.uuid4()}") for i in range(4)]
    metas = await churn(publisher, tenants)
    consumer = await start(running, options, topic, store)
    await eventually(lambda: consumer.caught_up, "catch-up")
    await wait_applied(store, metas)
    before = await rules_of(redis)

    report = await rebuild(plan(options, topic, private_redis))

    assert report.restored == 4 * (15 + 2 + 1) + 1  # 15 + 2 emails, a phone, per tenant; jane
    assert report.replayed == 0  # the changelog had everything
    assert await rules_of(redis) == before
    assert await redis.get(generation_key()) == "1"
    assert await redis.get(normaliser_key()) == NORMALISER_VERSION
    assert await store.ready()
    async with aioredis.from_url(private_redis.url.replace("/0", "/1")) as old:
        assert await old.dbsize() == 0  # the old generation was deleted


async def test_a_rebuild_keeps_the_topics_claims_and_its_consumer_applying(
    options: KafkaOptions, topic: str, store: MirroredRedisStore, publisher: RulePublisher,
    redis: aioredis.Redis, running: list[RuleConsumer], private_redis: RedisServer,
) -> None:
    """The claims move with the switch: the same topic still writes, another still cannot."""
    tenant = tenant_of(f"k-{uuid.uuid4()}")
    first = await publisher.publish("add", tenant, "email", ["a@acme.com"])
    consumer = await start(running, options, topic, store)
    await wait_applied(store, [first])

    await rebuild(plan(options, topic, private_redis))

    assert await redis.get(claim_key(tenant)) == topic
    later = await publisher.publish("add", tenant, "email", ["b@acme.com"])
    await wait_applied(store, [later])
    assert await redis.smembers(f"denyproxy:{{{tenant}}}:email") == {"a@acme.com", "b@acme.com"}
    assert consumer.rejected_events == 0


async def test_changelog_is_compacted_and_holds_no_identifier_in_its_keys(
    options: KafkaOptions, topic: str, store: MirroredRedisStore, publisher: RulePublisher,
    running: list[RuleConsumer],
) -> None:
    tenant = tenant_of(f"k-{uuid.uuid4()}")
    metas = [await publisher.publish("add", tenant, "email", ["jane@acme.com"]),
             await publisher.publish("remove", tenant, "email", ["jane@acme.com"]),
             await publisher.publish("add", tenant, "phone", ["+14155550100"])]
    await start(running, options, topic, store)
    await wait_applied(store, metas)
    records = await read_all(options, changelog_topic(topic))
    keys = [k for k, _ in records]
    assert rule_key(tenant, RuleType.EMAIL, "jane@acme.com") in keys
    assert all(b"@" not in k and b"+1415" not in k for k in keys)
    last = dict(records)
    assert last[rule_key(tenant, RuleType.EMAIL, "jane@acme.com")] is None  # a tombstone
    phone = RuleRecord.decode(last[rule_key(tenant, RuleType.PHONE, "+14155550100")] or b"")
    assert (phone.value, phone.scope) == ("+14155550100", tenant)
    offsets = {k: orjson.loads(v or b"{}") for k, v in last.items() if k.startswith(b"offsets:")}
    assert {int(k[8:]): v["offset"] for k, v in offsets.items()} == {metas[-1].partition: 3}
    assert await topic_config(options, changelog_topic(topic), "cleanup.policy") == "compact"


async def test_rebuild_reads_the_input_topic_from_the_offsets_the_changelog_recorded(
    options: KafkaOptions, topic: str, store: MirroredRedisStore, publisher: RulePublisher,
    redis: aioredis.Redis, running: list[RuleConsumer], private_redis: RedisServer,
) -> None:
    tenant = tenant_of(f"k-{uuid.uuid4()}")
    first = [await publisher.publish("add", tenant, "email", [f"a{i}@acme.com"]) for i in range(5)]
    consumer = await start(running, options, topic, store)
    await wait_applied(store, first)
    await consumer.stop()
    # a consumer without the changelog moves the store on: the changelog is now behind it
    later = [await publisher.publish("remove", tenant, "email", ["a0@acme.com"]),
             await publisher.publish("add", tenant, "email", ["b@acme.com"]),
             await publisher.publish("add", tenant, "email", ["a0@acme.com", "c@acme.com"]),
             await publisher.publish("remove", tenant, "email", ["a1@acme.com"])]
    other = await start(running, options, topic, store, changelog=False)
    await wait_applied(store, later)
    before = await rules_of(redis)

    report = await rebuild(plan(options, topic, private_redis))

    assert report.restored == 5 and report.replayed == len(later)
    assert await rules_of(redis) == before
    assert "a1@acme.com" not in await redis.smembers(f"denyproxy:{{{tenant}}}:email")
    assert other.caught_up


async def test_seeding_starts_a_changelog_for_a_store_built_without_one(
    options: KafkaOptions, topic: str, store: MirroredRedisStore, publisher: RulePublisher,
    redis: aioredis.Redis, running: list[RuleConsumer], private_redis: RedisServer,
) -> None:
    tenants = [tenant_of(f"k{i}-{uuid.uuid4()}") for i in range(2)]
    metas = await churn(publisher, tenants)
    consumer = await start(running, options, topic, store, changelog=False)
    await wait_applied(store, metas)
    await consumer.stop()  # seeding wants nothing newer written meanwhile
    before = await rules_of(redis)

    seeded = await rebuild(plan(options, topic, private_redis, from_changelog=False,
                                seed_changelog=True))
    again = await rebuild(plan(options, topic, private_redis))

    assert seeded.replayed == len(metas)
    assert (again.restored, again.replayed) == (2 * (15 + 2 + 1) + 1, 0)
    assert await rules_of(redis) == before


@pytest.mark.parametrize("kind", [CrashAfterChangelog, CrashAfterRules])
async def test_a_crash_inside_a_logged_write_loses_nothing(
    options: KafkaOptions, topic: str, store: MirroredRedisStore, publisher: RulePublisher,
    redis: aioredis.Redis, running: list[RuleConsumer], private_redis: RedisServer,
    kind: type[RuleConsumer],
) -> None:
    tenant = tenant_of(f"k-{uuid.uuid4()}")
    metas = [await publisher.publish("add", tenant, "email", ["x@acme.com", "y@acme.com"]),
             await publisher.publish("remove", tenant, "email", ["x@acme.com"])]
    crashing = await start(running, options, topic, store, kind=kind)
    with pytest.raises(Crash):
        await crashing.wait()
    await crashing.stop()  # the process is gone: it leaves the group
    assert await store.offsets() == {}  # the store's offsets never passed what it applied
    await start(running, options, topic, store)
    await wait_applied(store, metas)
    before = await rules_of(redis)
    assert before[f"denyproxy:{{{tenant}}}:email"] == ["y@acme.com"]

    report = await rebuild(plan(options, topic, private_redis))

    assert report.replayed == 0  # the replayed write logged the slice again
    assert await rules_of(redis) == before


def changelog_partition(key: bytes, partitions: int = 4) -> int:
    """Where the producer's default partitioner puts `key` (murmur2, as Kafka's Java client)."""
    return DefaultPartitioner()(key, list(range(partitions)), list(range(partitions)))


def read_before_its_offsets() -> tuple[str, int, RuleRecord]:
    """A tenant whose jane record sits in a changelog partition read *before* the one of the
    offsets of its input partition: the order in which a read can see the offsets, not it."""
    for _ in range(10_000):
        tenant = tenant_of(f"om_{uuid.uuid4().hex}")
        p = changelog_partition(events.key_of(tenant))
        record = RuleRecord(tenant, RuleType.EMAIL, "jane.doe@acme.com", {}, p)
        if changelog_partition(record.key) < changelog_partition(changelog_offsets_key(p)):
            return tenant, p, record
    raise AssertionError("no tenant found")  # 10 000 draws of a 3-in-16 chance


async def test_a_changelog_read_ends_when_its_last_offsets_hold_no_record(
    options: KafkaOptions, topic: str,
) -> None:
    """A transaction's commit marker takes the partition's last offset and is never returned
    as a record: the read ends on the position, which passes it, not on a record's offset."""
    await ensure_changelog(options, topic, 1)
    record = RuleRecord(tenant_of("k"), RuleType.EMAIL, "jane@acme.com", {}, 0)
    producer = AIOKafkaProducer(transactional_id=f"{topic}-tx", **options.client_kwargs())
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send_and_wait(changelog_topic(topic), record.encode(), key=record.key)
    finally:
        await producer.stop()
    tp = TopicPartition(changelog_topic(topic), 0)
    async with AIOKafkaConsumer(**options.client_kwargs()) as consumer:
        assert (await consumer.end_offsets([tp]))[tp] == 2  # the record, then the marker

    async with asyncio.timeout(60):
        (part,) = await read_changelog(options, topic)

    assert list(part.rules) == [record.key]


async def test_a_changelog_read_that_cannot_end_in_its_bound_fails_saying_where(
    options: KafkaOptions, topic: str,
) -> None:
    await ensure_changelog(options, topic, 1)
    writer = ChangelogWriter(options, topic)
    await writer.start()
    try:
        await writer.write([], {0: 1})
    finally:
        await writer.stop()

    with pytest.raises(KafkaTimeoutError, match=rf"changelog partition {topic}.changelog\[0\]"):
        await read_changelog(options, topic, within=0)


async def test_a_changelog_read_never_holds_offsets_past_the_records_it_read(
    options: KafkaOptions, topic: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The consumer's steps 2 and 3 land while a rebuild reads the changelog partition by
    partition (issue #15): the offsets it returns must not cover a record it did not read."""
    await ensure_changelog(options, topic, 4)
    _, p, record = read_before_its_offsets()
    writer = ChangelogWriter(options, topic)
    await writer.start()
    real_read_part = changelog_module._read_part

    async def write_after_its_partition(
        consumer: AIOKafkaConsumer, tp: TopicPartition, *rest: int
    ) -> object:
        part = await real_read_part(consumer, tp, *rest)
        if tp.partition == changelog_partition(record.key):
            await writer.write([(record.key, record)], {p: 1})  # steps 2 and 3, acknowledged
        return part

    monkeypatch.setattr(changelog_module, "_read_part", write_after_its_partition)
    try:
        racing = await read_changelog(options, topic)
    finally:
        await writer.stop()
    monkeypatch.undo()

    def seen(parts: list[ChangelogPart]) -> tuple[dict[int, int], set[bytes]]:
        return ({q: o for part in parts for q, o in part.offsets.items()},
                {k for part in parts for k in part.rules})

    offsets, rules = seen(racing)
    assert p not in offsets or record.key in rules, "offsets past a record the read missed"
    assert seen(await read_changelog(options, topic)) == ({p: 1}, {record.key})


class HeldBeforeChangelog(RuleConsumer):
    """Writes the rules (step 1), then waits for `release` before the changelog (steps 2-3)
    and the store's offsets (step 4); `written` once that write returned. Disarmed, it writes
    straight through."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.held, self.release, self.written = asyncio.Event(), asyncio.Event(), asyncio.Event()
        self.armed = True

    async def write(self, changes: Sequence[RuleChange], offsets: Mapping[int, int]) -> bool:
        if not self.armed:
            return await super().write(changes, offsets)
        real = self.changelog.writer
        assert real is not None
        consumer = self

        class Held:
            async def write(self, entries: Any, offsets: Mapping[int, int]) -> None:
                consumer.held.set()
                await consumer.release.wait()
                await real.write(entries, offsets)

        self.changelog.writer = Held()  # type: ignore[assignment]  # only write() is called
        try:
            return await super().write(changes, offsets)
        finally:
            self.changelog.writer = real
            self.written.set()


async def test_a_planned_rebuild_racing_a_logged_write_never_switches_in_a_rule_set_without_it(
    options: KafkaOptions, topic: str, store: MirroredRedisStore, publisher: RulePublisher,
    redis: aioredis.Redis, running: list[RuleConsumer], private_redis: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The failure of issue #15, made deterministic: the consumer applied jane (step 1) and is
    held; the rebuild reads jane's changelog partition, then the consumer logs jane and her
    offsets (steps 2-3), mirrors them (4) and marks the store complete; the rebuild reads the
    offsets' partition and switches. The generation it switched in is ready: it must hold jane.
    """
    tenant, p, record = read_before_its_offsets()
    meta = await publisher.publish("add", tenant, "email", ["jane.doe@acme.com"])
    assert meta.partition == p  # the partitioner predicted: the race below really happens
    consumer = await start(running, options, topic, store, kind=HeldBeforeChangelog)
    assert isinstance(consumer, HeldBeforeChangelog)
    await asyncio.wait_for(consumer.held.wait(), 30)
    real_read_part = changelog_module._read_part

    async def release_after_jane_partition(
        kafka: AIOKafkaConsumer, tp: TopicPartition, *rest: int
    ) -> object:
        part = await real_read_part(kafka, tp, *rest)
        if tp.partition == changelog_partition(record.key):
            consumer.release.set()
            await asyncio.wait_for(consumer.written.wait(), 30)
            await eventually(lambda: consumer.caught_up, "the consumer to mark the store ready")
        return part

    monkeypatch.setattr(changelog_module, "_read_part", release_after_jane_partition)
    report = await rebuild(plan(options, topic, private_redis))
    monkeypatch.undo()

    assert report.generation == "1" and await redis.get(generation_key()) == "1"
    assert await store.ready()
    assert await redis.sismember(f"denyproxy:{{{tenant}}}:email", "jane.doe@acme.com"), "a leak"


async def test_a_planned_rebuild_switching_during_a_logged_write_keeps_its_rules_enforced(
    options: KafkaOptions, topic: str, store: MirroredRedisStore, publisher: RulePublisher,
    redis: aioredis.Redis, running: list[RuleConsumer], private_redis: RedisServer,
) -> None:
    """The window of issue #15: jane's rules are in db 0 (step 1) and enforced there, her
    offsets not yet (steps 2-4 held). The switch must not take away a rule db 0 enforced:
    the new generation catches up to the offsets the held write will reach. Released, the
    consumer's refused step 4 repositions it from there: no gap, nothing applied twice."""
    tenant, jane = tenant_of("key-pending"), {RuleType.EMAIL: {"jane.doe@acme.com"}}
    consumer = await start(running, options, topic, store, kind=HeldBeforeChangelog)
    assert isinstance(consumer, HeldBeforeChangelog)
    consumer.armed = False
    await wait_applied(store, [await publisher.publish("add", tenant, "email", ["bob@acme.com"])])
    await eventually(lambda: consumer.caught_up, "the consumer to mark the store ready")
    consumer.armed = True
    meta = await publisher.publish("add", tenant, "email", ["jane.doe@acme.com"])
    await asyncio.wait_for(consumer.held.wait(), 30)
    assert await store.lookup(tenant, jane) == jane, "step 1 done: db 0 enforces jane"
    assert (await store.offsets())[meta.partition] == meta.offset, "her offsets not yet"

    report = await rebuild(plan(options, topic, private_redis))

    assert report.generation == "1" and await redis.get(generation_key()) == "1"
    assert await store.lookup(tenant, jane) == jane, "a leak: the switch dropped jane"
    assert (await store.offsets())[meta.partition] == meta.offset + 1
    consumer.release.set()
    await asyncio.wait_for(consumer.written.wait(), 30)
    consumer.armed = False
    after = await publisher.publish("add", tenant, "email", ["ada@acme.com"])
    await wait_applied(store, [after])
    assert await store.lookup(tenant, jane) == jane and await store.ready()
    assert await redis.hgetall(pending_key(topic)) == {}
    assert await redis.smembers(f"denyproxy:{{{tenant}}}:email") == {
        "bob@acme.com", "jane.doe@acme.com", "ada@acme.com"}
    assert consumer.applied_events == 2, "bob and ada: jane's refused slice is not re-applied"


async def test_pending_offsets_only_rise_and_go_once_the_mirrored_offsets_reach_them(
    store: MirroredRedisStore, topic: str, redis: aioredis.Redis,
) -> None:
    """A crashed write's pending offset outlives an older slice's step 4 (a new owner replaying
    from behind it): the switch keeps catching up to it until the offsets get there."""
    await store.apply_and_check([], {}, pending={0: 10, 1: 3})
    await store.apply_and_check([], {}, pending={0: 5})
    assert await redis.hgetall(pending_key(topic)) == {"0": "10", "1": "3"}
    await store.apply([], {0: 5, 1: 3})
    assert await redis.hgetall(pending_key(topic)) == {"0": "10"}
    await store.apply([], {0: 10})
    assert await redis.hgetall(pending_key(topic)) == {}


async def test_a_flushed_store_is_restored_from_the_changelog_when_the_topic_lost_its_start(
    options: KafkaOptions, topic: str, store: MirroredRedisStore, publisher: RulePublisher,
    redis: aioredis.Redis, running: list[RuleConsumer],
) -> None:
    tenant = tenant_of(f"k-{uuid.uuid4()}")
    metas = [await publisher.publish("add", tenant, "email", [f"a{i}@acme.com"]) for i in range(6)]
    metas.append(await publisher.publish("remove", tenant, "email", ["a0@acme.com"]))
    consumer = await start(running, options, topic, store)
    await wait_applied(store, metas)
    before = await rules_of(redis)
    assert before[f"denyproxy:{{{tenant}}}:email"] == [f"a{i}@acme.com" for i in range(1, 6)]
    # limited retention: the input topic no longer has the first five events
    tp = TopicPartition(topic, metas[0].partition)
    admin = AIOKafkaAdminClient(**options.client_kwargs())
    await admin.start()
    try:
        await admin.delete_records({tp: RecordsToDelete(before_offset=5)})
    finally:
        await admin.close()

    await redis.flushall()

    async def rebuilt() -> bool:
        return await store.ready() and await rules_of(redis) == before

    await eventually(rebuilt, "the consumer's rebuild from the changelog")
    assert consumer.caught_up


async def test_planned_rebuild_under_load_answers_every_request_filtered(
    options: KafkaOptions, topic: str, publisher: RulePublisher, redis: aioredis.Redis,
    private_redis: RedisServer,
) -> None:
    api_key = f"om_{uuid.uuid4().hex}"
    tenant = tenant_of(api_key)
    await publisher.publish("add", tenant, "email", ["jane.doe@acme.com"])
    async with fake_upstream() as (_, upstream):
        settings = Settings(upstream=upstream, redis=private_redis.url, kafka=options.bootstrap,
                            topic=topic, group=f"{topic}-g", changelog=True)
        async with running_proxy(settings) as proxy, aiohttp.ClientSession() as client:
            async def filtered() -> bool:
                r, doc = await task_result(client, proxy.url, api_key)
                return r.status == 200 and "jane.doe@acme.com" not in emails(doc)

            await eventually(filtered, "the proxy to filter jane")
            statuses: list[int] = []
            leaks = 0
            done = asyncio.Event()

            async def load() -> None:
                nonlocal leaks
                while not done.is_set():
                    r, doc = await task_result(client, proxy.url, api_key)
                    statuses.append(r.status)
                    leaks += r.status == 200 and "jane.doe@acme.com" in emails(doc)

            loader = asyncio.create_task(load())
            await publisher.publish("add", tenant, "email", ["karl.marx@acme.com"])
            report = await rebuild(plan(options, topic, private_redis))
            await publisher.publish("add", tenant, "email", ["ada.lovelace@acme.com"])

            async def ada_filtered() -> bool:
                r, doc = await task_result(client, proxy.url, api_key)
                return r.status == 200 and "ada.lovelace@acme.com" not in emails(doc)

            await eventually(ada_filtered, "an event after the switch to be applied")
            done.set()
            await loader
    assert report.generation == "1"
    assert statuses and set(statuses) == {200}
    assert leaks == 0


async def test_a_normaliser_version_change_triggers_a_planned_rebuild(
    options: KafkaOptions, topic: str, store: MirroredRedisStore, publisher: RulePublisher,
    redis: aioredis.Redis, running: list[RuleConsumer], private_redis: RedisServer,
) -> None:
    tenant = tenant_of(f"k-{uuid.uuid4()}")
    metas = [await publisher.publish("add", tenant, "email", ["jane@acme.com"])]
    await start(running, options, topic, store)
    await wait_applied(store, metas)
    assert await renormalise_if_needed(plan(options, topic, private_redis)) is None
    # a rule the previous normaliser stored in another form (it kept the case)
    old = RuleRecord(tenant, RuleType.EMAIL, "Karl@ACME.com", {"created_at": "1"}, 0)
    writer = ChangelogWriter(options, topic)
    await writer.start()
    await writer.write([(old.key, old)], {})
    await writer.stop()
    await redis.set(normaliser_key(), "0")

    report = await renormalise_if_needed(plan(options, topic, private_redis))

    assert report is not None and report.renamed == 1
    assert await redis.smembers(f"denyproxy:{{{tenant}}}:email") == {
        "jane@acme.com", "karl@acme.com"}
    assert await redis.get(normaliser_key()) == NORMALISER_VERSION
    last = dict(await read_all(options, changelog_topic(topic)))
    assert last[old.key] is None  # the old form's key is tombstoned
    assert last[rule_key(tenant, RuleType.EMAIL, "karl@acme.com")] is not None


async def read_all(options: KafkaOptions, topic: str) -> list[tuple[bytes, bytes | None]]:
    consumer = AIOKafkaConsumer(enable_auto_commit=False, **options.client_kwargs())
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in await partition_ids(options, topic)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        out: list[tuple[bytes, bytes | None]] = []
        async with asyncio.timeout(60):  # to the end offsets: positions pass markers, too
            while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
                for rs in (await consumer.getmany(timeout_ms=500)).values():
                    out += [(r.key, r.value) for r in rs]
        return out
    finally:
        await consumer.stop()


async def topic_config(options: KafkaOptions, topic: str, name: str) -> str:
    admin = AIOKafkaAdminClient(**options.client_kwargs())
    await admin.start()
    try:
        (response,) = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic, configs={name: None})]
        )
        entries_ = response.resources[0][4]
        return str(next(e[1] for e in entries_ if e[0] == name))
    finally:
        await admin.close()


async def test_a_proxy_finding_another_normaliser_version_rebuilds_while_it_serves(
    options: KafkaOptions, topic: str, publisher: RulePublisher, redis: aioredis.Redis,
    private_redis: RedisServer,
) -> None:
    api_key = f"om_{uuid.uuid4().hex}"
    await publisher.publish("add", tenant_of(api_key), "email", ["jane.doe@acme.com"])
    await redis.set(normaliser_key(), "0")  # written by an older normaliser
    async with fake_upstream() as (_, upstream):
        settings = Settings(upstream=upstream, redis=private_redis.url, kafka=options.bootstrap,
                            topic=topic, group=f"{topic}-g", changelog=True)
        async with running_proxy(settings) as proxy, aiohttp.ClientSession() as client:
            async def switched() -> bool:
                return await redis.get(normaliser_key()) == NORMALISER_VERSION

            async def filtered() -> bool:
                r, doc = await task_result(client, proxy.url, api_key)
                assert r.status != 200 or "jane.doe@acme.com" not in emails(doc), "a leak"
                return r.status == 200

            await eventually(switched, "the planned rebuild at start-up")
            await eventually(filtered, "the new generation to serve")
    assert await redis.get(generation_key()) == "1"


async def test_the_rebuild_command(
    options: KafkaOptions, topic: str, store: MirroredRedisStore, publisher: RulePublisher,
    redis: aioredis.Redis, running: list[RuleConsumer], private_redis: RedisServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    metas = [await publisher.publish("add", tenant_of("k"), "email", ["jane@acme.com"])]
    await start(running, options, topic, store)
    await wait_applied(store, metas)
    argv = ["rebuild", "--kafka", options.bootstrap, "--redis", private_redis.url,
            "--topic", topic, "--rebuild-db", "2"]

    assert await asyncio.to_thread(cli.main, [*argv, "--redis-cluster"]) == 2
    assert await asyncio.to_thread(cli.main, [*argv[:-1], "0"]) == 2
    assert await asyncio.to_thread(cli.main, argv) == 0

    assert "generation 1: 1 rules from the changelog" in capsys.readouterr().out
    assert await redis.get(generation_key()) == "1"


async def test_doctor_checks_the_changelog_topic_when_the_changelog_is_on(
    options: KafkaOptions, topic: str,
) -> None:
    async def findings(topic: str) -> list[str]:
        settings = Settings(kafka=options.bootstrap, topic=topic, changelog=True)
        return [f.status async for f in doctor_kafka.kafka_findings(settings, time.time)
                if f.check == f"topic {changelog_topic(topic)}"]

    await ensure_changelog(options, topic)
    assert await findings(topic) == ["ok", "ok"]
    deleting = f"{topic}-x"  # a changelog made like the input topic (cleanup.policy=delete)
    await ensure_topic(options, changelog_topic(deleting), dead_letters=False)
    assert await findings(deleting) == ["ok", "FAIL"]


async def send_list(publisher: RulePublisher, op: ListOp, list_id: str,
                    **kw: object) -> RecordMetadata:
    change = ListChange(op, list_id, time.time(), **kw)  # type: ignore[arg-type]
    return await (await publisher.send_list(change))


async def test_lists_and_assignments_come_back_from_the_changelog_when_the_topic_lost_them(
    options: KafkaOptions, topic: str, store: MirroredRedisStore, publisher: RulePublisher,
    redis: aioredis.Redis, running: list[RuleConsumer], private_redis: RedisServer,
) -> None:
    first, second = f"om_{uuid.uuid4().hex}", f"om_{uuid.uuid4().hex}"
    kept, dropped = new_list_id(), new_list_id()
    metas = [
        await send_list(publisher, "create", kept, name="CRM opt-outs"),
        await publisher.publish("add", list_scope(kept), "email", ["jane.doe@acme.com"]),
        await send_list(publisher, "assign", kept, tenants=(tenant_of(first),)),
        await send_list(publisher, "update", kept, description="from the CRM"),
        await send_list(publisher, "assign", kept, tenants=(tenant_of(second),)),  # reassigned
        await send_list(publisher, "create", dropped, name="old"),
        await publisher.publish("add", list_scope(dropped), "email", ["karl.marx@acme.com"]),
        await send_list(publisher, "assign", dropped, tenants=(tenant_of(first),)),
        await send_list(publisher, "delete", dropped),
    ]
    await start(running, options, topic, store)
    await wait_applied(store, metas)
    before = comparable(await rules_of(redis))
    assert before[lists_meta_key()] is not None  # (rules_of reads the meta hash)
    async with fake_upstream() as (_, upstream):
        settings = Settings(upstream=upstream, redis=private_redis.url, topic=topic)
        async with running_proxy(settings) as proxy, aiohttp.ClientSession() as client:
            async def shown(api_key: str) -> list[str | None]:
                r, doc = await task_result(client, proxy.url, api_key)
                assert r.status == 200
                return emails(doc)

            assert "jane.doe@acme.com" not in await shown(second)
            assert {"jane.doe@acme.com", "karl.marx@acme.com"} <= set(await shown(first))
            # limited retention: the input topic lost every list event and entry
            await delete_records(options, metas[-1], metas[-1].offset + 1)
            await redis.flushall()

            async def rebuilt() -> bool:
                return await store.ready() and comparable(await rules_of(redis)) == before

            await eventually(rebuilt, "the consumer's rebuild of the lists from the changelog")
            assert "jane.doe@acme.com" not in await shown(second)
            assert {"jane.doe@acme.com", "karl.marx@acme.com"} <= set(await shown(first))
    assert await redis.hget(lists_meta_key(), dropped) is None  # a deleted list stays deleted
    last = dict(await read_all(options, changelog_topic(topic)))
    assert last[list_key(dropped)] is None
    assert last[rule_key(list_scope(dropped), RuleType.EMAIL, "karl.marx@acme.com")] is None
    record = ListRecord.decode(last[list_key(kept)] or b"")
    assert (record.name, record.description) == ("CRM opt-outs", "from the CRM")
    assert record.tenants == (tenant_of(second),)


async def test_a_planned_rebuild_and_seeding_carry_lists(
    options: KafkaOptions, topic: str, store: MirroredRedisStore, publisher: RulePublisher,
    redis: aioredis.Redis, running: list[RuleConsumer], private_redis: RedisServer,
) -> None:
    kept = new_list_id()
    metas = [
        await send_list(publisher, "create", kept, name="partners"),
        await publisher.publish("add", list_scope(kept), "domain", ["acme.com"]),
        await send_list(publisher, "assign", kept, tenants=(tenant_of("k1"), tenant_of("k2"))),
    ]
    consumer = await start(running, options, topic, store, changelog=False)
    await wait_applied(store, metas)
    await consumer.stop()
    before = comparable(await rules_of(redis))
    version = int(await redis.get(lists_version_key(tenant_of("k1"))) or 0)

    seeded = await rebuild(plan(options, topic, private_redis, from_changelog=False,
                                seed_changelog=True))
    await delete_records(options, metas[-1], metas[-1].offset + 1)
    again = await rebuild(plan(options, topic, private_redis))

    assert (seeded.lists, again.lists, again.restored, again.replayed) == (0, 1, 1, 0)
    assert comparable(await rules_of(redis)) == before
    # a proxy that cached the key's lists at the old version re-reads them
    assert int(await redis.get(lists_version_key(tenant_of("k1"))) or 0) > version


def comparable(rules: dict[str, object]) -> dict[str, object]:
    """Lists' metadata as JSON objects (Lua's cjson orders keys as its table happens to), and
    no assignments versions: a counter that a restore moves past every cached one."""
    out = {k: v for k, v in rules.items() if not k.startswith(f"{LISTS}version:")}
    meta = out.get(lists_meta_key())
    if isinstance(meta, dict):
        out[lists_meta_key()] = {k: orjson.loads(v) for k, v in meta.items()}
    return out


async def delete_records(options: KafkaOptions, meta: RecordMetadata, before: int) -> None:
    admin = AIOKafkaAdminClient(**options.client_kwargs())
    await admin.start()
    try:
        tp = TopicPartition(meta.topic, meta.partition)
        await admin.delete_records({tp: RecordsToDelete(before_offset=before)})
    finally:
        await admin.close()


def test_a_consumer_keeping_the_changelog_needs_read_and_write_on_it() -> None:
    logged = changelog_topic("t")
    assert changelog_needs("t") == [Need("READ", "topic", logged), Need("WRITE", "topic", logged)]
    assert [n for n in consumer_needs("t", "g") if n.name == logged] == []  # checked once made


async def test_a_limited_input_retention_is_warned_about_only_without_the_changelog(
    options: KafkaOptions, topic: str, store: MirroredRedisStore, running: list[RuleConsumer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    admin = AIOKafkaAdminClient(**options.client_kwargs())
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 4, 1, topic_configs={"retention.ms": "60000"})])

        async def listed() -> bool:
            return topic in await admin.list_topics()

        await eventually(listed, f"topic {topic} to be listed")
    finally:
        await admin.close()
    caplog.set_level(logging.WARNING, logger="rules.kafka")

    def warned() -> list[str]:
        return [r.getMessage() for r in caplog.records
                if r.name == "rules.kafka" and "retention.ms=60000" in r.getMessage()]

    await (await start(running, options, topic, store)).stop()
    assert warned() == []
    await start(running, options, topic, store, changelog=False)
    assert len(warned()) == 1
