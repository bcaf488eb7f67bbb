"""rules/publisher.py against the real broker: what a published event looks like on the topic."""

from __future__ import annotations

import inspect
import re
import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from rules import events
from rules.kafka import DELIVERY_TIMEOUT_MS, KafkaOptions, ensure_topic
from rules.model import MAX_VALUES_PER_CHANGE, RuleType, tenant_of
from rules.publisher import RulePublisher
from tests.services import KafkaBroker

TENANT = tenant_of("om_publisher_key")


@pytest.fixture
def topic() -> str:
    return f"pub-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def publisher(kafka_bootstrap: str, topic: str) -> AsyncIterator[RulePublisher]:
    options = KafkaOptions(kafka_bootstrap)
    await ensure_topic(options, topic)
    async with RulePublisher(options, topic, region="GB", source="tests") as publisher:
        yield publisher


async def read_back(bootstrap: str, topic: str, partition: int, offset: int) -> tuple[bytes, bytes]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, offset)
        record = await consumer.getone()
        assert record.key is not None and record.value is not None
        return record.key, record.value
    finally:
        await consumer.stop()


async def test_published_event_is_keyed_by_tenant_normalised_and_decodable(
    publisher: RulePublisher, kafka_bootstrap: str, topic: str
) -> None:
    meta = await publisher.publish("add", TENANT, "phone", ["020 7946 0018", "+44 20 7946 0018"])
    key, value = await read_back(kafka_bootstrap, topic, meta.partition, meta.offset)
    assert key == events.key_of(TENANT)
    event = events.decode_event(value, "US")
    assert (event.change.op, event.change.tenant, event.change.type) == (
        "add", TENANT, RuleType.PHONE)
    assert event.change.values == ("+442079460018",)  # GB region, duplicates dropped
    assert event.source == "tests"


async def test_one_tenant_always_lands_on_one_partition(publisher: RulePublisher) -> None:
    metas = [await publisher.publish("add", TENANT, "email", [f"u{i}@acme.com"]) for i in range(5)]
    assert len({m.partition for m in metas}) == 1
    assert [m.offset for m in metas] == list(range(metas[0].offset, metas[0].offset + 5))


async def test_bad_values_and_too_many_values_are_refused_before_sending(
    publisher: RulePublisher,
) -> None:
    with pytest.raises(events.InvalidEventError) as info:
        await publisher.publish("add", TENANT, "email", ["not an email"])
    assert info.value.code == "values"
    with pytest.raises(events.InvalidEventError) as info:
        await publisher.publish("add", TENANT, "email", ["a@b.co"] * (MAX_VALUES_PER_CHANGE + 1))
    assert info.value.code == "too_many_values"
    first = await publisher.publish("add", TENANT, "email", ["a@b.co"])
    second = await publisher.publish("add", TENANT, "email", ["c@d.co"])
    assert second.offset == first.offset + 1, "nothing was sent by the refused calls"


async def test_batches_on_the_broker_are_idempotent_and_gzip(
    kafka_broker: KafkaBroker, topic: str
) -> None:
    """What the broker stored: a producer id with sequence numbers (idempotence), gzip."""
    options = KafkaOptions(kafka_broker.bootstrap)
    await ensure_topic(options, topic)
    async with RulePublisher(options, topic, region="US") as publisher:
        metas = [await publisher.publish("add", TENANT, "email", [f"u{i}@acme.com"])
                 for i in range(3)]
    dump = kafka_broker.dump_log(topic, metas[0].partition)
    batches = [line for line in dump.splitlines() if line.startswith("baseOffset:")]
    assert len(batches) == 3, dump
    producer_ids = {int(m) for m in re.findall(r"producerId: (-?\d+)", "\n".join(batches))}
    assert len(producer_ids) == 1 and min(producer_ids) >= 0, dump  # -1 = not idempotent
    sequences = [int(m) for m in re.findall(r"baseSequence: (-?\d+)", "\n".join(batches))]
    assert sequences == [0, 1, 2], dump
    assert all("compresscodec: gzip" in line for line in batches), dump


def test_by_default_a_send_waits_out_a_broker_restart_of_45_seconds() -> None:
    """A send waits `delivery_timeout_ms` for the broker (tests/test_kafka_faults.py proves
    that with 2 s against a real outage); by default DELIVERY_TIMEOUT_MS, longer than the 45 s
    broker restart that aiokafka's default 40 s turned into an aborted `rules import`."""
    default = inspect.signature(RulePublisher).parameters["delivery_timeout_ms"].default
    assert default == DELIVERY_TIMEOUT_MS and DELIVERY_TIMEOUT_MS > 45_000
