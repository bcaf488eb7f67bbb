"""Company rules end to end: written through the deny-rules API (real Redis; Kafka at the end),
enforced on search rows, business records and people, both policies, every tier."""

from __future__ import annotations

import uuid
from typing import Any

import aiohttp
import orjson
import pytest
import redis.asyncio as aioredis

from proxy.preflight import DETAIL
from proxy.settings import Settings
from tests.fake_openmart import person
from tests.harness import Running, fake_upstream, running_proxy, until_ready
from tests.test_rules_api import PATH, call
from tests.test_suppression import task_result

ACME_ROW = {"id": "r1", "content": {
    "business_name": "Acme Store GmbH", "city": "Berlin", "openmart_id": "om_1",
    "website": "https://www.acme.com/shop", "business_emails": ["info@acme.com"]}}
OTHER_ROW = {"id": "r2", "content": {
    "business_name": "Other Shop", "city": "Berlin", "website": "https://other.io"}}
TIERS = [
    pytest.param({"external_id": "om_1"}, id="external_id"),
    pytest.param({"website_url": "http://shop.ACME.com/de"}, id="domain"),
    pytest.param({"company_name": "ACME Store", "city": "berlin"}, id="name_city"),
]


def key() -> str:
    return f"om_{uuid.uuid4().hex}"


@pytest.fixture(params=["strip", "drop"])
async def env(request, redis_url):
    async with fake_upstream() as (fake, upstream):
        settings = Settings(upstream=upstream, redis=redis_url, policy=request.param)
        async with running_proxy(settings) as proxy, aiohttp.ClientSession() as client:
            yield fake, proxy, client


async def deny(client: aiohttp.ClientSession, proxy: Running, api_key: str, *entries: Any) -> None:
    status, body = await call(client, "POST", proxy.url + PATH, api_key,
                              {"type": "company", "values": list(entries)})
    assert (status, body) == (200, {"status": "success"})


async def search(client: aiohttp.ClientSession, proxy: Running, api_key: str) -> tuple[str, Any]:
    async with client.post(f"{proxy.url}/api/v1/search", json={"query": "shops"},
                           headers={"X-API-Key": api_key}) as r:
        assert r.status == 200
        return r.headers["X-Denyproxy-Suppressed"], await r.json()


@pytest.mark.parametrize("entry", TIERS)
async def test_each_tier_removes_a_search_row(env, entry):
    fake, proxy, client = env
    fake.search_rows = [ACME_ROW, OTHER_ROW]
    api_key = key()
    await deny(client, proxy, api_key, entry)
    suppressed, doc = await search(client, proxy, api_key)
    assert doc["data"] == [OTHER_ROW] and suppressed == "1"
    _, doc = await search(client, proxy, key())  # another key: its own rules only
    assert doc["data"] == [ACME_ROW, OTHER_ROW]


async def test_business_records_by_id_and_by_their_emails_domain(env):
    fake, proxy, client = env
    api_key = key()
    url = f"{proxy.url}/api/v1/business_records/list/openmart_id"
    await deny(client, proxy, api_key, {"external_id": "om_2"})
    async with client.get(url, data=b'["om_1", "om_2"]', headers={"X-API-Key": api_key}) as r:
        assert [row["openmart_id"] for row in await r.json()] == ["om_1"]
    await deny(client, proxy, api_key, {"website_url": "acme.com"})  # info@acme.com: every row
    async with client.get(url, data=b'["om_1", "om_3"]', headers={"X-API-Key": api_key}) as r:
        assert await r.json() == []


def people() -> list[dict[str, Any]]:
    acme = [person("Jane", "Doe", "acme.com", []), person("Ada", "Lovelace", "acme.com", [])]
    acme[1]["email"] = None  # no address: found by company name and city
    acme[1]["company"] = {"google_place_id": "ChIJacme"}
    return [*acme, person("Karl", "Marx", "other.io", [])]


@pytest.mark.parametrize(("entry", "gone"), [
    ({"external_id": "ChIJacme"}, ["Ada"]),
    ({"website_url": "https://acme.com"}, ["Jane"]),
    ({"company_name": "Acme, Inc.", "city": "AUSTIN"}, ["Jane", "Ada"]),
])
async def test_people_of_the_company_are_removed(env, entry, gone):
    fake, proxy, client = env
    fake.people = people()
    api_key = key()
    await deny(client, proxy, api_key, entry)
    r, doc = await task_result(client, proxy.url, api_key)
    names = [p["first_name"] for p in doc["data"]]
    assert names == [n for n in ("Jane", "Ada", "Karl") if n not in gone]
    assert r.headers["X-Denyproxy-Suppressed"] == str(len(gone))


@pytest.mark.parametrize("name_only", [False, True])
async def test_name_alone_matches_only_with_the_flag(redis_url, name_only):
    async with fake_upstream() as (fake, upstream):
        settings = Settings(upstream=upstream, redis=redis_url, company_name_only_match=name_only)
        async with running_proxy(settings) as proxy, aiohttp.ClientSession() as client:
            fake.search_rows = [ACME_ROW, OTHER_ROW]
            api_key = key()
            await deny(client, proxy, api_key, {"name": "Acme Store Inc."})  # Puffle's shape
            _, doc = await search(client, proxy, api_key)
            status, check = await call(client, "POST", proxy.url + PATH + "/check", api_key,
                                       {"type": "company", "values": ["name:acme store"]})
    assert doc["data"] == ([OTHER_ROW] if name_only else [ACME_ROW, OTHER_ROW])
    assert (status, check) == (200, {"denied": {"name:acme store": name_only}})


async def test_delete_restores_and_the_catalogue_lists_the_keys(redis_url):
    async with fake_upstream() as (fake, upstream):
        settings = Settings(upstream=upstream, redis=redis_url)
        async with running_proxy(settings) as proxy, aiohttp.ClientSession() as client:
            fake.search_rows = [ACME_ROW, OTHER_ROW]
            api_key = key()
            entry = {"website_url": "acme.com", "external_id": "om_1", "reason": "customer"}
            await deny(client, proxy, api_key, entry)
            status, listing = await call(client, "GET", f"{proxy.url}{PATH}?type=company",
                                         api_key, b"")
            assert status == 200
            records = {r["value"]: r["reason"] for r in listing["data"]}
            assert records == {"id:om_1": "customer", "domain:acme.com": "customer"}
            status, _ = await call(client, "DELETE", proxy.url + PATH, api_key,
                                   {"type": "company", "values": [entry]})
            _, doc = await search(client, proxy, api_key)
    assert status == 200 and doc["data"] == [ACME_ROW, OTHER_ROW]


async def test_bad_entries_are_400_naming_each_and_change_nothing(redis_url):
    async with fake_upstream() as (fake, upstream):
        settings = Settings(upstream=upstream, redis=redis_url)
        async with running_proxy(settings) as proxy, aiohttp.ClientSession() as client:
            fake.search_rows = [ACME_ROW]
            api_key = key()
            values = [{"website_url": "acme.com"}, {"city": "Berlin"}, "acme.com"]
            status, body = await call(client, "POST", proxy.url + PATH, api_key,
                                      {"type": "company", "values": values})
            _, doc = await search(client, proxy, api_key)
    assert status == 400 and doc["data"] == [ACME_ROW]
    assert body["detail"].startswith("2 values are not a valid company: values[1]: a company")
    assert "values[2]: a string must be a company key" in body["detail"]


async def test_company_keys_join_the_one_lookup(redis_url):
    """One read per response, company sets included (SMISMEMBER per type and scope). Nothing is
    denied here, so no suppression count is flushed to Redis while it is measured."""
    async with fake_upstream() as (fake, upstream):
        settings = Settings(upstream=upstream, redis=redis_url)
        async with running_proxy(settings) as proxy, aiohttp.ClientSession() as client:
            fake.search_rows = [OTHER_ROW]
            api_key = key()
            await deny(client, proxy, api_key, {"external_id": "om_404"})
            await search(client, proxy, api_key)  # warm-up: the pool's connection
            # rows not seen yet: their lookup is no cache hit (tracked_cache.py), Redis is asked
            fake.search_rows = [ACME_ROW, OTHER_ROW] * 20
            monitor = aioredis.from_url(redis_url)
            try:
                before = await monitor.info("stats")
                stats_before = await monitor.info("commandstats")
                suppressed, doc = await search(client, proxy, api_key)
                after = await monitor.info("stats")
                stats_after = await monitor.info("commandstats")
            finally:
                await monitor.aclose()
    assert doc["data"] == [ACME_ROW, OTHER_ROW] * 20 and suppressed == "0"
    own_reads = 2  # our second INFO call, and the first one's reply is counted before it
    assert after["total_reads_processed"] - before["total_reads_processed"] - own_reads <= 1

    def calls(command: str) -> int:
        counted = [s.get(f"cmdstat_{command}", {"calls": 0})["calls"]
                   for s in (stats_before, stats_after)]
        return int(counted[1] - counted[0])

    assert calls("evalsha_ro") == 1  # the whole lookup is one script call (lookup_script.py)
    assert calls("smismember") == 6  # company, email, domain × 2 scopes: no phone or profile


async def test_matches_are_counted_by_tier(redis_url):
    async with fake_upstream() as (fake, upstream):
        settings = Settings(upstream=upstream, redis=redis_url)
        async with running_proxy(settings) as proxy, aiohttp.ClientSession() as client:
            fake.search_rows = [ACME_ROW, OTHER_ROW]
            api_key = key()
            before = await tier_count(client, proxy, "domain")
            await deny(client, proxy, api_key, {"website_url": "other.io"})
            await search(client, proxy, api_key)
            assert await tier_count(client, proxy, "domain") == before + 1
            async with client.get(f"{proxy.admin}/metrics") as r:
                assert "other.io" not in await r.text()


async def tier_count(client: aiohttp.ClientSession, proxy: Running, tier: str) -> float:
    async with client.get(f"{proxy.admin}/metrics") as r:
        text = await r.text()
    line = f'denyproxy_company_matches_total{{tier="{tier}"}} '
    return next((float(x.removeprefix(line)) for x in text.splitlines() if x.startswith(line)), 0)


async def test_with_kafka_company_rules_travel_as_events(redis_url, kafka_bootstrap):
    topic = f"rules-{uuid.uuid4().hex[:8]}"
    async with fake_upstream() as (fake, upstream):
        settings = Settings(upstream=upstream, redis=redis_url, kafka=kafka_bootstrap,
                            topic=topic, group=f"g-{topic}", policy="drop")
        async with running_proxy(settings) as proxy, aiohttp.ClientSession() as client:
            await until_ready(client, proxy)
            fake.people = people()
            api_key = key()
            await deny(client, proxy, api_key, {"website_url": "acme.com", "reason": "customer"},
                       {"company_name": "Other", "city": "Austin", "reason": "competitor"})
            _, doc = await task_result(client, proxy.url, api_key)
    assert [p["first_name"] for p in doc["data"]] == ["Ada"]  # no email: its name is Acme's



@pytest.mark.parametrize("preflight", [True, False])
async def test_preflight_refuses_a_submit_for_a_denied_company(redis_url, preflight):
    async with fake_upstream() as (fake, upstream):
        settings = Settings(upstream=upstream, redis=redis_url, company_preflight=preflight)
        async with running_proxy(settings) as proxy, aiohttp.ClientSession() as client:
            api_key = key()
            await deny(client, proxy, api_key, {"website_url": "acme.com"},
                       {"company_name": "Globex", "city": "Springfield"})
            tasks = [{"domain": "@other.io", "title": "CEO"},
                     {"domain": "@www.acme.com", "title": "CEO"},
                     {"domain": "x.io", "company_name": "Globex Corp.", "city": "springfield"}]
            url = f"{proxy.url}/api/v1/task/batch/find_people"
            seen = len(fake.requests)
            async with client.post(url, json=tasks, headers={"X-API-Key": api_key}) as r:
                refused = (r.status, await r.json())
            sent = len(fake.requests) - seen
            body = orjson.dumps(tasks[:1])
            async with client.post(url, data=body, headers={"X-API-Key": api_key}) as r:
                assert r.status == 200 and fake.last().body == body  # forwarded as it came
            async with client.post(url, json=tasks, headers={"X-API-Key": key()}) as r:
                assert r.status == 200  # another key: not its rules
    if preflight:
        assert refused == (422, {"detail": DETAIL, "tasks": [1, 2]}) and sent == 0
    else:
        assert refused[0] == 200 and sent == 1


async def test_the_embedded_default_store_enforces_company_rules_too():
    async with (
        fake_upstream() as (fake, upstream),
        running_proxy(Settings(upstream=upstream)) as proxy,
        aiohttp.ClientSession() as client,
    ):
        fake.search_rows = [ACME_ROW, OTHER_ROW]
        api_key = key()
        await deny(client, proxy, api_key, {"external_id": "om_1"})
        suppressed, doc = await search(client, proxy, api_key)
    assert doc["data"] == [OTHER_ROW] and suppressed == "1"
