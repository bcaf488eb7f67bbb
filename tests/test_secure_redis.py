"""Redis over TLS with the least-privilege ACL users of docs/redis.md (read from the doc, so
doc and test cannot drift): the proxy's user reads and filters, its writes are refused."""

from __future__ import annotations

import time
import uuid

import aiohttp
import pytest
from redis.exceptions import NoPermissionError

from proxy.settings import Settings
from rules.catalogue.record import ListQuery
from rules.catalogue.redis import RedisCatalogue
from rules.model import RuleChange, RuleType, tenant_of
from rules.store import RedisStore, StoreUnavailableError, rule_key
from rules.store.keys import expires_key, record_key
from tests.harness import fake_upstream, running_proxy
from tests.secure_fixtures import SecureRedis, documented_acl_lines
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
            assert r.status == 503
            assert "unavailable" in (await r.json())["detail"]
    with secure_redis.server.admin() as admin:
        assert admin.scard(rule_key(tenant_of(api_key), RuleType.EMAIL)) == 0



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
