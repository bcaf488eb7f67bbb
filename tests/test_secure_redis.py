"""Redis over TLS with the least-privilege ACL users of docs/redis.md (read from the doc, so
doc and test cannot drift): the proxy's user reads and filters, its writes are refused."""

from __future__ import annotations

import asyncio
import time
import uuid

import aiohttp
import pytest
import redis
from redis.exceptions import NoPermissionError

from proxy.settings import Settings
from rules.catalogue.record import ListQuery
from rules.catalogue.redis import RedisCatalogue
from rules.model import RuleChange, RuleType, tenant_of
from rules.store import RedisStore, StoreUnavailableError, rule_key
from rules.store.keys import admitted_key, expires_key, ready_key, record_key
from tests.harness import fake_upstream, running_proxy, until_ready
from tests.secure_fixtures import SecureRedis, documented_acl_lines
from tests.test_rules_api import PATH, call
from tests.test_suppression import emails, task_result


def test_the_doc_names_one_user_per_role() -> None:
    users = [line.split()[2] for line in documented_acl_lines()]
    assert users == ["denyproxy-proxy", "denyproxy-consumer"]


async def test_proxy_with_the_read_user_filters_over_tls(secure_redis: SecureRedis) -> None:
    api_key = f"om_{uuid.uuid4().hex}"
    writer = RedisStore.from_url(secure_redis.url("consumer"), timeout=2.0)
    try:
        await writer.apply([RuleChange("add", tenant_of(api_key), RuleType.EMAIL,
                                       ("jane.doe@acme.com",))])
        await writer.mark_initialised()  # a store written without Kafka: the operator's word
    finally:
        await writer.aclose()
    async with fake_upstream() as (_, upstream):
        settings = Settings(upstream=upstream, redis=secure_redis.url("proxy"))
        async with running_proxy(settings) as proxy, aiohttp.ClientSession() as client:
            async with client.get(f"{proxy.admin}/readyz") as ready:
                assert ready.status == 200
            r, doc = await task_result(client, proxy.url, api_key)
    assert r.status == 200 and r.headers["X-Denyproxy-Suppressed"] == "1"
    assert emails(doc)[0] is None and emails(doc)[1] is not None


async def test_a_write_with_the_proxy_user_is_refused(secure_redis: SecureRedis) -> None:
    store = RedisStore.from_url(secure_redis.url("proxy"), timeout=2.0)
    change = RuleChange("add", tenant_of("om_refused"), RuleType.EMAIL, ("x@acme.com",))
    try:
        with pytest.raises(StoreUnavailableError) as caught:
            await store.apply([change])
        assert isinstance(caught.value.__cause__, NoPermissionError)
        with secure_redis.server.admin() as admin:
            assert admin.scard(rule_key(change.tenant, RuleType.EMAIL)) == 0
    finally:
        await store.aclose()


async def test_deny_rules_api_with_the_proxy_user_answers_503(secure_redis: SecureRedis) -> None:
    api_key = f"om_{uuid.uuid4().hex}"
    async with fake_upstream() as (_, upstream):
        settings = Settings(upstream=upstream, redis=secure_redis.url("proxy"))
        async with running_proxy(settings) as proxy, aiohttp.ClientSession() as client, \
                client.post(f"{proxy.url}/api/v2/deny-rules", headers={"X-API-Key": api_key},
                            json={"type": "email", "values": ["x@acme.com"]}) as r:
            assert r.status == 503  # refused: by the ACL, or first by a store Kafka keeps
            detail = (await r.json())["detail"]  # (a consumer's marker from another test)
            assert "unavailable" in detail or "nothing was changed" in detail, detail
    with secure_redis.server.admin() as admin:  # the script stopped before any rule or record
        assert admin.scard(rule_key(tenant_of(api_key), RuleType.EMAIL)) == 0
        assert list(admin.scan_iter(f"denyproxy:{{{tenant_of(api_key)}}}:rule:*")) == []



async def test_proxy_user_lists_and_counts_the_catalogue_but_cannot_drop_a_rule(
    secure_redis: SecureRedis,
) -> None:
    """The proxy's user writes catalogue records only (suppression counts): listing works
    (its sweep, a write to the sets, is skipped) and a sweep that would drop a rule is refused."""
    tenant = tenant_of(f"om_{uuid.uuid4().hex}")
    writer = RedisStore.from_url(secure_redis.url("consumer"), timeout=2.0)
    reader = RedisStore.from_url(secure_redis.url("proxy"), timeout=2.0)
    try:
        await writer.apply([RuleChange("add", tenant, RuleType.EMAIL, ("kept@acme.com",))])
        catalogue = RedisCatalogue(reader.client)
        await catalogue.record_hits({(tenant, RuleType.EMAIL, "kept@acme.com"): 2}, time.time())
        page = await catalogue.page(tenant, ListQuery())
        assert [(r.value, r.suppressions) for r in page.records] == [("kept@acme.com", 2)]
        with secure_redis.server.admin() as admin:  # its expiry has come: a sweep would drop it
            admin.zadd(expires_key(tenant, RuleType.EMAIL), {"kept@acme.com": 1})
            admin.hset(record_key(tenant, page.records[0].id), "expires_at", 1)
        with pytest.raises(StoreUnavailableError) as caught:
            await catalogue.sweep(tenant)
        assert isinstance(caught.value.__cause__, NoPermissionError)
        assert (await catalogue.page(tenant, ListQuery())).records == []  # hidden, not swept
        with secure_redis.server.admin() as admin:
            assert admin.sismember(rule_key(tenant, RuleType.EMAIL), "kept@acme.com")
    finally:
        await writer.aclose()
        await reader.aclose()


def commands_run(admin: redis.Redis) -> int:
    """Commands Redis ran so far (those inside scripts too), INFO itself not counted."""
    stats = admin.info("commandstats")
    return sum(int(s["calls"]) for name, s in stats.items() if name != "cmdstat_info")


async def test_proxy_user_lookups_are_served_from_the_local_cache(
    secure_redis: SecureRedis,
) -> None:
    """The proxy's user may switch its lookup link to RESP3 with CLIENT TRACKING: a warm lookup
    sends no command, and a rule the consumer's user adds still reaches it (invalidation)."""
    tenant, topic = tenant_of(f"om_{uuid.uuid4().hex}"), f"acl-{uuid.uuid4().hex[:8]}"
    writer = RedisStore.from_url(secure_redis.url("consumer"), timeout=2.0)
    reader = RedisStore.from_url(secure_redis.url("proxy"), timeout=2.0, topic=topic, cache=True)
    try:
        await writer.apply([RuleChange("add", tenant, RuleType.EMAIL, ("jane@acme.com",))])
        await writer.client.set(ready_key(topic), "1")
        asked = {RuleType.EMAIL: {"jane@acme.com", "bob@acme.com"}}
        assert await reader.lookup(tenant, asked) == {RuleType.EMAIL: {"jane@acme.com"}}
        assert reader.tracked is not None and reader.tracked.answers.live()
        with secure_redis.server.admin() as admin:
            before = commands_run(admin)
            assert await reader.lookup(tenant, asked) == {RuleType.EMAIL: {"jane@acme.com"}}
            assert commands_run(admin) == before  # the warm lookup sent nothing
        await writer.apply([RuleChange("add", tenant, RuleType.EMAIL, ("bob@acme.com",))])
        deadline = time.monotonic() + 5.0
        while await reader.lookup(tenant, asked) != {RuleType.EMAIL: asked[RuleType.EMAIL]}:
            assert time.monotonic() < deadline, "the consumer's add never reached the cache"
            await asyncio.sleep(0.01)
    finally:
        await writer.aclose()
        await reader.aclose()


async def test_deny_rules_api_with_kafka_admits_and_publishes_under_the_proxy_user(
    secure_redis: SecureRedis, kafka_bootstrap: str,
) -> None:
    """With Kafka the proxy's user admits a write (limit script: its write counter and
    reservations) and releases the reservation once applied; of two concurrent adds that
    together pass the rule limit, exactly one is admitted."""
    topic, api_key = f"acl-{uuid.uuid4().hex[:8]}", f"om_{uuid.uuid4().hex}"
    async with fake_upstream() as (_, upstream):
        base = Settings(upstream=upstream, redis=secure_redis.url("consumer"),
                        kafka=kafka_bootstrap, topic=topic, group=f"g-{topic}")
        limited = base.with_(redis=secure_redis.url("proxy"), consumer=False, max_rules_per_key=3)
        async with running_proxy(base) as applier, running_proxy(limited) as proxy, \
                aiohttp.ClientSession() as client:
            await until_ready(client, applier)
            first = await call(client, "POST", proxy.url + PATH, api_key,
                               {"type": "email", "values": ["jane.doe@acme.com"]})
            assert first == (200, {"status": "success"})
            _, doc = await task_result(client, proxy.url, api_key)
            assert emails(doc)[0] is None
            both = await asyncio.gather(*(
                call(client, "POST", proxy.url + PATH, api_key,
                     {"type": "email", "values": [f"{who}.{n}@acme.com" for n in (1, 2)]})
                for who in ("ada", "alan")))
    assert sorted(status for status, _ in both) == [200, 413]
    with secure_redis.server.admin() as admin:
        assert admin.scard(rule_key(tenant_of(api_key), RuleType.EMAIL)) == 3
        assert admin.zcard(admitted_key(tenant_of(api_key))) == 0  # released once applied

