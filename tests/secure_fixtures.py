"""Session fixtures for the secured services (tests/secure_services.py): started once, only
when a test asks for them, so the plaintext suite pays nothing for them."""

from __future__ import annotations

import asyncio
import re
import secrets
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from rules.kafka import ensure_topic
from tests.secure_services import SecureKafkaBroker, TestCA, TlsRedisServer, least_privilege_acls
from tests.services import REPO_ROOT

RULE_TOPIC = "denyproxy.rules"
GROUP = "denyproxy"
REDIS_DOC = REPO_ROOT / "docs" / "redis.md"


def documented_acl_lines(doc: Path = REDIS_DOC) -> list[str]:
    """The `ACL SETUSER` lines of docs/redis.md, as written there (placeholders included)."""
    return re.findall(r"^ACL SETUSER .+$", doc.read_text(), flags=re.MULTILINE)


@dataclass(frozen=True)
class SecureRedis:
    """The TLS Redis with docs/redis.md's users; `url(role)` logs in as that role's user."""

    server: TlsRedisServer
    passwords: dict[str, str]

    def url(self, role: str) -> str:
        return self.server.url(f"denyproxy-{role}", self.passwords[role])


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return TestCA.make(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def secure_kafka(
    tmp_path_factory: pytest.TempPathFactory, test_ca: TestCA
) -> Iterator[SecureKafkaBroker]:
    """SASL_SSL broker, the rule topic and its DLQ created by the super user, least-privilege
    ACLs for `publisher` and `consumer`; `stranger` has none."""
    broker = SecureKafkaBroker(workdir=tmp_path_factory.mktemp("kafka-sasl"), tls=test_ca)
    broker.start()
    try:
        asyncio.run(ensure_topic(broker.options("admin"), RULE_TOPIC))
        broker.allow(*least_privilege_acls(RULE_TOPIC, GROUP))
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def secure_redis(
    tmp_path_factory: pytest.TempPathFactory, test_ca: TestCA
) -> Iterator[SecureRedis]:
    """TLS-only redis-server with the proxy and consumer users of docs/redis.md."""
    server = TlsRedisServer(tmp_path_factory.mktemp("redis-tls"), test_ca)
    server.start()
    passwords = {"proxy": secrets.token_hex(12), "consumer": secrets.token_hex(12)}
    try:
        with server.admin() as admin:
            for line in documented_acl_lines():
                line = line.replace("PROXY_PASSWORD", passwords["proxy"])
                line = line.replace("CONSUMER_PASSWORD", passwords["consumer"])
                admin.execute_command(*shlex.split(line))
        yield SecureRedis(server, passwords)
    finally:
        server.stop()
