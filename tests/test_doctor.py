"""`denyproxy doctor` against real services: each misconfiguration it names stops it with one
FAIL line and exit code 1; a sound set-up passes; no secret is ever printed."""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from proxy import doctor
from proxy.cli import main
from proxy.settings import Settings
from rules.kafka import TOPIC_CONFIG, KafkaOptions, dead_letter_topic, ensure_topic
from rules.store.keys import ready_key
from tests.harness import eventually, fake_upstream
from tests.services import RedisServer, free_port
from tests.tls_certs import CertificateAuthority

DLQ_CONFIG = {**TOPIC_CONFIG, "message.timestamp.type": "LogAppendTime"}


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, object]:
    d = tmp_path_factory.mktemp("doctor-tls")
    ca = CertificateAuthority.create(d)
    return str(ca.cert), ca.issue(d, "127.0.0.1", "localhost")


@pytest.fixture
async def upstream(certs) -> AsyncIterator[str]:
    async with fake_upstream(ssl_context=certs[1].server_context()) as (_, url):
        yield url


async def create_topics(bootstrap: str, topic: str, **config: str) -> None:
    """The rule topic (config overrides applied) and a LogAppendTime DLQ."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        response = await admin.create_topics([
            NewTopic(topic, 1, 1, topic_configs={**TOPIC_CONFIG, **config}),
            NewTopic(dead_letter_topic(topic), 1, 1, topic_configs=DLQ_CONFIG),
        ])
        assert [error[1] for error in response.topic_errors] == [0, 0], response
        await eventually(lambda: _described(admin, topic), f"topics {topic}(.dlq) described")
    finally:
        await admin.close()


async def _described(admin: AIOKafkaAdminClient, topic: str) -> bool:
    described = await admin.describe_topics([topic, dead_letter_topic(topic)])
    return all(not d["error_code"] and d["partitions"] for d in described)


@pytest.fixture
async def sound(upstream, certs, redis_url, kafka_bootstrap) -> Settings:
    """A set-up doctor should pass: TLS upstream, Redis with the marker, topics as documented."""
    topic = f"doctor-{uuid.uuid4().hex[:8]}"
    await create_topics(kafka_bootstrap, topic)
    client = aioredis.Redis.from_url(redis_url)
    await client.set(ready_key(topic), "1")
    await client.aclose()
    return Settings(upstream=upstream, upstream_ca_file=certs[0], redis=redis_url,
                    kafka=kafka_bootstrap, topic=topic)


async def diagnose(settings: Settings, clock: doctor.Clock = time.time) -> tuple[int, list[str]]:
    out = io.StringIO()
    code = await doctor.run(settings, out, clock)
    return code, out.getvalue().splitlines()


def statuses(lines: list[str]) -> list[tuple[str, str]]:
    return [(line.split()[0], line.split(None, 1)[1].split(":")[0]) for line in lines]


async def test_a_sound_setup_passes_every_check_in_order(sound: Settings) -> None:
    code, lines = await diagnose(sound)
    topic, dlq = sound.topic, dead_letter_topic(sound.topic)
    assert statuses(lines) == [
        ("ok", "upstream"), ("ok", "redis"), ("ok", "redis ACL"), ("ok", "store cache"),
        ("ok", "rule set"),
        ("ok", "kafka"), ("ok", f"topic {topic}"), ("ok", f"topic {topic}"),
        ("ok", f"topic {dlq}"), ("ok", f"topic {dlq}"), ("ok", "clock"),
    ], lines
    assert code == 0
    assert "TLS verified" in lines[0]


async def test_upstream_unreachable(sound: Settings) -> None:
    code, lines = await diagnose(sound.with_(upstream=f"https://127.0.0.1:{free_port()}"))
    assert code == 1
    assert len(lines) == 1 and lines[0].startswith("FAIL upstream:") and "unreachable" in lines[0]


async def test_upstream_certificate_not_trusted(sound: Settings) -> None:
    code, lines = await diagnose(sound.with_(upstream_ca_file=None))
    assert code == 1
    assert lines == [lines[0]] and "upstream TLS certificate not trusted" in lines[0]


async def test_redis_down(sound: Settings) -> None:
    code, lines = await diagnose(sound.with_(redis=f"redis://127.0.0.1:{free_port()}/0"))
    assert code == 1
    assert lines[-1].startswith("FAIL redis: unreachable (ConnectionError")


async def test_redis_acl_that_cannot_write_fails_the_consumer_role_only(
    sound: Settings, redis_server: RedisServer
) -> None:
    user, password = f"reader-{uuid.uuid4().hex[:6]}", "reader-pw-" + uuid.uuid4().hex
    admin = aioredis.Redis.from_url(redis_server.url)
    await admin.acl_setuser(user, enabled=True, passwords=[f"+{password}"],
                            keys=["denyproxy:*"], commands=["-@all", "+smismember", "+get",
                                                            "+hgetall", "+ping", "+zscore",
                                                            "+exists", "+evalsha_ro",
                                                            "+script|load",
                                                            "+zrange", "+zrevrange", "+zscan",
                                                            "+zcard", "+zlexcount", "+eval",
                                                            "+smembers", "+scard"])
    try:
        reader = sound.with_(redis=f"redis://{user}:{password}@127.0.0.1:{redis_server.port}/0")
        code, lines = await diagnose(reader.with_(consumer=False))
        assert code == 0, lines
        code, lines = await diagnose(reader)  # serve with the in-process consumer writes
        assert code == 1
        assert lines[-1].startswith("FAIL redis ACL: this user may not run SADD")
        assert all(password not in line for line in lines)
    finally:
        await admin.acl_deluser(user)
        await admin.aclose()


PROXY_READS = ["-@all", "+smismember", "+get", "+hgetall", "+zscore", "+exists", "+evalsha_ro",
               "+script|load", "+zrange", "+zrevrange", "+zscan", "+zcard", "+zlexcount",
               "+eval", "+smembers", "+scard"]


@pytest.mark.parametrize(("extra", "line"), [
    ([], "warn store cache: off, every lookup reads Redis (CLIENT refused: NOPERM); the ACL "
         "needs +client|tracking +ping (see docs/redis.md)"),
    (["+client|tracking"], "warn store cache: on, but PING refused: this process's own rule "
                           "writes may answer before its lookups see them; the ACL needs "
                           "+client|tracking +ping (see docs/redis.md)"),
    (["+client|tracking", "+ping"], "ok   store cache: client tracking on: repeated lookups "
                                    "from memory"),
])
async def test_an_acl_without_client_tracking_warns_that_the_store_cache_is_off(
    sound: Settings, redis_server: RedisServer, extra: list[str], line: str
) -> None:
    user, password = f"cache-{uuid.uuid4().hex[:6]}", "cache-pw-" + uuid.uuid4().hex
    admin = aioredis.Redis.from_url(redis_server.url)
    await admin.acl_setuser(user, enabled=True, passwords=[f"+{password}"],
                            keys=["denyproxy:*"], commands=[*PROXY_READS, *extra])
    try:
        reader = sound.with_(redis=f"redis://{user}:{password}@127.0.0.1:{redis_server.port}/0",
                             consumer=False)
        code, lines = await diagnose(reader)
        assert code == 0, lines  # a warning, not a failure: lookups still read Redis
        assert [found for found in lines if "store cache" in found] == [line]
        code, lines = await diagnose(reader.with_(store_cache=False))
        assert code == 0 and not any("store cache" in found for found in lines)
    finally:
        await admin.acl_deluser(user)
        await admin.aclose()


async def test_marker_missing_fails_a_proxy_that_relies_on_another_consumer(
    sound: Settings, redis_url: str
) -> None:
    client = aioredis.Redis.from_url(redis_url)
    await client.delete(ready_key(sound.topic))
    await client.aclose()
    code, lines = await diagnose(sound.with_(consumer=False))
    assert code == 1
    assert lines[-1].startswith("FAIL rule set: not marked complete")
    code, lines = await diagnose(sound)  # its own consumer builds the rule set at start
    assert code == 0 and any(line.startswith("warn rule set:") for line in lines)


async def test_kafka_down(sound: Settings) -> None:
    code, lines = await diagnose(sound.with_(kafka=f"127.0.0.1:{free_port()}"))
    assert code == 1
    assert lines[-1].startswith("FAIL kafka:")


async def test_topic_missing(sound: Settings, redis_url: str) -> None:
    missing = f"doctor-missing-{uuid.uuid4().hex[:8]}"
    client = aioredis.Redis.from_url(redis_url)
    await client.set(ready_key(missing), "1")
    await client.aclose()
    code, lines = await diagnose(sound.with_(topic=missing))
    assert code == 1
    assert lines[-1] == f"FAIL topic {missing}: does not exist; create it as rules/EVENTS.md " \
                        "shows (serve creates it when its principal may)"


async def test_topic_with_limited_retention(sound: Settings, kafka_bootstrap: str) -> None:
    topic = f"doctor-limited-{uuid.uuid4().hex[:8]}"
    await create_topics(kafka_bootstrap, topic, **{"retention.ms": "604800000"})
    client = aioredis.Redis.from_url(sound.redis or "")
    await client.set(ready_key(topic), "1")
    await client.aclose()
    code, lines = await diagnose(sound.with_(topic=topic))
    assert code == 1
    assert lines[-1].startswith(f"FAIL topic {topic}: limited or compacted: "
                                "retention.ms=604800000 (want -1)")


async def test_clock_ahead_of_the_broker_fails(sound: Settings) -> None:
    code, lines = await diagnose(sound, clock=lambda: time.time() + 600)
    assert code == 1
    assert lines[-1].startswith("FAIL clock: local clock is ")
    skew = float(lines[-1].split()[5])
    assert 595 < skew < 605 and "s ahead of the broker" in lines[-1]


async def test_a_createtime_dlq_cannot_measure_the_clock_and_says_so(
    sound: Settings, kafka_bootstrap: str
) -> None:
    topic = f"doctor-ct-{uuid.uuid4().hex[:8]}"
    await ensure_topic(KafkaOptions(kafka_bootstrap), topic, partitions=1)  # Kafka's default
    settings = sound.with_(topic=topic, consumer=True)
    code, lines = await diagnose(settings)
    assert code == 0
    assert lines[-1].startswith(f"warn clock: {dead_letter_topic(topic)} uses CreateTime")


async def test_passwords_in_settings_never_appear_in_the_output(
    sound: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = "doctor-secret-" + uuid.uuid4().hex
    settings = sound.with_(
        redis=f"redis://default:{secret}@127.0.0.1:{free_port()}/0",
        kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_mechanism="PLAIN",
        kafka_sasl_username="doctor", kafka_sasl_password=secret,
    )
    code, lines = await diagnose(settings)
    assert code == 1 and all(secret not in line for line in lines)
    code, lines = await diagnose(settings.with_(redis=sound.redis))  # on to Kafka's SASL
    assert code == 1 and lines[-1].startswith("FAIL kafka:")
    assert all(secret not in line for line in lines)


def test_cli_doctor_reads_the_serve_settings_and_exits_1(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DENYPROXY_KAFKA_SASL_PASSWORD", "cli-secret-pw")
    code = main(["doctor", "--upstream", f"http://127.0.0.1:{free_port()}"])
    out = capsys.readouterr()
    assert code == 1
    assert out.out.startswith("FAIL upstream: http://127.0.0.1:")
    assert "cli-secret-pw" not in out.out + out.err
