"""Proves the fixtures hand out a real Redis and a real Kafka broker (not mocks)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.services import RedisServer


def _redis(url: str) -> aioredis.Redis:
    """Client that fails fast instead of retrying, so a stopped server shows up immediately."""
    return aioredis.from_url(url, retry=Retry(NoBackoff(), 0), socket_connect_timeout=1)


async def test_redis_set_get_roundtrip(redis_url: str) -> None:
    client = _redis(redis_url)
    key = f"harness:{uuid.uuid4().hex}"
    try:
        assert await client.set(key, "value", ex=60)
        assert await client.get(key) == b"value"
        info = await client.info("server")
        assert "redis_version" in info
    finally:
        await client.delete(key)
        await client.aclose()


def is_running(server: RedisServer) -> bool:
    """A call, not the property: mypy would carry `not running` across stop() and start()."""
    return server.running


async def test_redis_server_stop_and_start(redis_server: RedisServer) -> None:
    key = f"harness:{uuid.uuid4().hex}"
    client = _redis(redis_server.url)
    try:
        await client.set(key, "before-restart")
        redis_server.stop()
        assert not is_running(redis_server)
        with pytest.raises(RedisConnectionError):
            await client.ping()

        redis_server.start()
        assert is_running(redis_server)
        assert await client.ping()
        assert await client.get(key) is None, "restart must come back empty (no persistence)"
    finally:
        redis_server.start()  # leave the shared session server up for later tests
        await client.aclose()


async def test_kafka_create_produce_consume_commit(kafka_bootstrap: str) -> None:
    topic = f"harness-{uuid.uuid4().hex[:12]}"
    group = f"harness-group-{uuid.uuid4().hex[:12]}"
    sent = {f"key-{i}".encode(): f"value-{i}".encode() for i in range(20)}

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
        for _ in range(50):  # metadata reaches the broker's cache shortly after creation
            if topic in await admin.list_topics():
                break
            await asyncio.sleep(0.1)
        assert topic in await admin.list_topics()
    finally:
        await admin.close()

    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap, acks="all", enable_idempotence=True
    )
    await producer.start()
    try:
        for k, v in sent.items():
            await producer.send_and_wait(topic, v, key=k)
    finally:
        await producer.stop()

    received = await _consume_and_commit(kafka_bootstrap, topic, group, len(sent))
    assert received == sent

    # A fresh member of the same group resumes after the committed offsets: nothing left to read.
    leftover = await _consume_and_commit(kafka_bootstrap, topic, group, 0, wait_s=2.0)
    assert leftover == {}


async def _consume_and_commit(
    bootstrap: str, topic: str, group: str, expected: int, wait_s: float = 30.0
) -> dict[bytes, bytes]:
    """Read `expected` records with a group consumer, commit manually, check the commit stuck."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    received: dict[bytes, bytes] = {}
    try:
        deadline = asyncio.get_running_loop().time() + wait_s
        while asyncio.get_running_loop().time() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                received.update((r.key, r.value) for r in records)
            if expected and len(received) >= expected:
                break
        await consumer.commit()
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        assert parts, "consumer never saw the topic's partitions"
        ends = await consumer.end_offsets(parts)
        for tp in parts:
            assert await consumer.committed(tp) == ends[tp]
    finally:
        await consumer.stop()
    return received
