"""The rule consumer against the real broker and the real Redis (no mocks)."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence

import orjson
import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import RecordMetadata
from prometheus_client import REGISTRY

from rules.consumer import ConsumerTuning, RuleConsumer
from rules.events import key_of
from rules.kafka import KafkaOptions, dead_letter_topic, ensure_topic
from rules.model import DEFAULT_REGION, GLOBAL, RuleChange, RuleType, tenant_of
from rules.publisher import RulePublisher
from rules.store import MemoryStore, RedisStore, StoreUnavailableError, rule_key
from tests.harness import eventually, stop_all
from tests.services import RedisServer

FAST = ConsumerTuning(poll_timeout=0.1, check_interval=0.1, backoff=(0.05, 0.5), stall_after=30)


class Crash(Exception):
    """Stands for the process dying between the Redis write and the Kafka commit."""


class CrashAfterWrite(RuleConsumer):
    """Writes the first batch, then dies before the commit.

    `partial=True` writes the rules but not the mirrored offsets: the process died in the
    middle of the pipeline, so the next consumer must re-read and replay the batch.
    """

    partial = False

    async def write(self, changes: Sequence[RuleChange], offsets: Mapping[int, int]) -> bool:
        if self.partial:
            await self.store.apply(changes)
        else:
            await super().write(changes, offsets)
        raise Crash("killed between the Redis write and the commit")


class SlowWriter(RuleConsumer):
    """Takes 100 ms per write until `fast` is set, so a rebalance lands in the middle of a load.

    (It must not block on the event: a rebalance waits for the write in progress.)
    """

    fast = asyncio.Event()

    async def write(self, changes: Sequence[RuleChange], offsets: Mapping[int, int]) -> bool:
        if not self.fast.is_set():
            await asyncio.sleep(0.1)
        return await super().write(changes, offsets)


@pytest.fixture
def topic() -> str:
    return f"rules-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def options(kafka_bootstrap: str) -> KafkaOptions:
    return KafkaOptions(kafka_bootstrap)


@pytest.fixture
async def publisher(options: KafkaOptions, topic: str) -> AsyncIterator[RulePublisher]:
    await ensure_topic(options, topic)
    async with RulePublisher(options, topic, region=DEFAULT_REGION) as publisher:
        yield publisher


@pytest.fixture
async def running() -> AsyncIterator[list[RuleConsumer]]:
    """Consumers a test starts; all stopped at the end, whatever happened."""
    consumers: list[RuleConsumer] = []
    yield consumers
    await stop_all(consumers)


async def start(
    consumers: list[RuleConsumer],
    options: KafkaOptions,
    topic: str,
    store: RedisStore | MemoryStore,
    *,
    group: str | None = "g",
    kind: type[RuleConsumer] = RuleConsumer,
    tuning: ConsumerTuning = FAST,
) -> RuleConsumer:
    consumer = kind(options, topic, group and f"{topic}-{group}", store, "US", tuning=tuning)
    consumers.append(consumer)
    await consumer.start()
    return consumer


async def wait_applied(store: RedisStore | MemoryStore, metas: Sequence[RecordMetadata]) -> None:
    """What the deny-rules API does: wait until the mirrored offsets pass each event."""

    async def passed() -> bool:
        try:
            mirrored = await store.offsets()
        except StoreUnavailableError:
            return False
        return all(mirrored.get(m.partition, -1) > m.offset for m in metas)

    await eventually(passed, "the store to reach the published offsets")


async def members(redis: aioredis.Redis, tenant: str, rule_type: RuleType) -> set[str]:
    return set(await redis.smembers(rule_key(tenant, rule_type)))


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_add_remove_sequences_and_interleaved_tenants_keep_their_order(
    options: KafkaOptions,
    topic: str,
    store: RedisStore,
    publisher: RulePublisher,
    redis: aioredis.Redis,
    running: list[RuleConsumer],
) -> None:
    a, b = tenant_of(f"a-{uuid.uuid4()}"), tenant_of(f"b-{uuid.uuid4()}")
    steps = [
        (a, "add", "x@acme.com"),
        (b, "remove", "x@acme.com"),
        (a, "remove", "x@acme.com"),
        (b, "add", "x@acme.com"),
        (a, "add", "x@acme.com"),
        (b, "remove", "x@acme.com"),  # a: add→remove→add → present
        (a, "remove", "y@acme.com"),
        (b, "add", "y@acme.com"),
        (a, "add", "y@acme.com"),
        (b, "remove", "y@acme.com"),  # a: remove→add → present
        (a, "add", "z@acme.com"),
        (b, "add", "z@acme.com"),
        (a, "remove", "z@acme.com"),
        (GLOBAL, "add", "z@acme.com"),
    ]
    metas = [await publisher.publish(op, t, "email", [v]) for t, op, v in steps]
    for round_ in range(30):  # many more alternations, across several small batches
        metas.append(
            await publisher.publish("add" if round_ % 2 else "remove", b, "email", ["w@acme.com"])
        )
        metas.append(
            await publisher.publish("remove" if round_ % 2 else "add", a, "email", ["w@acme.com"])
        )
    applied_before = sample("denyproxy_rule_events_applied_total")
    consumer = await start(
        running,
        options,
        topic,
        store,
        tuning=ConsumerTuning(max_records=3, poll_timeout=0.1, check_interval=0.1),
    )
    await eventually(lambda: consumer.caught_up, "catch-up")
    await wait_applied(store, metas)

    assert await members(redis, a, RuleType.EMAIL) == {"x@acme.com", "y@acme.com"}
    assert await members(redis, b, RuleType.EMAIL) == {"z@acme.com", "w@acme.com"}
    # the global set is shared with other tests: only this test's values are asserted
    assert await members(redis, GLOBAL, RuleType.EMAIL) & {"x@acme.com", "y@acme.com",
                                                          "z@acme.com", "w@acme.com"} == {
        "z@acme.com"
    }
    assert await store.lookup(a, {RuleType.EMAIL: ["z@acme.com", "x@acme.com", "q@acme.com"]}) == {
        RuleType.EMAIL: {"z@acme.com", "x@acme.com"}
    }
    assert consumer.applied_events == len(metas)
    assert sample("denyproxy_rule_events_applied_total") - applied_before == len(metas)
    for p in {m.partition for m in metas}:
        assert sample("denyproxy_consumer_lag", partition=str(p)) == 0


async def test_publish_reports_the_offset_the_store_then_passes(
    options: KafkaOptions,
    topic: str,
    store: RedisStore,
    publisher: RulePublisher,
    redis: aioredis.Redis,
    running: list[RuleConsumer],
) -> None:
    tenant = tenant_of(str(uuid.uuid4()))
    consumer = await start(running, options, topic, store)
    await eventually(lambda: consumer.caught_up, "catch-up on an empty topic")
    latency_before = sample("denyproxy_rule_publish_to_applied_seconds_count")
    meta = await publisher.publish("add", tenant, "phone", ["+1 415 555 0100", "(415) 555-0101"])
    assert meta.partition in range(4) and meta.offset == 0
    await wait_applied(store, [meta])
    assert await members(redis, tenant, RuleType.PHONE) == {"+14155550100", "+14155550101"}
    assert sample("denyproxy_rule_publish_to_applied_seconds_count") == latency_before + 1


@pytest.mark.parametrize("partial", [False, True], ids=["offsets-written", "rules-only-written"])
async def test_crash_between_redis_write_and_commit_restarts_to_the_same_state(
    partial: bool,
    options: KafkaOptions,
    topic: str,
    store: RedisStore,
    publisher: RulePublisher,
    redis: aioredis.Redis,
    running: list[RuleConsumer],
) -> None:
    tenant = tenant_of(str(uuid.uuid4()))
    steps = [
        ("add", ["a@x.io", "b@x.io", "c@x.io"]),
        ("remove", ["b@x.io"]),
        ("add", ["d@x.io"]),
        ("remove", ["a@x.io", "d@x.io"]),
        ("add", ["a@x.io"]),
    ]
    # sent together, so they share one record batch and the first fetch returns all of them
    sent = [await publisher.send(op, tenant, "email", values) for op, values in steps]
    metas = await asyncio.gather(*sent)
    partition = TopicPartition(topic, metas[0].partition)

    CrashAfterWrite.partial = partial
    doomed = await start(running, options, topic, store, kind=CrashAfterWrite)
    with pytest.raises(Crash):
        await asyncio.wait_for(doomed.wait(), 30)
    assert not doomed.healthy
    assert await members(redis, tenant, RuleType.EMAIL) == {"a@x.io", "c@x.io"}, "write happened"
    assert await doomed._kafka().committed(partition) is None, "the commit never happened"
    assert (await store.offsets()).get(partition.partition) == (None if partial else len(steps))
    await doomed.stop()

    survivor = await start(running, options, topic, store)
    await eventually(lambda: survivor.caught_up, "the restarted consumer to catch up")
    assert survivor.applied_events == (len(steps) if partial else 0), "replayed iff not mirrored"
    assert await members(redis, tenant, RuleType.EMAIL) == {"a@x.io", "c@x.io"}
    assert (await store.offsets())[partition.partition] == len(steps)


async def test_poison_records_are_dead_lettered_and_the_next_event_applied(
    options: KafkaOptions,
    topic: str,
    store: RedisStore,
    publisher: RulePublisher,
    redis: aioredis.Redis,
    running: list[RuleConsumer],
) -> None:
    tenant = tenant_of(str(uuid.uuid4()))
    key = key_of(tenant)

    def event(**changes: object) -> bytes:
        body = {
            "v": 1,
            "op": "add",
            "tenant": tenant,
            "type": "email",
            "values": ["ok@x.io"],
            "id": str(uuid.uuid4()),
            "ts": "2026-11-25T10:00:00Z",
            **changes,
        }
        return orjson.dumps(body)

    poison = [
        (key, b"{not json", "json"),
        (key, event(type="fax"), "schema"),
        (key, event(values=[f"u{i}@x.io" for i in range(10_001)]), "too_many_values"),
        (key, event(v=4), "version"),
        (key, event(values=["ok@x.io", "not-an-email"]), "values"),
        (b"someone-else", event(), "key"),
    ]
    rejected_before = {
        code: sample("denyproxy_rule_events_rejected_total", reason=code) for _, _, code in poison
    }
    producer = AIOKafkaProducer(
        bootstrap_servers=options.bootstrap,
        compression_type="gzip",
        max_request_size=8 * 1024 * 1024,
    )
    await producer.start()
    try:
        for record_key, value, _ in poison:
            await producer.send_and_wait(topic, value, key=record_key)
    finally:
        await producer.stop()
    good = await publisher.publish("add", tenant, "email", ["good@x.io"])

    consumer = await start(running, options, topic, store)
    await wait_applied(store, [good])
    assert await members(redis, tenant, RuleType.EMAIL) == {"good@x.io"}
    assert consumer.rejected_events == len(poison)
    for _, _, code in poison:
        assert (
            sample("denyproxy_rule_events_rejected_total", reason=code) == rejected_before[code] + 1
        )

    dead = await read_all(options.bootstrap, dead_letter_topic(topic), len(poison))
    assert sorted(h["reason-code"] for h in dead) == sorted(code for _, _, code in poison)
    for headers in dead:
        assert headers["reason"] and headers["source-topic"] == topic
    assert consumer.healthy


async def read_all(bootstrap: str, topic: str, count: int) -> list[dict[str, str]]:
    """Headers of the first `count` records of a topic, read without a group."""
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await reader.start()
    try:
        reader.assign([TopicPartition(topic, p) for p in range(4)])  # ensure_topic's default
        found: list[dict[str, str]] = []
        deadline = time.monotonic() + 20
        while len(found) < count and time.monotonic() < deadline:
            for records in (await reader.getmany(timeout_ms=200)).values():
                found += [{k: v.decode() for k, v in r.headers} for r in records]
        return found
    finally:
        await reader.stop()


async def test_two_consumers_in_one_group_split_partitions_and_fill_redis(
    options: KafkaOptions,
    topic: str,
    store: RedisStore,
    publisher: RulePublisher,
    redis: aioredis.Redis,
    running: list[RuleConsumer],
) -> None:
    first = await start(running, options, topic, store)
    second = await start(running, options, topic, store)

    def split() -> bool:
        mine, theirs = first._kafka().assignment(), second._kafka().assignment()
        return bool(mine) and bool(theirs) and not mine & theirs and len(mine | theirs) == 4

    await eventually(split, "both members to get partitions", timeout=40)
    tenants = [tenant_of(f"split-{i}-{uuid.uuid4()}") for i in range(24)]
    metas = [
        await publisher.publish("add", t, "domain", [f"d{i}.example.com", f"e{i}.example.com"])
        for i, t in enumerate(tenants)
    ]
    await wait_applied(store, metas)
    await eventually(lambda: first.caught_up and second.caught_up, "both caught up")

    assert first.applied_events > 0 and second.applied_events > 0
    assert first.applied_events + second.applied_events == len(tenants)
    for i, t in enumerate(tenants):
        assert await members(redis, t, RuleType.DOMAIN) == {
            f"d{i}.example.com",
            f"e{i}.example.com",
        }


async def test_store_is_not_ready_until_the_start_up_load_is_complete(
    options: KafkaOptions,
    topic: str,
    store: RedisStore,
    publisher: RulePublisher,
    redis: aioredis.Redis,
    running: list[RuleConsumer],
) -> None:
    tenant = tenant_of(str(uuid.uuid4()))
    values = [f"user{i}@load.example" for i in range(20_000)]
    for chunk_start in range(0, len(values), 2_000):
        await publisher.publish("add", tenant, "email", values[chunk_start : chunk_start + 2_000])
    assert not await store.ready()
    with pytest.raises(StoreUnavailableError):
        await store.lookup(tenant, {RuleType.EMAIL: ["user1@load.example"]})

    consumer = await start(
        running,
        options,
        topic,
        store,
        tuning=ConsumerTuning(max_records=1, poll_timeout=0.1, check_interval=0.05),
    )
    assert not consumer.caught_up
    seen_partial_ready = False
    while not consumer.caught_up:
        if await store.ready() and await redis.scard(rule_key(tenant, RuleType.EMAIL)) < len(
            values
        ):
            seen_partial_ready = True
        await asyncio.sleep(0.01)
    assert not seen_partial_ready, "the store was marked ready while half loaded"
    assert await redis.scard(rule_key(tenant, RuleType.EMAIL)) == len(values)
    assert await store.lookup(tenant, {RuleType.EMAIL: ["user1@load.example"]})


async def test_flushed_redis_is_rebuilt_and_answers_unavailable_meanwhile(
    flushable_redis_url: str,
    options: KafkaOptions,
    topic: str,
    store: RedisStore,
    publisher: RulePublisher,
    redis: aioredis.Redis,
    running: list[RuleConsumer],
) -> None:
    tenants = [tenant_of(f"flush-{i}-{uuid.uuid4()}") for i in range(8)]
    for t in tenants:
        await publisher.publish("add", t, "email", [f"u{i}@flush.example" for i in range(3_000)])
        await publisher.publish("remove", t, "email", ["u0@flush.example"])
    consumer = await start(running, options, topic, store)
    await eventually(lambda: consumer.caught_up, "first load")
    applied = consumer.applied_events

    await redis.flushall()
    with pytest.raises(StoreUnavailableError):
        await store.lookup(tenants[0], {RuleType.EMAIL: ["u1@flush.example"]})
    await eventually(lambda: consumer.applied_events == 2 * applied, "the replay")
    await eventually(lambda: consumer.caught_up, "the rebuild")

    assert consumer.applied_events == 2 * applied, "every event replayed once"
    for t in tenants:
        assert await redis.scard(rule_key(t, RuleType.EMAIL)) == 2_999
    assert await store.lookup(
        tenants[0], {RuleType.EMAIL: ["u1@flush.example", "u0@flush.example"]}
    ) == {RuleType.EMAIL: {"u1@flush.example"}}
    late = await publisher.publish("add", tenants[0], "email", ["u0@flush.example"])
    await wait_applied(store, [late])
    assert await redis.sismember(rule_key(tenants[0], RuleType.EMAIL), "u0@flush.example")


async def test_redis_restarted_empty_is_retried_then_rebuilt(
    caplog: pytest.LogCaptureFixture,
    options: KafkaOptions,
    topic: str,
    publisher: RulePublisher,
    redis_server: RedisServer,
    running: list[RuleConsumer],
) -> None:
    tenant = tenant_of(str(uuid.uuid4()))
    store = RedisStore.from_url(redis_server.url, timeout=1.0, topic=topic)
    client = aioredis.from_url(redis_server.url, decode_responses=True)
    try:
        await publisher.publish("add", tenant, "phone", ["+14155550100", "+14155550111"])
        consumer = await start(running, options, topic, store)
        await eventually(lambda: consumer.caught_up, "first load")

        redis_server.stop()
        meta = await publisher.publish("remove", tenant, "phone", ["+14155550111"])
        caplog.set_level(logging.WARNING, logger="rules.consumer")
        await eventually(
            lambda: any("retry in" in r.getMessage() for r in caplog.records),
            "the consumer to retry the store",
        )
        assert consumer.healthy, "a Redis outage is retried, not a crash"
        redis_server.start()

        await wait_applied(store, [meta])

        async def rebuilt() -> bool:  # the empty Redis has no ready marker until the replay ends
            return consumer.caught_up and await store.ready()

        await eventually(rebuilt, "the rebuild after the restart")
        assert await client.smembers(rule_key(tenant, RuleType.PHONE)) == {"+14155550100"}
    finally:
        redis_server.start()
        await client.aclose()
        await store.aclose()


async def test_in_memory_stores_each_read_every_partition(
    options: KafkaOptions,
    topic: str,
    publisher: RulePublisher,
    running: list[RuleConsumer],
) -> None:
    tenants = [tenant_of(f"mem-{i}") for i in range(12)]
    for t in tenants:
        await publisher.publish("add", t, "linkedin", ["https://linkedin.com/in/jane"])
    stores = [MemoryStore(ready=False), MemoryStore(ready=False)]
    consumers = [await start(running, options, topic, s, group="shared") for s in stores]
    for consumer in consumers:
        assert consumer.group is None, "an in-memory store needs every partition"
        await eventually(lambda c=consumer: c.caught_up, "catch-up")
    for s in stores:
        assert await s.ready()
        for t in tenants:
            assert await s.lookup(t, {RuleType.LINKEDIN: ["linkedin.com/in/jane"]})


async def test_a_member_joining_mid_load_keeps_every_tenants_order(
    options: KafkaOptions,
    topic: str,
    store: RedisStore,
    publisher: RulePublisher,
    redis: aioredis.Redis,
    running: list[RuleConsumer],
) -> None:
    # 16 tenants over 4 partitions: every partition has some (an empty one the second member
    # takes would leave it nothing to apply; odds of that with 16 random keys: about 1 %)
    tenants = [tenant_of(f"order-{i}-{uuid.uuid4()}") for i in range(16)]
    futures = []
    for round_ in range(30):  # ends with an add for even tenants, a remove for odd ones
        for i, t in enumerate(tenants):
            op = "add" if (round_ + i) % 2 else "remove"
            futures.append(
                await publisher.send(op, t, "email", ["flip@acme.com", f"r{round_}@x.io"])
            )
    metas = list(await asyncio.gather(*futures))
    slow = ConsumerTuning(max_records=5, poll_timeout=0.1, check_interval=0.1)
    SlowWriter.fast.clear()
    first = await start(running, options, topic, store, tuning=slow, kind=SlowWriter)
    await eventually(lambda: first.applied_events >= 40, "the first member to be mid-load")
    second = await start(running, options, topic, store, tuning=slow, kind=SlowWriter)
    await eventually(lambda: bool(second._kafka().assignment()), "the rebalance", timeout=40)
    assert first.applied_events < len(metas), "the rebalance came in the middle of the load"
    SlowWriter.fast.set()
    await wait_applied(store, metas)
    await eventually(lambda: first.caught_up and second.caught_up, "both caught up")

    assert second.applied_events > 0, "the second member took partitions over"
    for i, t in enumerate(tenants):
        assert await redis.sismember(rule_key(t, RuleType.EMAIL), "flip@acme.com") == (i % 2 == 0)


async def test_after_a_flush_the_group_marks_ready_only_when_every_partition_is_back(
    flushable_redis_url: str,
    options: KafkaOptions,
    topic: str,
    store: RedisStore,
    publisher: RulePublisher,
    redis: aioredis.Redis,
    running: list[RuleConsumer],
) -> None:
    tenants = [tenant_of(f"group-flush-{i}-{uuid.uuid4()}") for i in range(16)]
    for t in tenants:
        for chunk in range(4):
            values = [f"u{chunk}-{i}@g.example" for i in range(1_000)]
            await publisher.publish("add", t, "email", values)
    tuning = ConsumerTuning(max_records=2, poll_timeout=0.1, check_interval=0.05)
    first = await start(running, options, topic, store, tuning=tuning)
    second = await start(running, options, topic, store, tuning=tuning)
    await eventually(
        lambda: bool(first._kafka().assignment()) and bool(second._kafka().assignment()),
        "both members to get partitions",
        timeout=40,
    )
    await eventually(lambda: first.caught_up and second.caught_up, "first load")

    async def total() -> int:
        return sum([await redis.scard(rule_key(t, RuleType.EMAIL)) for t in tenants])

    assert await total() == 4_000 * len(tenants)
    before = first.applied_events + second.applied_events
    await redis.flushall()
    deadline = time.monotonic() + 60
    while first.applied_events + second.applied_events < 2 * before or not (
        first.caught_up and second.caught_up
    ):
        assert time.monotonic() < deadline, "the group did not rebuild"
        if await store.ready():
            assert await total() == 4_000 * len(tenants), "marked ready while half loaded"
        await asyncio.sleep(0.01)
    assert await total() == 4_000 * len(tenants)
    assert await store.ready()
