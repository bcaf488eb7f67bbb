"""The proxy against a real 3-node Redis Cluster (tests/services.py: RedisCluster).

Rule sets are hash-tagged per tenant, so one tenant's sets share a slot, but tenants and the
global scope `{*}` land on different nodes: one lookup pipeline spans nodes. Covered here:
filtering, the consumer's writes (apply/offsets/ready), a flushed cluster failing closed until
the rules are rebuilt, a node or the whole cluster down (503, never 500), a node back empty (its
slots' ready markers gone with its rules: fail closed), and the Kafka rule consumer writing the
cluster.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from redis.asyncio.cluster import RedisCluster as ClusterClient
from redis.crc import key_slot

from proxy.app import Health, create_admin_app, create_app
from proxy.server import start_site
from proxy.settings import Settings
from rules.model import DEFAULT_REGION, GLOBAL, Op, RuleChange, RuleType, tenant_of
from rules.normalize import normalize_all
from rules.store import (
    MirroredRedisStore,
    RedisStore,
    StoreUnavailableError,
    rule_key,
    slot_marker,
    state_key,
)
from rules.store.init import initialise
from tests.fake_openmart import FakeOpenmart, person
from tests.harness import Running, eventually, fake_upstream, running_proxy
from tests.services import RedisCluster, free_port, free_ports


def change(op: Op, scope: str, rule_type: RuleType, *values: str) -> RuleChange:
    result = normalize_all(rule_type, values, DEFAULT_REGION)
    assert not result.rejected
    return RuleChange(op, scope, rule_type, result.values)


@asynccontextmanager
async def cluster_client(url: str) -> AsyncIterator[ClusterClient]:
    client = ClusterClient.from_url(url, decode_responses=True)
    try:
        await client.initialize()
        yield client
    finally:
        await client.aclose()


@asynccontextmanager
async def cluster_store(url: str) -> AsyncIterator[RedisStore]:
    """A store for lookups and plain writes (no Kafka topic behind it)."""
    store = RedisStore.from_url(url, timeout=2.0, cluster=True)
    try:
        yield store
    finally:
        await store.aclose()


@asynccontextmanager
async def mirrored_store(url: str, topic: str) -> AsyncIterator[MirroredRedisStore]:
    """The store a consumer of `topic` keeps: offsets and ready markers too."""
    store = RedisStore.from_url(url, timeout=2.0, topic=topic, cluster=True)
    try:
        yield store
    finally:
        await store.aclose()


def node_of(client: ClusterClient, key: str) -> str:
    node = client.get_node_from_key(key)
    assert node is not None, key
    return str(node.name)


def port_of(client: ClusterClient, key: str) -> int:
    """The port of the node that holds `key`'s slot (what RedisCluster stops and starts)."""
    node = client.get_node_from_key(key)
    assert node is not None, key
    return int(node.port)


async def keys_on_distinct_nodes(client: ClusterClient, count: int = 3) -> list[str]:
    """API keys whose tenants' rule sets live on `count` different nodes (checked server-side)."""
    by_node: dict[str, str] = {}
    while len(by_node) < count:
        key = f"om_{uuid.uuid4().hex}"
        by_node.setdefault(node_of(client, rule_key(tenant_of(key), RuleType.EMAIL)), key)
    keys = list(by_node.values())
    for key in keys:
        tenant = tenant_of(key)
        slots = {await client.cluster_keyslot(rule_key(tenant, t)) for t in RuleType}
        assert slots == {client.keyslot(rule_key(tenant, RuleType.EMAIL))}  # one slot per tenant
    return keys


async def flush_cluster(url: str) -> None:
    async with cluster_client(url) as client:
        await client.flushall(target_nodes=ClusterClient.PRIMARIES)
        assert await client.dbsize(target_nodes=ClusterClient.PRIMARIES) == 0


async def task_result(
    client: aiohttp.ClientSession, base: str, api_key: str
) -> tuple[int, dict[str, Any]]:
    """The documented flow: submit → task ids → result. A step that is not 200 ends it: a
    batch or task id can read as a phone (phones anywhere, #10), so it may meet the store."""
    auth = {"X-API-Key": api_key}
    async with client.post(f"{base}/api/v1/task/batch/find_people",
                           json=[{"domain": "acme.com"}], headers=auth) as r:
        if r.status != 200:
            return r.status, await r.json()
        batch = (await r.json())["batch_id"]
    async with client.get(f"{base}/api/v1/task/batch/{batch}/task_ids", headers=auth) as r:
        if r.status != 200:
            return r.status, await r.json()
        (task_id,) = await r.json()
    async with client.get(f"{base}/api/v1/task/{task_id}", headers=auth) as r:
        return r.status, await r.json()


def people(domain: str) -> list[dict[str, Any]]:
    """Four people with phones unique to this test (global rules outlive a test)."""
    base = 2000 + int(uuid.uuid4().int % 7000)
    return [person(first, "X", domain, [f"+1512555{base + i:04d}"])
            for i, first in enumerate(["Ann", "Bob", "Cid", "Dee"])]


def emails(doc: dict[str, Any]) -> list[str | None]:
    return [p["email"]["email"] if p["email"] else None for p in doc["data"]]


def phones(doc: dict[str, Any]) -> list[list[str]]:
    return [[ph["phone_number"] for ph in p["phones"]] for p in doc["data"]]


async def smismember_calls(client: ClusterClient) -> dict[str, int]:
    stats = await client.info("commandstats", target_nodes=ClusterClient.PRIMARIES)
    return {name: info.get("cmdstat_smismember", {"calls": 0})["calls"]
            for name, info in stats.items()}


# ---------------------------------------------------------------------------- (a) filtering


async def test_filtering_with_tenants_and_global_rules_on_different_nodes(
    redis_cluster_url: str,
) -> None:
    fake = FakeOpenmart(people=people(f"{uuid.uuid4().hex[:10]}.com"))
    async with cluster_client(redis_cluster_url) as client:
        keys = await keys_on_distinct_nodes(client, 3)
        tenants = [tenant_of(k) for k in keys]
        nodes = [node_of(client, rule_key(t, RuleType.EMAIL)) for t in tenants]
        global_node = node_of(client, rule_key(GLOBAL, RuleType.EMAIL))
        assert len(set(nodes)) == 3
        assert sum(n != global_node for n in nodes) == 2  # the global scope is elsewhere

    # tenant i denies person i's email; every tenant denies Dee's phone through a global rule
    async with cluster_store(redis_cluster_url) as store:
        await store.apply(
            [change("add", t, RuleType.EMAIL, fake.people[i]["email"]["email"])
             for i, t in enumerate(tenants)]
            + [change("add", GLOBAL, RuleType.PHONE, fake.people[3]["phones"][0]["phone_number"])]
        )
    async with fake_upstream(fake) as (_, upstream):
        settings = Settings(upstream=upstream, redis=redis_cluster_url, redis_cluster=True)
        async with running_proxy(settings) as proxy, aiohttp.ClientSession() as http:
            for i, key in enumerate(keys):
                status, doc = await task_result(http, proxy.url, key)
                assert status == 200
                expected = [p["email"]["email"] for p in fake.people]
                expected[i] = None
                assert emails(doc) == expected, f"tenant {i} on {nodes[i]}"
                assert phones(doc)[3] == [] and all(phones(doc)[:3])
            stranger = f"om_{uuid.uuid4().hex}"
            status, doc = await task_result(http, proxy.url, stranger)
            assert status == 200 and None not in emails(doc) and phones(doc)[3] == []

            # One lookup = one pipeline that reached both the tenant's node and the global one.
            off_node = next(i for i, n in enumerate(nodes) if n != global_node)
            async with cluster_client(redis_cluster_url) as client:
                before = await smismember_calls(client)
                status, _ = await task_result(http, proxy.url, keys[off_node])
                after = await smismember_calls(client)
            assert status == 200
            delta = {name: after[name] - before.get(name, 0) for name in after}
            assert delta[nodes[off_node]] > 0 and delta[global_node] > 0
            assert delta[nodes[off_node]] == delta[global_node]  # tenant set + global set per type
            assert sum(delta.values()) == 2 * delta[global_node]


# ---------------------------------------------------------------------- (b) consumer writes


async def test_consumer_writes_offsets_and_ready_marker_on_the_cluster(
    redis_cluster_url: str,
) -> None:
    topic = f"rules-{uuid.uuid4().hex[:8]}"
    async with cluster_client(redis_cluster_url) as client:
        keys = await keys_on_distinct_nodes(client, 3)
    t1, t2, t3 = (tenant_of(k) for k in keys)
    many = [f"user{i}@bulk-{topic}.com" for i in range(25_000)]  # three SADD chunks
    async with mirrored_store(redis_cluster_url, topic) as store:
        assert await store.offsets() == {}
        assert not await store.ready()
        with pytest.raises(StoreUnavailableError):
            await store.lookup(t1, {RuleType.EMAIL: ["a@b.co"]})

        await store.apply(
            [
                change("add", t1, RuleType.EMAIL, "jane@acme.com", "joe@acme.com"),
                change("add", t2, RuleType.PHONE, "(512) 555-0142"),
                change("add", GLOBAL, RuleType.DOMAIN, f"{topic}.example"),
                RuleChange("add", t3, RuleType.EMAIL, tuple(many)),
            ],
            {0: 10, 1: 4},
        )
        assert await store.offsets() == {0: 10, 1: 4}
        assert not await store.ready()
        await store.set_ready(True)
        assert await store.ready()

        answer = await store.lookup(t1, {RuleType.EMAIL: ["jane@acme.com", "x@acme.com"],
                                         RuleType.DOMAIN: [f"{topic}.example", "acme.com"]})
        assert answer == {RuleType.EMAIL: {"jane@acme.com"}, RuleType.DOMAIN: {f"{topic}.example"}}
        assert await store.lookup(t2, {RuleType.PHONE: ["+15125550142"]}) == {
            RuleType.PHONE: {"+15125550142"}}
        assert await store.lookup(t1, {RuleType.PHONE: ["+15125550142"]}) == {}
        assert await store.count(t3, RuleType.EMAIL) == 25_000

        # the next batch: removals and one partition's offset moved on, the other kept
        await store.apply([change("remove", t1, RuleType.EMAIL, "jane@acme.com")], {0: 11})
        assert await store.offsets() == {0: 11, 1: 4}
        assert await store.lookup(t1, {RuleType.EMAIL: ["jane@acme.com", "joe@acme.com"]}) == {
            RuleType.EMAIL: {"joe@acme.com"}}

        # the consumer's write that also reads the ready marker around it ({state} slot)
        assert await store.apply_and_check([change("add", t2, RuleType.EMAIL, "k@l.io")], {1: 5})
        await store.set_ready(False)
        assert not await store.apply_and_check([], {1: 6})
        assert await store.offsets() == {0: 11, 1: 6}
        with pytest.raises(StoreUnavailableError):
            await store.lookup(t2, {RuleType.EMAIL: ["k@l.io"]})

    async with cluster_client(redis_cluster_url) as client:
        state_node = node_of(client, state_key(topic, "offsets"))
        assert node_of(client, state_key(topic, "ready")) == state_node
        assert await client.hgetall(state_key(topic, "offsets")) == {"0": "11", "1": "6"}


# ------------------------------------------------------------------------------ (c) rebuild


@asynccontextmanager
async def proxy_on_store(store: RedisStore, upstream: str) -> AsyncIterator[Running]:
    """The proxy and admin apps on a given store: a store with `topic` but no consumer here
    (in production the consumer runs in `denyproxy consume` and shares the cluster)."""
    port, admin_port = free_ports(2)
    settings = Settings(upstream=upstream, listen=f"127.0.0.1:{port}",
                        admin_listen=f"127.0.0.1:{admin_port}")
    admin = await start_site(create_admin_app(Health(store)), settings.admin_listen, settings)
    proxy = await start_site(create_app(settings, store), settings.listen, settings)
    try:
        yield Running(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{admin_port}", settings,
                      asyncio.Event())
    finally:
        await proxy.cleanup()
        await admin.cleanup()


async def readyz(http: aiohttp.ClientSession, proxy: Running) -> int:
    async with http.get(f"{proxy.admin}/readyz") as r:
        return r.status


async def test_flushed_cluster_answers_503_until_rules_are_rebuilt(
    redis_cluster: RedisCluster,
) -> None:
    url = redis_cluster.url
    topic = f"rules-{uuid.uuid4().hex[:8]}"
    fake = FakeOpenmart(people=people(f"{uuid.uuid4().hex[:10]}.com"))
    api_key = f"om_{uuid.uuid4().hex}"
    rules = [change("add", tenant_of(api_key), RuleType.EMAIL, fake.people[0]["email"]["email"]),
             change("add", GLOBAL, RuleType.PHONE, fake.people[1]["phones"][0]["phone_number"])]
    async with mirrored_store(url, topic) as writer, mirrored_store(url, topic) as store, \
            fake_upstream(fake) as (_, upstream), proxy_on_store(store, upstream) as proxy, \
            aiohttp.ClientSession() as http:
        await writer.apply(rules, {0: 2})
        await writer.set_ready(True)
        status, doc = await task_result(http, proxy.url, api_key)
        assert status == 200 and emails(doc)[0] is None and phones(doc)[1] == []
        assert await readyz(http, proxy) == 200

        await flush_cluster(url)
        status, doc = await task_result(http, proxy.url, api_key)
        assert status == 503 and doc == {"detail": "suppression store unavailable"}
        assert await readyz(http, proxy) == 503
        assert await writer.offsets() == {}  # what tells the consumer to replay from 0

        await writer.apply(rules, {0: 2})  # replaying: the rules are back, not yet complete
        status, doc = await task_result(http, proxy.url, api_key)
        assert status == 503
        assert await readyz(http, proxy) == 503

        await writer.set_ready(True)
        status, doc = await task_result(http, proxy.url, api_key)
        assert status == 200 and emails(doc)[0] is None and phones(doc)[1] == []
        assert emails(doc)[1] is not None
        assert await readyz(http, proxy) == 200


# ------------------------------------------------------------------------------ failures


async def test_unreachable_cluster_is_503_not_500() -> None:
    """No node answers: redis-py raises RedisClusterException (not a RedisError)."""
    async with fake_upstream() as (_, upstream):
        settings = Settings(upstream=upstream, redis=f"redis://127.0.0.1:{free_port()}",
                            redis_cluster=True, store_timeout=0.5)
        async with running_proxy(settings) as proxy, aiohttp.ClientSession() as http:
            status, doc = await task_result(http, proxy.url, f"om_{uuid.uuid4().hex}")
            assert status == 503 and doc == {"detail": "suppression store unavailable"}
            assert await readyz(http, proxy) == 503


async def test_a_node_down_fails_closed_and_recovers_without_restart(
    redis_cluster: RedisCluster,
) -> None:
    url = redis_cluster.url
    fake = FakeOpenmart(people=people(f"{uuid.uuid4().hex[:10]}.com"))
    api_key = f"om_{uuid.uuid4().hex}"
    tenant = tenant_of(api_key)
    rule = change("add", tenant, RuleType.EMAIL, fake.people[0]["email"]["email"])
    async with cluster_client(url) as client:
        down = port_of(client, rule_key(GLOBAL, RuleType.EMAIL))
    async with cluster_store(url) as writer:
        await writer.apply([rule])
    async with fake_upstream(fake) as (_, upstream):
        settings = Settings(upstream=upstream, redis=url, redis_cluster=True, store_timeout=0.5)
        async with running_proxy(settings) as proxy, aiohttp.ClientSession() as http:
            status, doc = await task_result(http, proxy.url, api_key)
            assert status == 200 and emails(doc)[0] is None
            redis_cluster.stop_node(down)
            try:
                status, doc = await task_result(http, proxy.url, api_key)
                assert status == 503 and doc == {"detail": "suppression store unavailable"}
            finally:
                redis_cluster.start_node(down)  # empty: no persistence in the test cluster
                await asyncio.to_thread(redis_cluster.wait_ok)
            status, doc = await task_result(http, proxy.url, api_key)
            assert status == 503, "the node came back empty: its slots' markers are gone too"
            async with cluster_store(url) as writer:
                await writer.apply([rule])
                report = await initialise(writer)  # the operator's `denyproxy store init`
                assert report.initialised
            deadline = time.monotonic() + 20
            while True:
                status, doc = await task_result(http, proxy.url, api_key)
                if status == 200 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
            assert status == 200 and emails(doc)[0] is None


def test_every_slot_has_its_own_ready_marker() -> None:
    """The per-slot markers (computed once per process) hash to their slots, and are short."""
    markers = [slot_marker("rules", slot) for slot in range(16384)]
    assert [key_slot(m.encode()) for m in markers] == list(range(16384))
    assert max(map(len, markers)) <= len("denyproxy:{abcd}:rules:ready")


async def test_a_node_that_lost_its_data_is_not_trusted(redis_cluster: RedisCluster) -> None:
    """A node back empty (restart without persistence, replaced, failover that lost writes)
    took its slots' ready markers with its rules: its tenants' lookups fail closed, and the
    store says incomplete (the consumer rebuilds); tenants on the other nodes still filter."""
    url = redis_cluster.url
    topic = f"rules-{uuid.uuid4().hex[:8]}"
    async with cluster_client(url) as client:
        state_node = port_of(client, state_key(topic, "ready"))
        global_node = port_of(client, rule_key(GLOBAL, RuleType.EMAIL))
        while True:
            tenant = tenant_of(f"om_{uuid.uuid4().hex}")
            node = port_of(client, rule_key(tenant, RuleType.EMAIL))
            if node not in (state_node, global_node):
                break
        while True:
            other = tenant_of(f"om_{uuid.uuid4().hex}")
            if port_of(client, rule_key(other, RuleType.EMAIL)) != node:
                break
    async with mirrored_store(url, topic) as store:
        await store.apply([change("add", tenant, RuleType.EMAIL, "jane@acme.com"),
                           change("add", other, RuleType.EMAIL, "joe@acme.com")], {0: 2})
        await store.set_ready(True)
        assert await store.lookup(tenant, {RuleType.EMAIL: ["jane@acme.com"]})
        redis_cluster.stop_node(node)
        redis_cluster.start_node(node)  # back with its slots, without its keys
        await asyncio.to_thread(redis_cluster.wait_ok)
        answer: dict[RuleType, set[str]] | None = None
        for _ in range(50):  # the client reconnects to the restarted node
            try:
                answer = await store.lookup(tenant, {RuleType.EMAIL: ["jane@acme.com"]})
                break
            except StoreUnavailableError:
                answer = None  # failing closed: what we want
                break
            except Exception:
                await asyncio.sleep(0.1)
        ready = await store.ready()
        # Either the lookup fails closed or the store says it is not complete (so the consumer
        # rebuilds): anything but "complete, and nothing denied".
        assert answer is None or not ready, f"answer={answer} ready={ready}"

        # Both, in fact, once the client is connected again: the marker is gone, not the node.
        assert await store.lookup(other, {RuleType.EMAIL: ["joe@acme.com"]}) == {
            RuleType.EMAIL: {"joe@acme.com"}}  # on a node that kept its data: still filtered
        with pytest.raises(StoreUnavailableError, match="loading"):
            await store.lookup(tenant, {RuleType.EMAIL: ["jane@acme.com"]})
        assert not ready and not await store.ready()
        assert not await store.apply_and_check([], {0: 2})  # what a busy consumer sees

        # the consumer's rebuild: marker off, rules replayed, marker on
        await store.set_ready(False)
        await store.apply([change("add", tenant, RuleType.EMAIL, "jane@acme.com")], {0: 2})
        await store.set_ready(True)
        assert await store.ready()
        assert await store.lookup(tenant, {RuleType.EMAIL: ["jane@acme.com"]}) == {
            RuleType.EMAIL: {"jane@acme.com"}}
        await store.set_ready(False)


# ------------------------------------------------------------------- Kafka consumer → cluster


async def test_rule_consumer_feeds_the_cluster_and_rebuilds_after_a_flush(
    redis_cluster: RedisCluster, kafka_bootstrap: str
) -> None:
    """`serve --kafka --redis-cluster`: the in-process consumer writes the cluster; the
    deny-rules API publishes and waits for it; a flush is replayed from the topic."""
    pytest.importorskip("rules.consumer")
    from rules.kafka import KafkaOptions
    from rules.publisher import RulePublisher

    url = redis_cluster.url
    topic = f"denyproxy.rules.{uuid.uuid4().hex[:8]}"
    fake = FakeOpenmart(people=people(f"{uuid.uuid4().hex[:10]}.com"))
    async with cluster_client(url) as client:
        keys = await keys_on_distinct_nodes(client, 3)
    options = KafkaOptions(kafka_bootstrap)
    settings = Settings(upstream="http://127.0.0.1:1", redis=url, redis_cluster=True,
                        kafka=kafka_bootstrap, topic=topic, group=f"g-{topic}")
    async with fake_upstream(fake) as (_, upstream), \
            running_proxy(settings.with_(upstream=upstream)) as proxy, \
            aiohttp.ClientSession() as http:
        async with RulePublisher(options, topic, region=DEFAULT_REGION) as publisher:
            for i, key in enumerate(keys):
                await publisher.publish("add", tenant_of(key), RuleType.EMAIL,
                                        [fake.people[i]["email"]["email"]])
            await publisher.publish("add", GLOBAL, RuleType.PHONE,
                                    [fake.people[3]["phones"][0]["phone_number"]])

        async def filtered(i: int, key: str) -> bool:
            status, doc = await task_result(http, proxy.url, key)
            return status == 200 and emails(doc)[i] is None and phones(doc)[3] == []

        async def all_filtered() -> bool:
            return all([await filtered(i, k) for i, k in enumerate(keys)])

        await eventually(all_filtered, "every tenant filtered")

        # the deny-rules API: published, applied by the consumer, answered once enforced
        async with http.post(f"{proxy.url}/api/v2/deny-rules", headers={"X-API-Key": keys[0]},
                             json={"type": "email", "values": [fake.people[2]["email"]["email"]]}
                             ) as r:
            assert r.status == 200, await r.text()
        status, doc = await task_result(http, proxy.url, keys[0])
        assert status == 200 and emails(doc)[0] is None and emails(doc)[2] is None

        await flush_cluster(url)  # every node: the consumer notices and replays the topic
        seen: set[int] = set()
        deadline = time.monotonic() + 30
        while True:  # during the rebuild: 503 or filtered, never an unfiltered answer
            status, doc = await task_result(http, proxy.url, keys[0])
            seen.add(status)
            assert status in (200, 503)
            if status == 200:
                assert emails(doc)[0] is None and emails(doc)[2] is None
                break
            assert time.monotonic() < deadline, "no rebuild within 30 s"
            await asyncio.sleep(0.1)
        assert 503 in seen  # the flush was noticed by the proxy before the rebuild completed
        await eventually(all_filtered, "every tenant filtered")
        async with mirrored_store(url, topic) as store:
            assert sum((await store.offsets()).values()) == 5  # every event replayed
        async with http.get(f"{proxy.admin}/readyz") as r:
            assert r.status == 200


async def test_the_consumer_rebuilds_after_a_node_lost_its_data(
    redis_cluster: RedisCluster, kafka_bootstrap: str
) -> None:
    """A node back empty while the consumer runs: its tenants get 503s, never unfiltered
    answers, until the consumer notices the missing markers and replays the topic."""
    from rules.kafka import KafkaOptions
    from rules.publisher import RulePublisher

    url = redis_cluster.url
    topic = f"denyproxy.rules.{uuid.uuid4().hex[:8]}"
    fake = FakeOpenmart(people=people(f"{uuid.uuid4().hex[:10]}.com"))
    async with cluster_client(url) as client:
        state_node = port_of(client, state_key(topic, "ready"))
        global_node = port_of(client, rule_key(GLOBAL, RuleType.EMAIL))
        while True:
            key = f"om_{uuid.uuid4().hex}"
            node = port_of(client, rule_key(tenant_of(key), RuleType.EMAIL))
            if node not in (state_node, global_node):
                break
    settings = Settings(upstream="http://127.0.0.1:1", redis=url, redis_cluster=True,
                        kafka=kafka_bootstrap, topic=topic, group=f"g-{topic}")
    async with fake_upstream(fake) as (_, upstream), \
            running_proxy(settings.with_(upstream=upstream)) as proxy, \
            aiohttp.ClientSession() as http:
        async with RulePublisher(
            KafkaOptions(kafka_bootstrap), topic, region=DEFAULT_REGION
        ) as publisher:
            await publisher.publish("add", tenant_of(key), RuleType.EMAIL,
                                    [fake.people[0]["email"]["email"]])

        async def filtered_after(seconds: float) -> None:
            deadline = time.monotonic() + seconds
            while True:  # 503 or filtered, never an unfiltered answer
                status, doc = await task_result(http, proxy.url, key)
                assert status in (200, 503)
                if status == 200:
                    assert emails(doc)[0] is None
                    return
                assert time.monotonic() < deadline, "not filtered in time"
                await asyncio.sleep(0.1)

        await filtered_after(30)
        redis_cluster.stop_node(node)
        redis_cluster.start_node(node)  # back with its slots, without its keys
        await asyncio.to_thread(redis_cluster.wait_ok)
        await filtered_after(30)  # the consumer noticed and replayed the topic
        async with mirrored_store(url, topic) as store:
            assert await store.ready()
