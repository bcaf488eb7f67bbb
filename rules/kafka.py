"""Kafka connection options and topic set-up, shared by the publisher and the consumer.

aiokafka ships no type hints, so its objects arrive as `Any`; the Protocols below say what we
use of them (tests/test_kafka.py holds them to aiokafka's real classes).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypedDict

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError, for_code
from aiokafka.helpers import create_ssl_context

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 8 * 1024 * 1024
"""Room for a full event (MAX_VALUES_PER_CHANGE long values) uncompressed; broker default 1 MB."""

DELIVERY_TIMEOUT_MS = 120_000
"""How long a publisher's send may wait for a leader (Java's delivery.timeout.ms default).
aiokafka fails a batch whose partition has had no leader for request_timeout_ms (default
40 s), idempotent or not: a broker restart of 45 s aborted `rules import` with
LeaderNotAvailableError."""

TOPIC_CONFIG = {
    "cleanup.policy": "delete",
    "retention.ms": "-1",
    "retention.bytes": "-1",
    "max.message.bytes": str(MAX_MESSAGE_BYTES),
}
"""The topic is the source of truth: a store is rebuilt by replaying it from offset 0."""


Header = tuple[str, bytes]
"""A Kafka record header as aiokafka passes it: name and raw value."""


class Record(Protocol):
    """The fields of aiokafka's ConsumerRecord we read (aiokafka ships no type hints).

    Key and value are None when the wire record has none; decoding rejects that.
    """

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[Header]: ...


class RecordMetadata(Protocol):
    """Where the broker put a sent record (aiokafka's RecordMetadata, a named tuple)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...


class Producer(Protocol):
    """The calls we make on an AIOKafkaProducer."""

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
        *,
        headers: Sequence[Header] | None = None,
    ) -> asyncio.Future[RecordMetadata]: ...
    async def partitions_for(self, topic: str) -> set[int]: ...
    async def send_and_wait(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        *,
        headers: Sequence[Header] | None = None,
    ) -> RecordMetadata: ...


class PartitionInfo(TypedDict):
    """One partition in a describe-topics answer (fields we read)."""

    partition: int


class TopicInfo(TypedDict):
    """One topic in a describe-topics answer (fields we read)."""

    error_code: int
    topic: str
    partitions: list[PartitionInfo]


class ClusterInfo(TypedDict):
    """A describe-cluster answer (fields we read)."""

    brokers: list[dict[str, object]]


ConfigEntry = tuple[str, str | None, *tuple[object, ...]]
"""(name, value, read_only, source, sensitive, ...) in a describe-configs answer."""
ConfigResult = tuple[int, str | None, int, str, Sequence[ConfigEntry]]
"""(error_code, error_message, resource_type, resource_name, entries) for one resource."""


class CreateTopicsResponse(Protocol):
    """(name, error_code[, error_message]) per topic, by protocol version."""

    @property
    def topic_errors(self) -> Sequence[tuple[str, int, *tuple[str | None, ...]]]: ...


class DescribeConfigsResponse(Protocol):
    """One broker's answer to describe-configs."""

    @property
    def resources(self) -> Sequence[ConfigResult]: ...


class Admin(Protocol):
    """The calls we make on an AIOKafkaAdminClient."""

    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def list_topics(self) -> list[str]: ...
    async def describe_topics(self, topics: list[str]) -> list[TopicInfo]: ...
    async def describe_cluster(self) -> ClusterInfo: ...
    async def create_topics(self, new_topics: list[NewTopic]) -> CreateTopicsResponse: ...
    async def describe_configs(
        self, config_resources: list[ConfigResource]
    ) -> list[DescribeConfigsResponse]: ...


class TopicSetupError(RuntimeError):
    """The rule topic is missing and could not be created (permissions, broker error)."""


@dataclass(frozen=True, slots=True)
class KafkaOptions:
    """How to reach the brokers; the same for producer, consumer and admin clients."""

    bootstrap: str
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_cafile: str | None = None

    def client_kwargs(self) -> dict[str, object]:
        """Keyword arguments every aiokafka client takes."""
        kwargs: dict[str, object] = {
            "bootstrap_servers": self.bootstrap,
            "security_protocol": self.security_protocol,
        }
        if self.security_protocol in ("SSL", "SASL_SSL"):
            kwargs["ssl_context"] = create_ssl_context(cafile=self.ssl_cafile)
        if self.security_protocol.startswith("SASL"):
            kwargs["sasl_mechanism"] = self.sasl_mechanism
            kwargs["sasl_plain_username"] = self.sasl_username
            kwargs["sasl_plain_password"] = self.sasl_password
        return kwargs


def make_producer(
    options: KafkaOptions, client_id: str, *, linger_ms: int = 0, timeout_ms: int = 40_000
) -> Producer:
    """The one producer configuration (publisher and dead-letter queue): acks=all and
    idempotent, so a retry never duplicates or reorders an event; room for a full event.

    `timeout_ms` bounds a send (aiokafka's request_timeout_ms, default 40 s): the publisher
    passes DELIVERY_TIMEOUT_MS; the dead-letter producer keeps the default, because the
    consumer retries a failed dead letter itself and must not look stalled meanwhile."""
    producer: Producer = AIOKafkaProducer(
        acks="all",
        enable_idempotence=True,
        compression_type="gzip",
        linger_ms=linger_ms,
        max_request_size=MAX_MESSAGE_BYTES,
        request_timeout_ms=timeout_ms,
        client_id=client_id,
        **options.client_kwargs(),
    )
    return producer


def make_admin(options: KafkaOptions) -> Admin:
    """An admin client (not started) for topic set-up and metadata."""
    admin: Admin = AIOKafkaAdminClient(client_id="denyproxy-admin", **options.client_kwargs())
    return admin


def dead_letter_topic(topic: str) -> str:
    """Where records the consumer cannot read go, next to the topic they came from."""
    return f"{topic}.dlq"


async def ensure_topic(
    options: KafkaOptions, topic: str, partitions: int = 4, *, dead_letters: bool = True,
    warn_retention: bool = True,
) -> list[str]:
    """Create `topic` and (unless `dead_letters` is false: a publisher's) its dead-letter topic
    if missing, with unlimited retention.

    Returns the names it created. An existing topic is left alone, with a warning if its
    retention is limited (a rebuild after a Redis flush would then miss expired events) unless
    `warn_retention` is false (a consumer keeping the changelog rebuilds from that).
    """
    admin = make_admin(options)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = (topic, dead_letter_topic(topic)) if dead_letters else (topic,)
        missing = [t for t in wanted if t not in existing]
        if missing:
            await _create(admin, missing, partitions)
        if topic in existing and warn_retention:
            await _warn_on_retention(admin, topic)
        return missing
    finally:
        await admin.close()


async def partition_ids(options: KafkaOptions, topic: str) -> list[int]:
    """The partitions of a topic, from fresh metadata (a consumer only knows what it reads)."""
    admin = make_admin(options)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    if described["error_code"]:
        raise for_code(described["error_code"])(f"cannot describe Kafka topic {topic}")
    return sorted(p["partition"] for p in described["partitions"])


async def _create(admin: Admin, names: list[str], partitions: int) -> None:
    brokers = len((await admin.describe_cluster())["brokers"])
    replicas = min(3, max(brokers, 1))
    config = dict(TOPIC_CONFIG)
    if replicas >= 3:
        config["min.insync.replicas"] = "2"
    response = await admin.create_topics(
        [NewTopic(n, partitions, replicas, topic_configs=config) for n in names]
    )
    for name, code, *message in response.topic_errors:
        if code and for_code(code) is not TopicAlreadyExistsError:
            detail = message[0] if message and message[0] else for_code(code).__name__
            raise TopicSetupError(f"cannot create Kafka topic {name}: {detail}")
        if not code:
            log.info(
                "created Kafka topic %s (%d partitions, retention unlimited)", name, partitions
            )


async def _warn_on_retention(admin: Admin, topic: str) -> None:
    try:
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic, configs={"retention.ms": None})]
        )
        entries = responses[0].resources[0][4]
        retention = next((e[1] for e in entries if e[0] == "retention.ms"), "-1")
    except Exception as exc:  # a courtesy check; never blocks start-up
        log.debug("could not read retention of %s: %s", topic, exc)
        return
    if retention != "-1":
        log.warning(
            "Kafka topic %s has retention.ms=%s: a rebuild after a Redis flush misses expired "
            "events; set retention.ms=-1",
            topic,
            retention,
        )
