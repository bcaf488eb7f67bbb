"""Session fixtures: a real Redis and a real Kafka broker on free ports (see tests/services.py).

Set REDIS_URL / REDIS_CLUSTER_URL / KAFKA_BOOTSTRAP to use already-running services instead
of starting them. Tests never FLUSHALL an external Redis: the ones that must wipe a server ask
for `flushable_redis_url` and are skipped, saying why, when REDIS_URL is set.

Hypothesis profiles, chosen by HYPOTHESIS_PROFILE (default `dev`; scripts/test picks `ci` under
CI): `ci` is derandomised and bounded, `dev` random, `deep` many examples for fuzzing. A test
with its own budget names its count under `ci` (tests/budgets.py scales it to the profile).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, settings

from rules.store import RedisStore
from tests.services import KafkaBroker, RedisCluster, RedisServer, running_redis

pytest_plugins = ["tests.secure_fixtures"]  # TLS/SASL/ACL variants, started only when asked for

settings.register_profile(
    "ci",
    derandomize=True,  # same examples every run: a red CI run replays exactly
    deadline=None,  # a shared 2-core box: timing says nothing about correctness
    max_examples=200,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, max_examples=100, print_blob=True)
settings.register_profile(
    "deep",
    deadline=None,
    max_examples=20_000,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
HYPOTHESIS_PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "dev")
settings.load_profile(HYPOTHESIS_PROFILE)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under `deep`, a property test runs its examples for as long as they take: the hang guard
    (pytest-timeout, 120 s in pyproject.toml) would cut a long fuzz short and report a failure
    that is no finding (seen: a deep leak fuzz "failed" inside the test's own leak detector)."""
    if HYPOTHESIS_PROFILE != "deep":
        return
    for item in items:
        if getattr(getattr(item, "obj", None), "is_hypothesis_test", False):
            item.add_marker(pytest.mark.timeout(0), append=False)


def pytest_report_header(config: pytest.Config) -> str:
    """Name the Hypothesis profile (and its seed policy) so a failing run can be replayed."""
    seed = "derandomized" if settings().derandomize else "random (see --hypothesis-seed)"
    examples = settings().max_examples
    return f"hypothesis profile: {HYPOTHESIS_PROFILE} (max_examples={examples}, seed {seed})"


@pytest.fixture(scope="session")
def flushable_redis_url(request: pytest.FixtureRequest) -> str:
    """URL of a Redis this suite may FLUSHALL: only our private redis-server, never $REDIS_URL."""
    if os.environ.get("REDIS_URL"):
        pytest.skip("this test wipes Redis (FLUSHALL); refusing to run it against REDIS_URL")
    server: RedisServer = request.getfixturevalue("redis_server")
    return server.url


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """Controllable redis-server (.url/.port/.stop()/.start()); skips if REDIS_URL is external."""
    if os.environ.get("REDIS_URL"):
        pytest.skip("REDIS_URL points at an external Redis; cannot stop/start it")
    with running_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="session")
def redis_url(request: pytest.FixtureRequest) -> str:
    """URL of a Redis to test against: $REDIS_URL, else our private redis-server."""
    if url := os.environ.get("REDIS_URL"):
        return url
    server: RedisServer = request.getfixturevalue("redis_server")
    return server.url


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """Private single-node KRaft broker; skips if KAFKA_BOOTSTRAP points at an external one."""
    if os.environ.get("KAFKA_BOOTSTRAP"):
        pytest.skip("KAFKA_BOOTSTRAP points at an external Kafka; cannot manage it")
    broker = KafkaBroker(workdir=tmp_path_factory.mktemp("kafka"))
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(request: pytest.FixtureRequest) -> str:
    """bootstrap_servers for tests: $KAFKA_BOOTSTRAP, else our private broker."""
    if bootstrap := os.environ.get("KAFKA_BOOTSTRAP"):
        return bootstrap
    broker: KafkaBroker = request.getfixturevalue("kafka_broker")
    return broker.bootstrap


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """A private 3-node Redis Cluster (.url/.ports/.stop_node()/.start_node()); skips if
    REDIS_CLUSTER_URL points at an external one."""
    if os.environ.get("REDIS_CLUSTER_URL"):
        pytest.skip("REDIS_CLUSTER_URL points at an external Redis Cluster; cannot manage it")
    cluster = RedisCluster(workdir=tmp_path_factory.mktemp("redis-cluster"))
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def redis_cluster_url(request: pytest.FixtureRequest) -> str:
    """URL of one node of a Redis Cluster: $REDIS_CLUSTER_URL, else our private 3-node one."""
    if url := os.environ.get("REDIS_CLUSTER_URL"):
        return url
    cluster: RedisCluster = request.getfixturevalue("redis_cluster")
    return cluster.url


# Clients shared by many modules (a module's own fixture of the same name wins).


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A decoding client on the suite's Redis."""
    client = aioredis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
async def store(redis_url: str, topic: str) -> AsyncIterator[RedisStore]:
    """The Kafka-fed store of the requesting module's `topic`."""
    own = RedisStore.from_url(redis_url, timeout=5.0, topic=topic)
    yield own
    await own.aclose()


@pytest.fixture
async def plain(redis_url: str) -> AsyncIterator[RedisStore]:
    """A store without Kafka, on its own feeder topic, initialised by the operator."""
    own = RedisStore.from_url(redis_url, timeout=2.0, feeder_topic=f"f-{uuid.uuid4().hex[:8]}")
    await own.mark_initialised()
    yield own
    await own.aclose()
