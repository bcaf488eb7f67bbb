"""rules/kafka.py against the real broker: topics created for replay, client options."""

from __future__ import annotations

import dataclasses
import inspect
import logging
import ssl
import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.structs import ConsumerRecord
from aiokafka.structs import RecordMetadata as AioRecordMetadata

from rules.kafka import (
    MAX_MESSAGE_BYTES,
    Admin,
    KafkaOptions,
    Producer,
    Record,
    RecordMetadata,
    dead_letter_topic,
    ensure_topic,
    partition_ids,
)
from tests.harness import eventually


@pytest.fixture
def topic() -> str:
    return f"kafka-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def admin(kafka_bootstrap: str) -> AsyncIterator[Admin]:
    client: Admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await client.start()
    yield client
    await client.close()


async def topic_config(admin: Admin, name: str) -> dict[str, str | None]:
    [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
    return {entry[0]: entry[1] for entry in response.resources[0][4]}


async def test_topic_and_dead_letter_topic_are_created_with_unlimited_retention(
    kafka_bootstrap: str, topic: str, admin: Admin
) -> None:
    options = KafkaOptions(kafka_bootstrap)
    assert await ensure_topic(options, topic, partitions=3) == [topic, dead_letter_topic(topic)]
    assert await ensure_topic(options, topic) == [], "existing topics are left alone"
    for name in (topic, dead_letter_topic(topic)):
        config = await topic_config(admin, name)
        assert config["retention.ms"] == "-1" and config["retention.bytes"] == "-1"
        assert config["cleanup.policy"] == "delete"
        assert config["max.message.bytes"] == str(MAX_MESSAGE_BYTES)
    assert await partition_ids(options, topic) == [0, 1, 2]


async def test_existing_topic_with_limited_retention_is_kept_and_warned_about(
    kafka_bootstrap: str, topic: str, admin: Admin,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await admin.create_topics([NewTopic(topic, 2, 1, topic_configs={"retention.ms": "60000"})])

    async def listed() -> bool:  # creation returns before every broker's metadata shows it
        return topic in await admin.list_topics()

    await eventually(listed, f"topic {topic} to be listed")
    caplog.set_level(logging.WARNING, logger="rules.kafka")
    created = await ensure_topic(KafkaOptions(kafka_bootstrap), topic)
    assert created == [dead_letter_topic(topic)]
    assert (await topic_config(admin, topic))["retention.ms"] == "60000"  # not changed
    warnings = [r.getMessage() for r in caplog.records if r.name == "rules.kafka"]
    assert len(warnings) == 1 and "retention.ms=60000" in warnings[0]
    assert await partition_ids(KafkaOptions(kafka_bootstrap), topic) == [0, 1]


def test_plaintext_options_carry_only_the_bootstrap() -> None:
    assert KafkaOptions("k:9092").client_kwargs() == {
        "bootstrap_servers": "k:9092", "security_protocol": "PLAINTEXT"}


def test_sasl_ssl_options_carry_credentials_and_a_tls_context() -> None:
    options = KafkaOptions("k:9093", "SASL_SSL", "SCRAM-SHA-512", "user", "secret")
    kwargs = options.client_kwargs()
    assert isinstance(kwargs.pop("ssl_context"), ssl.SSLContext)
    assert kwargs == {
        "bootstrap_servers": "k:9093", "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": "user",
        "sasl_plain_password": "secret",
    }
    assert "secret" not in repr(options)


def test_dead_letter_topic_sits_next_to_its_topic() -> None:
    assert dead_letter_topic("denyproxy.rules") == "denyproxy.rules.dlq"


def members(protocol: type) -> set[str]:
    """What a Protocol of rules/kafka.py promises: its public methods and properties."""
    return {name for name in vars(protocol) if not name.startswith("_")}


def test_record_protocols_name_only_fields_aiokafka_records_have() -> None:
    """aiokafka ships no type hints, so mypy cannot hold our Protocols to it; this test does."""
    assert members(Record) <= {f.name for f in dataclasses.fields(ConsumerRecord)}
    assert members(RecordMetadata) <= set(AioRecordMetadata._fields)


@pytest.mark.parametrize(
    ("protocol", "client"), [(Producer, AIOKafkaProducer), (Admin, AIOKafkaAdminClient)]
)
def test_client_protocols_match_aiokafka_method_signatures(protocol: type, client: type) -> None:
    for name in members(protocol):
        ours = inspect.signature(getattr(protocol, name)).parameters
        theirs = inspect.signature(getattr(client, name)).parameters
        assert inspect.iscoroutinefunction(getattr(client, name)), name
        assert [p for p in theirs if p in ours] == list(ours), name  # same names, same order
