"""Rule path integrity against the real broker and the real Redis: publishers that break the
contract (partitioner, size) and a store that refuses writes cannot stop or reorder the rules."""

from __future__ import annotations

import os
import time
import uuid
import zlib

import orjson
import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from proxy.app import Health
from rules.consumer import ConsumerTuning, RuleConsumer
from rules.events import encode, key_of, partition_of
from rules.kafka import KafkaOptions, dead_letter_topic
from rules.model import DEFAULT_REGION, RuleType, tenant_of
from rules.publisher import RulePublisher
from rules.store import MemoryStore, MirroredRedisStore, RedisStore, StoreUnavailableError
from rules.store.staleness import StalenessGuard
from tests import test_consumer as base
from tests.harness import eventually as wait_for
from tests.test_consumer import members, sample, start, wait_applied

# the fixtures of tests/test_consumer.py (real broker, real Redis), shared by name
options, topic = base.options, base.topic
publisher, running = base.publisher, base.running

MiB = 1024 * 1024


def crc32_partition(key: bytes, partitions: int = 4) -> int:
    """librdkafka's old default (`consistent_random`): CRC32 of the key."""
    return zlib.crc32(key) % partitions


def tenants_where(misrouted: bool) -> str:
    while True:
        tenant = tenant_of(str(uuid.uuid4()))
        key = key_of(tenant)
        if (crc32_partition(key) != partition_of(key, 4)) == misrouted:
            return tenant


async def read_dead(bootstrap: str, topic: str, count: int) -> list[tuple[dict[str, str], bytes]]:
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await reader.start()
    found: list[tuple[dict[str, str], bytes]] = []
    try:
        reader.assign([TopicPartition(topic, p) for p in range(4)])
        async def enough() -> bool:
            for records in (await reader.getmany(timeout_ms=200)).values():
                found.extend(({k: v.decode() for k, v in r.headers}, r.value) for r in records)
            return len(found) >= count
        await wait_for(enough, f"{count} dead letters")
        return found
    finally:
        await reader.stop()


async def snapshot(redis: aioredis.Redis, tenants: list[str]) -> dict[str, set[str]]:
    return {t: await members(redis, t, RuleType.EMAIL) for t in tenants}


async def test_a_crc32_publisher_is_dead_lettered_and_live_equals_rebuild(
    options: KafkaOptions,
    topic: str,
    store: RedisStore,
    publisher: RulePublisher,
    redis: aioredis.Redis,
    running: list[RuleConsumer],
) -> None:
    misrouted, lucky = tenants_where(True), tenants_where(False)
    before = sample("denyproxy_rule_events_rejected_total", reason="partition")
    producers = [AIOKafkaProducer(bootstrap_servers=options.bootstrap) for _ in range(2)]
    for p in producers:
        await p.start()
    metas = []
    try:
        for tenant in (misrouted, lucky):
            key = key_of(tenant)
            # add → remove → add from two publishers: the first keeps the contract (aiokafka's
            # default partitioner is murmur2), the second places records by CRC32
            for i, op in enumerate(("add", "remove", "add")):
                value = encode(op, tenant, "email", ["x@acme.com"], region=None)  # type: ignore[arg-type]  # literal ops
                partition = crc32_partition(key) if i % 2 else None
                metas.append(await producers[i % 2].send_and_wait(
                    topic, value, key=key, partition=partition))
    finally:
        for p in producers:
            await p.stop()
    consumer = await start(running, options, topic, store)
    await wait_applied(store, metas)
    await wait_for(lambda: consumer.caught_up, "catch-up")

    live = await snapshot(redis, [misrouted, lucky])
    assert live == {misrouted: {"x@acme.com"}, lucky: {"x@acme.com"}}, "the remove never jumps"
    assert sample("denyproxy_rule_events_rejected_total", reason="partition") == before + 1
    [(headers, value)] = await read_dead(options.bootstrap, dead_letter_topic(topic), 1)
    assert headers["reason-code"] == "partition"
    assert orjson.loads(value)["op"] == "remove" and orjson.loads(value)["tenant"] == misrouted

    applied = consumer.applied_events
    await redis.flushall()
    await wait_for(lambda: consumer.applied_events == 2 * applied, "the rebuild's replay")
    await wait_for(lambda: consumer.caught_up, "the rebuild")
    assert await snapshot(redis, [misrouted, lucky]) == live


async def test_an_11_mb_event_cannot_stop_other_tenants_rules(
    options: KafkaOptions,
    topic: str,
    store: RedisStore,
    redis: aioredis.Redis,
    running: list[RuleConsumer],
) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=options.bootstrap)
    await admin.start()
    try:  # a topic that accepts it (ensure_topic then leaves it alone)
        await admin.create_topics([NewTopic(topic, 4, 1, topic_configs={
            "max.message.bytes": str(16 * MiB), "retention.ms": "-1"})])
    finally:
        await admin.close()
    big_tenant = tenant_of(str(uuid.uuid4()))
    values = [f"someone.with.a.long.name.{i:06d}@example-enterprise.com" for i in range(200_000)]
    big = encode("add", big_tenant, "email", values[:1], region=None)  # valid, then 200,000 values
    body = orjson.loads(big)
    body["values"] = values
    value = orjson.dumps(body)
    assert len(value) > 11_000_000  # 11 MB
    producer = AIOKafkaProducer(bootstrap_servers=options.bootstrap, max_request_size=16 * MiB)
    await producer.start()
    try:
        big_meta = await producer.send_and_wait(topic, value, key=key_of(big_tenant))
    finally:
        await producer.stop()
    others = [tenant_of(str(uuid.uuid4())) for _ in range(6)]
    async with RulePublisher(options, topic, region=DEFAULT_REGION) as publisher:
        metas = [await publisher.publish("add", t, "email", ["ok@acme.com"]) for t in others]

    await start(running, options, topic, store)
    await wait_applied(store, metas)  # bounded poll (30 s), no sleep
    for t in others:
        assert await members(redis, t, RuleType.EMAIL) == {"ok@acme.com"}
    assert await members(redis, big_tenant, RuleType.EMAIL) == set()
    [(headers, ref)] = await read_dead(options.bootstrap, dead_letter_topic(topic), 1)
    assert headers["reason-code"] == "too_large" and headers["payload"] == "omitted"
    assert orjson.loads(ref) == {
        "reference": True, "topic": topic, "partition": big_meta.partition,
        "offset": big_meta.offset, "reason-code": "too_large",
        "reason": headers["reason"], "size": int(headers["source-size"]),
    }


async def test_a_store_refusing_writes_is_visible_and_stale_rules_fail_closed(
    options: KafkaOptions,
    topic: str,
    store: RedisStore,
    publisher: RulePublisher,
    redis: aioredis.Redis,
    running: list[RuleConsumer],
) -> None:
    tenant = tenant_of(str(uuid.uuid4()))
    first = await publisher.publish("add", tenant, "email", ["a@acme.com"])
    tuning = ConsumerTuning(poll_timeout=0.1, check_interval=0.1, backoff=(0.05, 0.2),
                            stall_report=1.0)
    consumer = await start(running, options, topic, store, tuning=tuning)
    await wait_applied(store, [first])
    await wait_for(lambda: consumer.caught_up, "catch-up")
    assert isinstance(store, MirroredRedisStore)
    guard = StalenessGuard(store, max_age=2.0, refresh=0.1)
    health = Health(guard, consumer=consumer)
    assert await guard.lookup(tenant, {RuleType.EMAIL: ["a@acme.com"]})
    policy = str((await redis.config_get("maxmemory-policy"))["maxmemory-policy"])
    await redis.config_set("maxmemory-policy", "noeviction")
    await redis.config_set("maxmemory", "1")  # every write now fails with OOM; reads work
    try:
        stuck = await publisher.publish("add", tenant, "email", ["b@acme.com"])
        await wait_for(lambda: consumer.stall() is not None, "the stall to show", timeout=10)
        assert "store unavailable" in (consumer.stall() or "")
        await wait_for(lambda: sample("denyproxy_consumer_stalled_seconds") >= 1.0, "the gauge")
        ok, detail = await Health(store, consumer=consumer).ready()  # no staleness bound
        assert ok and detail.startswith("ready; rule consumer stalled")
        assert "store unavailable (redis: OutOfMemoryError)" in detail

        async def failing_closed() -> bool:
            try:
                await guard.lookup(tenant, {RuleType.EMAIL: ["a@acme.com"]})
            except StoreUnavailableError as exc:
                return "rules stale" in str(exc)
            return False

        await wait_for(failing_closed, "lookups to fail closed", timeout=10)
        assert (await health.ready())[0] is False
        assert "rules stale" in (await health.ready())[1]
    finally:
        await redis.config_set("maxmemory", "0")
        await redis.config_set("maxmemory-policy", policy)
    await wait_applied(store, [stuck])
    await wait_for(lambda: consumer.stall() is None, "the stall to clear")

    async def ready() -> bool:
        return (await health.ready())[0]

    await wait_for(ready, "readiness back", timeout=10)
    assert await guard.lookup(tenant, {RuleType.EMAIL: ["b@acme.com"]})


def test_the_alert_rules_watch_the_consumers_metrics() -> None:
    import yaml

    from tests.services import REPO_ROOT

    doc = yaml.safe_load((REPO_ROOT / "deploy" / "observability" / "alerts.yaml").read_text())
    rules = {r["alert"]: r["expr"] for g in doc["groups"] for r in g["rules"]}
    assert 'denyproxy_rule_events_rejected_total{reason="partition"}' in (
        rules["DenyproxyRuleEventMisrouted"]
    )
    assert "denyproxy_consumer_stalled_seconds" in rules["DenyproxyConsumerStalled"]


async def test_a_dead_letter_topic_refusing_the_size_gets_a_reference(
    options: KafkaOptions,
    topic: str,
    store: RedisStore,
    redis: aioredis.Redis,
    running: list[RuleConsumer],
) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=options.bootstrap)
    await admin.start()
    try:  # the broker, not the client, refuses a 20 kB dead letter
        await admin.create_topics([NewTopic(dead_letter_topic(topic), 4, 1, topic_configs={
            "max.message.bytes": "4096", "retention.ms": "-1"})])
    finally:
        await admin.close()
    bad_tenant, good_tenant = tenant_of(str(uuid.uuid4())), tenant_of(str(uuid.uuid4()))
    async with RulePublisher(options, topic, region=DEFAULT_REGION) as publisher:
        producer = AIOKafkaProducer(bootstrap_servers=options.bootstrap)
        await producer.start()
        try:  # 20 kB that no compression shrinks below 4 kB, and not valid JSON
            poison = b"{" + os.urandom(20_000)
            bad = await producer.send_and_wait(topic, poison, key=key_of(bad_tenant))
        finally:
            await producer.stop()
        good = await publisher.publish("add", good_tenant, "email", ["ok@acme.com"])
    consumer = await start(running, options, topic, store)
    await wait_applied(store, [good])
    assert await members(redis, good_tenant, RuleType.EMAIL) == {"ok@acme.com"}
    [(headers, ref)] = await read_dead(options.bootstrap, dead_letter_topic(topic), 1)
    assert headers["reason-code"] == "json" and headers["payload"] == "omitted"
    assert orjson.loads(ref)["offset"] == bad.offset
    assert consumer.healthy


async def test_max_rule_staleness_is_off_by_default_and_guards_lookups_when_set() -> None:
    from proxy.server import guarded
    from proxy.settings import SettingsError, from_sources

    assert from_sources({}, {}).max_rule_staleness is None
    env = {"DENYPROXY_MAX_RULE_STALENESS": "30"}
    assert from_sources({}, env).max_rule_staleness == 30.0
    assert from_sources({"max_rule_staleness": "5"}, env).max_rule_staleness == 5.0
    with pytest.raises(SettingsError, match="--max-rule-staleness"):
        from_sources({"max_rule_staleness": "-1"}, {})

    memory = MemoryStore()
    assert guarded(from_sources({}, {}), memory) is memory
    guard = guarded(from_sources({}, env), memory)
    assert isinstance(guard, StalenessGuard) and guard.max_age == 30.0
    with pytest.raises(StoreUnavailableError, match="no rule consumer heartbeat"):
        await guard.lookup(tenant_of("k"), {RuleType.EMAIL: ["a@x.io"]})
    await memory.set_heartbeat({0: time.time()})
    fresh = guarded(from_sources({}, env), memory)
    assert await fresh.lookup(tenant_of("k"), {RuleType.EMAIL: ["a@x.io"]}) == {}
