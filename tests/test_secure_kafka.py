"""Kafka over SASL_SSL (SCRAM-SHA-512) with ACLs, against the real broker: `rules add|import`,
`consume` and `serve` work with least-privilege principals; a wrong password or a missing ACL
ends the command with one line naming what is missing, and the proxy never becomes ready."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest

from proxy.settings import Settings
from rules.model import tenant_of
from tests.harness import eventually, fake_upstream, running_proxy
from tests.secure_fixtures import RULE_TOPIC, SecureRedis
from tests.secure_services import SCRAM, SecureKafkaBroker
from tests.services import free_port
from tests.test_suppression import emails, task_result

pytestmark = pytest.mark.timeout(180)


def kafka_args(broker: SecureKafkaBroker, user: str) -> list[str]:
    assert broker.tls is not None
    return ["--kafka", broker.bootstrap, "--kafka-security-protocol", "SASL_SSL",
            "--kafka-sasl-mechanism", SCRAM, "--kafka-sasl-username", user,
            "--kafka-ssl-cafile", str(broker.tls.ca)]


def cli_env(password: str, redis_url: str | None = None) -> dict[str, str]:
    """Secrets through the environment, as the README recommends (never in argv)."""
    env = {**os.environ, "DENYPROXY_KAFKA_SASL_PASSWORD": password, "DENYPROXY_LOG_FORMAT": "json"}
    return env | ({"DENYPROXY_REDIS": redis_url} if redis_url else {})


async def denyproxy(*args: str, env: dict[str, str]) -> tuple[int, list[str], str]:
    """Run the CLI to its end: exit code, stderr lines, stdout."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "proxy.cli", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    return proc.returncode or 0, err.decode().splitlines(), out.decode()


@asynccontextmanager
async def consuming(broker: SecureKafkaBroker, redis: SecureRedis) -> AsyncIterator[None]:
    """`denyproxy consume` as the consumer principal with the consumer's Redis user."""
    admin_port = str(free_port())
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "proxy.cli", "consume", *kafka_args(broker, "consumer"),
        "--admin-listen", f"127.0.0.1:{admin_port}",
        env=cli_env(broker.users["consumer"], redis.url("consumer")),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield
    finally:
        if proc.returncode is None:
            proc.terminate()
        _, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()


async def filtered(client: aiohttp.ClientSession, proxy_url: str, api_key: str) -> bool:
    r, doc = await task_result(client, proxy_url, api_key)
    return r.status == 200 and emails(doc)[0] is None and emails(doc)[3] is None


async def test_secured_deployment_publish_consume_serve(
    secure_kafka: SecureKafkaBroker, secure_redis: SecureRedis, tmp_path: Path
) -> None:
    """rules add + import (publisher) → consume (consumer, Redis write user) → serve
    --no-consumer (Redis read user) filters; everything over TLS with SCRAM logins."""
    api_key = f"om_{uuid.uuid4().hex}"
    publisher_env = cli_env(secure_kafka.users["publisher"])
    code, err, out = await denyproxy(
        "rules", "add", *kafka_args(secure_kafka, "publisher"), "--tenant", tenant_of(api_key),
        "--type", "email", "jane.doe@acme.com", env=publisher_env)
    assert (code, err) == (0, []) and "published add of 1 email" in out
    csv = tmp_path / "optouts.csv"
    csv.write_text("email\nalan.turing@acme.com\n")
    code, err, out = await denyproxy(
        "rules", "import", str(csv), *kafka_args(secure_kafka, "publisher"),
        "--tenant", tenant_of(api_key), "--no-progress", env=publisher_env)
    assert code == 0, err
    settings = Settings(
        redis=secure_redis.url("proxy"), kafka=secure_kafka.bootstrap, consumer=False,
        kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism=SCRAM,
        kafka_sasl_username="publisher", kafka_sasl_password=secure_kafka.users["publisher"],
        kafka_ssl_cafile=str(secure_kafka.options("publisher").ssl_cafile),
    )
    async with consuming(secure_kafka, secure_redis), fake_upstream() as (_, upstream), \
            running_proxy(settings.with_(upstream=upstream)) as proxy, \
            aiohttp.ClientSession() as client:
        await eventually(lambda: filtered(client, proxy.url, api_key),
                         "rules published over SASL_SSL enforced by the proxy")


async def test_serve_runs_its_consumer_over_sasl_ssl(
    secure_kafka: SecureKafkaBroker, secure_redis: SecureRedis
) -> None:
    api_key = f"om_{uuid.uuid4().hex}"
    options = secure_kafka.options("consumer")
    settings = Settings(
        redis=secure_redis.url("consumer"), kafka=secure_kafka.bootstrap,
        kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism=SCRAM,
        kafka_sasl_username="consumer", kafka_sasl_password=options.sasl_password,
        kafka_ssl_cafile=options.ssl_cafile,
    )
    async with fake_upstream() as (_, upstream), \
            running_proxy(settings.with_(upstream=upstream)) as proxy, \
            aiohttp.ClientSession() as client:
        for value in ("jane.doe@acme.com", "alan.turing@acme.com"):
            code, err, _ = await denyproxy(
                "rules", "add", *kafka_args(secure_kafka, "publisher"),
                "--tenant", tenant_of(api_key),
                "--type", "email", value, env=cli_env(secure_kafka.users["publisher"]))
            assert code == 0, err
        await eventually(lambda: filtered(client, proxy.url, api_key),
                         "rules consumed in-process over SASL_SSL")
        async with client.get(f"{proxy.admin}/readyz") as ready:
            assert ready.status == 200


@pytest.mark.parametrize(
    ("command", "user", "password", "extra", "line"),
    [
        ("add", "publisher", "wrong", [], "denyproxy rules: failed: kafka: authentication "
         f"failed for user publisher (SASL {SCRAM})"),
        ("add", "consumer", None, [], "denyproxy rules: failed: kafka: not authorised to WRITE "
         f"topic {RULE_TOPIC} — ACL missing for User:consumer"),
        ("import", "stranger", None, [], "denyproxy rules: failed: kafka: not authorised to "
         f"WRITE topic {RULE_TOPIC} — ACL missing for User:stranger"),
        ("consume", "consumer", "wrong", [], "denyproxy: kafka: authentication failed for "
         f"user consumer (SASL {SCRAM})"),
        ("consume", "publisher", None, [], "denyproxy: kafka: not authorised to WRITE topic "
         f"{RULE_TOPIC}.dlq — ACL missing for User:publisher"),
        ("consume", "stranger", None, [], "denyproxy: kafka: not authorised to READ topic "
         f"{RULE_TOPIC} — ACL missing for User:stranger"),
        ("consume", "consumer", None, ["--group", "not-ours"], "denyproxy: kafka: not "
         "authorised to READ group not-ours — ACL missing for User:consumer"),
        ("serve", "consumer", "wrong", [], "denyproxy: kafka: authentication failed for "
         f"user consumer (SASL {SCRAM})"),
    ],
)
async def test_refusal_is_one_line_naming_what_is_missing(
    secure_kafka: SecureKafkaBroker, secure_redis: SecureRedis, tmp_path: Path,
    command: str, user: str, password: str | None, extra: list[str], line: str,
) -> None:
    env = cli_env(password or secure_kafka.users[user], secure_redis.url("consumer"))
    admin = f"127.0.0.1:{free_port()}"
    argv = {
        "add": ["rules", "add", "--global", "--type", "email", "x@acme.com"],
        "import": ["rules", "import", str(tmp_path / "rules.csv"), "--global", "--no-progress"],
        "consume": ["consume", "--admin-listen", admin],
        "serve": ["serve", "--listen", f"127.0.0.1:{free_port()}",
                  "--admin-listen", admin],
    }[command]
    (tmp_path / "rules.csv").write_text("x@acme.com\n")
    code, err, _ = await denyproxy(*argv, *kafka_args(secure_kafka, user), *extra, env=env)
    assert (code, err) == (1, [line])
