"""`denyproxy doctor`, Kafka: auth, the rule topic and its settings, the DLQ, the clock.

Clock skew: Kafka shows a broker's clock only as a record's LogAppendTime. doctor produces one
probe record (empty value, header `denyproxy-doctor: clock-probe`) to the dead-letter topic,
which nothing replays, and compares the timestamp the broker returns with the local clock
read before and after the send (skew = broker time - midpoint; its error is at most half the
round trip). A DLQ with `message.timestamp.type=CreateTime` (Kafka's default) echoes the
producer's own clock, so the skew cannot be measured: that is a warning, not a failure.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError, for_code

from proxy.doctor import Clock, Finding
from proxy.settings import Settings, SettingsError, kafka_options
from rules.changelog import changelog_topic
from rules.kafka import TOPIC_CONFIG, KafkaOptions, dead_letter_topic

MAX_SKEW = 5.0
"""Seconds; beyond this the publish-to-applied latency (event ts vs consumer clock) lies."""
TIMEOUT = 10.0
CHECKED_CONFIG = ("cleanup.policy", "retention.ms", "retention.bytes")
LOG_APPEND_TIME = 1
COMPACTED = {"cleanup.policy": "compact"}
"""The changelog keeps each rule's last record: compaction, never deletion by age."""


async def kafka_findings(settings: Settings, clock: Clock) -> AsyncIterator[Finding]:
    if not settings.kafka:
        yield Finding("skip", "kafka", "not configured: no rule events")
        return
    try:
        options = kafka_options(settings)
    except SettingsError as exc:
        yield Finding("FAIL", "kafka", str(exc))
        return
    admin = AIOKafkaAdminClient(client_id="denyproxy-doctor", request_timeout_ms=5000,
                                **options.client_kwargs())
    try:
        yield await _connect(admin, options)
        for topic in (settings.topic, dead_letter_topic(settings.topic)):
            yield await _topic(admin, topic)
            yield await _topic_config(admin, topic)
        if settings.changelog:  # rules/EVENTS.md "The changelog, generations and rebuilds"
            yield await _topic(admin, changelog_topic(settings.topic))
            yield await _topic_config(admin, changelog_topic(settings.topic), COMPACTED)
    finally:
        await admin.close()
    yield await clock_finding(options, dead_letter_topic(settings.topic), clock)


async def _connect(admin: AIOKafkaAdminClient, options: KafkaOptions) -> Finding:
    auth = options.security_protocol
    if options.sasl_mechanism:
        auth += f" {options.sasl_mechanism} as {options.sasl_username}"
    try:
        async with asyncio.timeout(TIMEOUT):
            await admin.start()
            brokers = len((await admin.describe_cluster())["brokers"])
    except (KafkaError, OSError, TimeoutError) as exc:
        return Finding("FAIL", "kafka", f"{options.bootstrap} ({auth}): {_why(exc)}")
    return Finding("ok", "kafka", f"{options.bootstrap} reachable ({auth}), {brokers} broker(s)")


async def _topic(admin: AIOKafkaAdminClient, topic: str) -> Finding:
    try:
        async with asyncio.timeout(TIMEOUT):
            (described,) = await admin.describe_topics([topic])
    except (KafkaError, OSError, TimeoutError) as exc:
        return Finding("FAIL", f"topic {topic}", f"cannot describe it ({_why(exc)})")
    if code := described["error_code"]:
        return Finding("FAIL", f"topic {topic}", _topic_error(code))
    partitions = len(described["partitions"])
    return Finding("ok", f"topic {topic}", f"exists, {partitions} partition(s)")


def _topic_error(code: int) -> str:
    name = for_code(code).__name__
    if name == "UnknownTopicOrPartitionError":
        return ("does not exist; create it as rules/EVENTS.md shows (serve creates it when "
                "its principal may)")
    if name == "TopicAuthorizationFailedError":
        return "this principal may not DESCRIBE it (Kafka ACLs)"
    return str(name)


async def _topic_config(
    admin: AIOKafkaAdminClient, topic: str, wanted: dict[str, str] | None = None
) -> Finding:
    """retention and cleanup as rules/EVENTS.md documents: the topic is the source of truth."""
    wanted = wanted or {name: TOPIC_CONFIG[name] for name in CHECKED_CONFIG}
    resource = ConfigResource(ConfigResourceType.TOPIC, topic, configs=dict.fromkeys(wanted))
    try:
        async with asyncio.timeout(TIMEOUT):
            (response,) = await admin.describe_configs([resource])
        error_code, _, _, _, entries = response.resources[0]
    except (KafkaError, OSError, TimeoutError, ValueError) as exc:
        return Finding("FAIL", f"topic {topic}", f"cannot read its config ({_why(exc)})")
    if error_code:
        why = for_code(error_code).__name__
        return Finding("FAIL", f"topic {topic}", f"cannot read its config ({why})")
    actual = {entry[0]: entry[1] for entry in entries}
    wrong = [f"{k}={actual.get(k)} (want {v})" for k, v in wanted.items() if actual.get(k) != v]
    if wrong:
        return Finding("FAIL", f"topic {topic}", "limited or compacted: " + ", ".join(wrong)
                       + "; a rebuild would miss rules (rules/EVENTS.md)")
    return Finding("ok", f"topic {topic}", ", ".join(f"{k}={v}" for k, v in wanted.items()))


async def clock_finding(options: KafkaOptions, topic: str, clock: Clock) -> Finding:
    producer = AIOKafkaProducer(client_id="denyproxy-doctor", acks=1, request_timeout_ms=5000,
                                **options.client_kwargs())
    try:
        async with asyncio.timeout(TIMEOUT):
            await producer.start()
            before = clock()
            meta = await producer.send_and_wait(
                topic, b"", key=b"denyproxy-doctor",
                headers=[("denyproxy-doctor", b"clock-probe")],
            )
            after = clock()
    except (KafkaError, OSError, TimeoutError) as exc:
        return Finding("warn", "clock", f"cannot produce a probe to {topic} ({_why(exc)})")
    finally:
        await producer.stop()
    return _skew(meta, topic, before, after)


def _skew(meta: Any, topic: str, before: float, after: float) -> Finding:
    if meta.timestamp_type != LOG_APPEND_TIME:
        return Finding("warn", "clock", f"{topic} uses CreateTime: the broker's clock cannot be "
                       "read (set message.timestamp.type=LogAppendTime on it to measure skew)")
    skew = meta.timestamp / 1000 - (before + after) / 2
    bound = (after - before) / 2
    detail = f"local clock is {abs(skew):.3f} s {'behind' if skew > 0 else 'ahead of'} the broker"
    detail += f" (±{bound:.3f} s)"
    if abs(skew) - bound > MAX_SKEW:
        return Finding("FAIL", "clock", f"{detail}: more than {MAX_SKEW:g} s; fix NTP")
    return Finding("ok", "clock", detail)


def _why(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
