"""Suppression through the running proxy, against the fake upstream and a real Redis."""

from __future__ import annotations

import uuid

import aiohttp
import orjson
import pytest
import redis.asyncio as aioredis

from proxy.settings import Settings
from rules.model import DEFAULT_REGION, GLOBAL, RuleChange, RuleType, tenant_of
from rules.normalize import normalize_all
from rules.store import RedisStore, rule_key
from tests.fake_openmart import person
from tests.harness import fake_upstream, running_proxy


def key() -> str:
    return f"om_{uuid.uuid4().hex}"


async def add(redis_url: str, scope: str, rule_type: RuleType, *values: str) -> None:
    store = RedisStore.from_url(redis_url, timeout=2.0)
    try:
        result = normalize_all(rule_type, values, DEFAULT_REGION)
        assert not result.rejected
        await store.apply([RuleChange("add", scope, rule_type, result.values)])
        await store.mark_initialised()  # the operator's `denyproxy store init`
    finally:
        await store.aclose()


async def task_result(
    client: aiohttp.ClientSession, base: str, api_key: str, kind: str = "find_people",
    *, bearer: bool = False,
) -> tuple[aiohttp.ClientResponse, dict]:
    """The documented flow: submit → task ids → result. A step that is not 200 ends it: a
    batch or task id can read as a phone (phones anywhere, #10), so it may meet the store."""
    auth = {"Authorization": f"Bearer {api_key}"} if bearer else {"X-API-Key": api_key}
    async with client.post(f"{base}/api/v1/task/batch/{kind}", json=[{"domain": "acme.com",
                           "company_name": "Acme"}], headers=auth) as r:
        submitted = await r.json()
        if r.status != 200:
            return r, submitted
    ids = f"{base}/api/v1/task/batch/{submitted['batch_id']}/task_ids?status=COMPLETED"
    async with client.get(ids, headers=auth) as r:
        if r.status != 200:
            return r, await r.json()
        (task_id,) = await r.json()
    async with client.get(f"{base}/api/v1/task/{task_id}", headers=auth) as r:
        return r, await r.json()


def emails(doc: dict) -> list[str | None]:
    return [p["email"]["email"] if p["email"] else None for p in doc["data"]]


@pytest.fixture
async def env(redis_url):
    async with fake_upstream() as (fake, upstream):
        settings = Settings(upstream=upstream, redis=redis_url)
        async with running_proxy(settings) as proxy, aiohttp.ClientSession(
            auto_decompress=False
        ) as client:
            yield fake, proxy, client


async def test_find_people_strips_denied_email_phone_linkedin(env, redis_url):
    fake, proxy, client = env
    api_key = key()
    tenant = tenant_of(api_key)
    await add(redis_url, tenant, RuleType.EMAIL, "JANE.DOE@acme.com")
    await add(redis_url, tenant, RuleType.PHONE, "(512) 555-1003")  # Karl's second phone
    await add(redis_url, tenant, RuleType.LINKEDIN, "https://www.linkedin.com/in/AdaLovelace/")
    r, doc = await task_result(client, proxy.url, api_key)
    assert r.status == 200
    assert int(r.headers["X-Denyproxy-Suppressed"]) == 3
    jane, karl, ada = doc["data"][:3]
    assert jane["email"] is None and jane["first_name"] == "Jane"
    assert [p["phone_number"] for p in karl["phones"]] == ["+15125551002"]
    assert ada["linkedin_url"] is None
    assert len(doc["data"]) == 8 and doc["status"] == "COMPLETED"
    # Content-Length is the spliced body's: the client read exactly that many bytes of JSON
    assert int(r.headers["Content-Length"]) == r.content_length and r.content_length > 0


async def test_drop_policy_removes_whole_records(redis_url):
    api_key = key()
    await add(redis_url, tenant_of(api_key), RuleType.EMAIL, "jane.doe@acme.com")
    await add(redis_url, tenant_of(api_key), RuleType.PHONE, "+1 512 555 1005")  # Ada's
    async with fake_upstream() as (fake, upstream):
        settings = Settings(upstream=upstream, redis=redis_url, policy="drop")
        async with running_proxy(settings) as proxy, aiohttp.ClientSession() as client:
            r, doc = await task_result(client, proxy.url, api_key)
    names = [p["first_name"] for p in doc["data"]]
    assert "Jane" not in names and "Ada" not in names and len(names) == 6
    assert r.headers["X-Denyproxy-Suppressed"] == "2"


async def test_domain_rule_blocks_every_address_at_it_and_subdomains(env, redis_url):
    fake, proxy, client = env
    api_key = key()
    fake.business_emails = [
        {"email": "info@acme.com", "status": "valid"},
        {"email": "sales@eu.acme.com", "status": "valid"},
        {"email": "hello@other.io", "status": "valid"},
    ]
    await add(redis_url, tenant_of(api_key), RuleType.DOMAIN, "https://www.ACME.com/")
    r, doc = await task_result(client, proxy.url, api_key, "lookup_business_email")
    assert doc["data"] == [{"email": "hello@other.io", "status": "valid"}]


async def test_search_rows_and_business_records_are_filtered(env, redis_url):
    fake, proxy, client = env
    api_key = key()
    fake.search_rows = [{"id": "r1", "content": {"business_name": "Acme Store",
                         "business_emails": ["info@acme.com", "owner@acme.com"],
                         "business_phones": ["(512) 555-0100"], "store_phones": [5125550199]}}]
    await add(redis_url, tenant_of(api_key), RuleType.EMAIL, "owner@acme.com")
    await add(redis_url, tenant_of(api_key), RuleType.PHONE, "+15125550100", "+15125550199")
    async with client.post(f"{proxy.url}/api/v1/search", json={"query": "acme"},
                           headers={"X-API-Key": api_key}) as r:
        doc = await r.json()
    content = doc["data"][0]["content"]
    assert content["business_emails"] == ["info@acme.com"]
    assert content["business_phones"] == [] and content["store_phones"] == []
    async with client.get(f"{proxy.url}/api/v1/business_records/list/openmart_id", data=b'["x"]',
                          headers={"X-API-Key": api_key}) as r:
        rows = await r.json()
    assert rows[0]["business_phones"] == [] and rows[0]["business_emails"] == ["info@acme.com"]


async def test_tenant_isolation_and_bearer_is_the_same_tenant(env, redis_url):
    fake, proxy, client = env
    key_a, key_b = key(), key()
    await add(redis_url, tenant_of(key_a), RuleType.EMAIL, "jane.doe@acme.com")
    _, doc_a = await task_result(client, proxy.url, key_a, bearer=True)
    _, doc_b = await task_result(client, proxy.url, key_b)
    assert emails(doc_a)[0] is None
    assert emails(doc_b)[0] == "jane.doe@acme.com"


async def test_global_rules_apply_to_every_key(env, redis_url):
    fake, proxy, client = env
    fake.people = [person("Glo", "Bal", "globex.com", ["+15125559999"])]
    await add(redis_url, GLOBAL, RuleType.EMAIL, "glo.bal@globex.com")
    for api_key in (key(), key()):
        _, doc = await task_result(client, proxy.url, api_key)
        assert emails(doc) == [None]


async def test_gzip_json_is_decoded_filtered_and_sent_identity(env, redis_url):
    fake, proxy, client = env
    api_key = key()
    await add(redis_url, tenant_of(api_key), RuleType.EMAIL, "jane.doe@acme.com")
    async with client.get(f"{proxy.url}/gzip-json", headers={"X-API-Key": api_key,
                          "Accept-Encoding": "gzip"}) as r:
        assert "Content-Encoding" not in r.headers
        doc = await r.json()
    assert emails(doc)[0] is None and emails(doc)[1] == "karl.marx@acme.com"


async def test_json_that_does_not_parse_is_502_never_passed_on(env):
    fake, proxy, client = env
    async with client.get(f"{proxy.url}/bad-json", headers={"X-API-Key": key()}) as r:
        assert r.status == 502
        body = await r.read()
    assert b"jane.doe" not in body and "detail" in orjson.loads(body)


async def test_json_over_the_filter_limit_is_502(redis_url):
    async with fake_upstream() as (fake, upstream):
        settings = Settings(upstream=upstream, redis=redis_url, max_filter_body=1000)
        async with running_proxy(settings) as proxy, aiohttp.ClientSession() as client:
            r, doc = await task_result(client, proxy.url, key())
    assert r.status == 502 and "larger than 1000" in doc["detail"]


async def test_unfiltered_response_is_byte_identical(env, redis_url):
    fake, proxy, client = env
    async with client.get(f"{proxy.url}/gzip-json", headers={"X-API-Key": key(),
                          "Accept-Encoding": "gzip"}) as r:
        assert r.headers["Content-Encoding"] == "gzip"
        assert r.headers["X-Denyproxy-Suppressed"] == "0"
        body = await r.read()
    assert body == fake.gzip_json_body()


async def test_one_redis_round_trip_per_response(env, redis_url):
    """total_reads_processed counts the reads Redis served: one pipeline is one read while it
    arrives in one piece. A large one is still one round trip, but Redis reads at most 16 KB at
    a time and a client may write it in several pieces, so the body is kept small: 8 people
    ask ~5 KB."""
    fake, proxy, client = env
    api_key = key()
    await add(redis_url, tenant_of(api_key), RuleType.EMAIL, "jane.doe@acme.com")
    fake.people = [person(f"P{i}", "X", f"d{i}.com", [f"+1512555{2000 + i}"]) for i in range(8)]
    async with client.post(f"{proxy.url}/api/v1/task/batch/find_people", json=[{"domain": "a"}],
                           headers={"X-API-Key": api_key}) as r:
        batch = (await r.json())["batch_id"]
    async with client.get(f"{proxy.url}/api/v1/task/batch/{batch}/task_ids",
                          headers={"X-API-Key": api_key}) as r:
        (task_id,) = await r.json()
    async with client.get(f"{proxy.url}/api/v1/task/{task_id}", headers={"X-API-Key": api_key}):
        pass  # warm-up: the proxy's pool opens its connection (a handshake is not a lookup)
    monitor = aioredis.from_url(redis_url)
    url = f"{proxy.url}/api/v1/task/{task_id}"
    try:  # the count is server-wide: a background write (a flush, a probe) may land in the
        for round_ in range(3):  # window, so measure again; two round trips would show every time
            # people not seen yet: no lookup of them is cached (tracked_cache.py), Redis is asked
            fake.people = [person(f"P{i}", "X", f"d{i}.com", [f"+1512556{2000 + 10 * round_ + i}"])
                           for i in range(8)]
            before = await monitor.info("stats")
            stats_before = await monitor.info("commandstats")
            async with client.get(url, headers={"X-API-Key": api_key}) as r:
                assert r.status == 200
            after = await monitor.info("stats")
            stats_after = await monitor.info("commandstats")
            own_reads = 2  # our second INFO call, and the first one's reply is counted before it
            reads = after["total_reads_processed"] - before["total_reads_processed"] - own_reads
            if reads <= 1:
                break
    finally:
        await monitor.aclose()
    assert reads <= 1

    def calls(command: str) -> int:
        counted = [s.get(f"cmdstat_{command}", {"calls": 0})["calls"]
                   for s in (stats_before, stats_after)]
        return int(counted[1] - counted[0])

    assert calls("evalsha_ro") == 1  # the whole lookup is one script call (lookup_script.py)
    assert calls("zmscore") == 0 and calls("eval") == 0 and calls("evalsha") == 0
    assert calls("smismember") == 10  # inside it: email, domain, phone, linkedin, company × 2


async def test_redis_down_is_503_and_back_is_filtered_without_restart(redis_server):
    api_key = key()
    async with fake_upstream() as (fake, upstream):
        settings = Settings(upstream=upstream, redis=redis_server.url, store_timeout=0.5)
        async with running_proxy(settings) as proxy, aiohttp.ClientSession() as client:
            await add(redis_server.url, tenant_of(api_key), RuleType.EMAIL, "jane.doe@acme.com")
            r, doc = await task_result(client, proxy.url, api_key)
            assert r.status == 200 and emails(doc)[0] is None
            redis_server.stop()
            try:
                r, doc = await task_result(client, proxy.url, api_key)
                assert r.status == 503
                assert doc == {"detail": "suppression store unavailable"}
                async with client.get(f"{proxy.admin}/readyz") as ready:
                    assert ready.status == 503
            finally:
                redis_server.start()
            await add(redis_server.url, tenant_of(api_key), RuleType.EMAIL, "jane.doe@acme.com")
            r, doc = await task_result(client, proxy.url, api_key)
            assert r.status == 200 and emails(doc)[0] is None


async def test_redis_sets_are_hash_tagged_per_tenant(redis_url):
    api_key = key()
    await add(redis_url, tenant_of(api_key), RuleType.PHONE, "512-555-0123")
    client = aioredis.from_url(redis_url, decode_responses=True)
    try:
        members = await client.smembers(f"denyproxy:{{{tenant_of(api_key)}}}:phone")
        assert members == {"+15125550123"}
        expected = f"denyproxy:{{{tenant_of(api_key)}}}:phone"
        assert rule_key(tenant_of(api_key), RuleType.PHONE) == expected
        assert not await client.keys(f"*{api_key}*")  # the raw key is never stored
    finally:
        await client.aclose()
