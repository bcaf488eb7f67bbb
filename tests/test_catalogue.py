"""The rule catalogue (issue #12) through the real proxy and a real Redis: records, listing,
get/delete/bulk-delete, export, expiry at the second, suppression counts, tenant isolation."""

from __future__ import annotations

import asyncio
import csv
import io

import aiohttp
import orjson
import pytest
import redis.asyncio as aioredis

import rules.catalogue.hits
from proxy.settings import Settings
from rules.model import RuleType, tenant_of
from rules.store import rule_key
from tests.harness import eventually, fake_upstream, running_proxy
from tests.test_rules_api import call, key
from tests.test_suppression import emails, task_result

PATH = "/api/v2/deny-rules"
DELETED_ONE = {"status": "success", "deleted": 1}
FIELDS = {"id", "type", "value", "scope", "reason", "source", "event_id", "created_at",
          "updated_at", "enforced_at", "expires_at", "suppressions", "last_suppressed_at"}


@pytest.fixture
async def proxy(redis_url, monkeypatch):
    monkeypatch.setattr(rules.catalogue.hits, "FLUSH_SECONDS", 0.1)
    async with fake_upstream() as (_, upstream):
        settings = Settings(upstream=upstream, redis=redis_url)
        async with running_proxy(settings) as running, aiohttp.ClientSession() as client:
            yield running, client


async def get(client, url: str, api_key: str) -> tuple[int, dict]:
    async with client.get(url, headers={"X-API-Key": api_key}) as r:
        return r.status, await r.json()


async def add(client, base: str, api_key: str, kind: str, values: list[str], **extra) -> None:
    status, body = await call(client, "POST", base + PATH, api_key,
                              {"type": kind, "values": values, **extra})
    assert (status, body) == (200, {"status": "success"})


async def listing(client, base: str, api_key: str, query: str = "") -> dict:
    status, body = await get(client, f"{base}{PATH}?{query}", api_key)
    assert status == 200, body
    return body


def values(page: dict) -> list[str]:
    return [r["value"] for r in page["data"]]


async def test_a_record_per_rule_and_a_replayed_add_keeps_its_id_and_created_at(proxy):
    running, client = proxy
    api_key = key()
    await add(client, running.url, api_key, "email", ["Jane.Doe@ACME.com"],
              reason="unsubscribed 2026-11-30")
    (record,) = (await listing(client, running.url, api_key))["data"]
    assert set(record) == FIELDS
    assert (record["type"], record["value"]) == ("email", "jane.doe@acme.com")
    assert record["scope"] == "key"
    assert record["reason"] == "unsubscribed 2026-11-30" and record["source"] == "deny-rules-api"
    assert record["expires_at"] is None and record["suppressions"] == 0
    assert record["created_at"].endswith("Z") and record["event_id"]
    await add(client, running.url, api_key, "email", ["jane.doe@acme.com"])
    (again,) = (await listing(client, running.url, api_key))["data"]
    assert (again["id"], again["created_at"]) == (record["id"], record["created_at"])
    assert again["updated_at"] >= record["updated_at"] and again["event_id"] != record["event_id"]


async def test_listing_sorts_filters_searches_and_pages(proxy):
    running, client = proxy
    api_key = key()
    for value in ("bob@acme.com", "alice@globex.com", "carol@acme.com"):
        await add(client, running.url, api_key, "email", [value])
        await asyncio.sleep(0.003)  # created_at is in ms: two adds in one ms tie (broken by id)
    await add(client, running.url, api_key, "domain", ["initech.com"])
    base, page = running.url, await listing(client, running.url, api_key)
    assert values(page) == ["initech.com", "carol@acme.com", "alice@globex.com", "bob@acme.com"]
    assert page["pagination"] == {"total": 4, "limit": 50, "offset": 0, "has_more": False}
    asc = await listing(client, base, api_key, "sort_order=asc&type=email")
    assert values(asc) == ["bob@acme.com", "alice@globex.com", "carol@acme.com"]
    by_value = await listing(client, base, api_key, "sort_by=value&sort_order=asc")
    assert values(by_value) == sorted(values(page))
    by_type = await listing(client, base, api_key, "sort_by=type&sort_order=asc")
    assert values(by_type) == ["initech.com", "alice@globex.com", "bob@acme.com", "carol@acme.com"]
    typed = await listing(client, base, api_key, "sort_by=value&type=email&sort_order=desc")
    assert values(typed) == ["carol@acme.com", "bob@acme.com", "alice@globex.com"]
    found = await listing(client, base, api_key, "search=ACME&sort_by=value&sort_order=asc")
    assert values(found) == ["bob@acme.com", "carol@acme.com"]
    assert found["pagination"]["total"] == 2
    second = await listing(client, base, api_key, "limit=2&offset=2")
    assert values(second) == values(page)[2:]
    assert second["pagination"] == {"total": 4, "limit": 2, "offset": 2, "has_more": False}
    first = await listing(client, base, api_key, "sort_by=type&limit=1&offset=0&type=email")
    assert first["pagination"]["has_more"] and values(first) == ["carol@acme.com"]


@pytest.mark.parametrize("query", ["limit=1001", "limit=0", "offset=-1", "sort_by=reason",
                                   "sort_order=up", "type=fax"])
async def test_bad_listing_queries_are_400_with_a_detail(proxy, query):
    running, client = proxy
    status, body = await get(client, f"{running.url}{PATH}?{query}", key())
    assert status == 400 and body["detail"]


async def test_get_and_delete_by_id_and_another_keys_ids_are_404(proxy, redis_url):
    running, client = proxy
    owner, other = key(), key()
    await add(client, running.url, owner, "email", ["jane.doe@acme.com"])
    (record,) = (await listing(client, running.url, owner))["data"]
    url = f"{running.url}{PATH}/{record['id']}"
    assert await get(client, url, owner) == (200, record)
    assert (await get(client, url, other))[0] == 404
    assert (await listing(client, running.url, other))["data"] == []
    assert (await call(client, "DELETE", url, other, b""))[0] == 404
    _, doc = await task_result(client, running.url, owner)
    assert emails(doc)[0] is None
    assert await call(client, "DELETE", url, owner, b"") == (200, {"status": "success"})
    assert (await get(client, url, owner))[0] == 404
    _, doc = await task_result(client, running.url, owner)
    assert emails(doc)[0] == "jane.doe@acme.com"
    redis = aioredis.from_url(redis_url, decode_responses=True)
    email_set = rule_key(tenant_of(owner), RuleType.EMAIL)
    assert not await redis.sismember(email_set, "jane.doe@acme.com")
    await redis.aclose()


async def test_bulk_delete_by_ids_and_all_except(proxy):
    running, client = proxy
    api_key, bulk = key(), f"{running.url}{PATH}/bulk-delete"
    await add(client, running.url, api_key, "email", ["a@acme.com", "b@acme.com", "c@acme.com"])
    await add(client, running.url, api_key, "phone", ["+15125551000"])
    ids = {r["value"]: r["id"] for r in (await listing(client, running.url, api_key))["data"]}
    body = {"ids": [ids["a@acme.com"], "f" * 40]}
    assert await call(client, "POST", bulk, api_key, body) == (200, DELETED_ONE)
    body = {"all": True, "type": "email", "except": [ids["c@acme.com"]]}
    assert await call(client, "POST", bulk, api_key, body) == (200, DELETED_ONE)
    left = await listing(client, running.url, api_key, "sort_by=value&sort_order=asc")
    assert values(left) == ["+15125551000", "c@acme.com"]
    assert await call(client, "POST", bulk, api_key, {"all": True}) == (
        200, {"status": "success", "deleted": 2})
    assert (await listing(client, running.url, api_key))["data"] == []


async def test_another_keys_bulk_deletes_search_and_export_never_reach_the_owners_rules(proxy):
    running, client = proxy
    owner, other, bulk = key(), key(), f"{running.url}{PATH}/bulk-delete"
    await add(client, running.url, owner, "email", ["owner@acme.com"])
    (record,) = (await listing(client, running.url, owner))["data"]
    nothing = {"status": "success", "deleted": 0}
    assert await call(client, "POST", bulk, other, {"ids": [record["id"]]}) == (200, nothing)
    assert await call(client, "POST", bulk, other, {"all": True}) == (200, nothing)
    assert (await listing(client, running.url, other, "search=owner"))["data"] == []
    async with client.get(f"{running.url}{PATH}/export?format=csv",
                          headers={"X-API-Key": other}) as r:
        assert r.status == 200 and b"owner@acme.com" not in await r.read()
    assert (await listing(client, running.url, owner))["data"] == [record]


async def test_export_streams_every_record_as_csv_and_ndjson(proxy):
    running, client = proxy
    api_key = key()
    await add(client, running.url, api_key, "email", [f"u{i}@acme.com" for i in range(1200)],
              reason='said "no", twice')
    await add(client, running.url, api_key, "domain", ["initech.com"])
    headers = {"X-API-Key": api_key}
    async with client.get(f"{running.url}{PATH}/export?format=ndjson", headers=headers) as r:
        lines = (await r.read()).splitlines()
    records = [orjson.loads(line) for line in lines]
    assert len(records) == 1201 and len({r["id"] for r in records}) == 1201
    assert set(records[0]) == FIELDS
    csv_url = f"{running.url}{PATH}/export?format=csv&type=email"
    async with client.get(csv_url, headers=headers) as r:
        assert r.headers["Content-Type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(await r.text())))
    assert len(rows) == 1200 and {row["reason"] for row in rows} == {'said "no", twice'}
    other = {"X-API-Key": key()}
    async with client.get(f"{running.url}{PATH}/export?format=ndjson", headers=other) as r:
        assert await r.read() == b""


async def test_a_rule_with_a_2_s_ttl_suppresses_then_stops_and_leaves_the_listing(
    proxy, redis_url
):
    running, client = proxy
    api_key = key()
    await add(client, running.url, api_key, "email", ["jane.doe@acme.com"], ttl_seconds=2)
    _, doc = await task_result(client, running.url, api_key)
    assert emails(doc)[0] is None  # enforced now
    (record,) = (await listing(client, running.url, api_key))["data"]
    assert record["expires_at"] is not None

    async def unsuppressed() -> bool:
        _, doc = await task_result(client, running.url, api_key)
        return emails(doc)[0] == "jane.doe@acme.com"

    await eventually(unsuppressed, "the rule to expire", timeout=10)
    assert (await listing(client, running.url, api_key))["data"] == []
    redis = aioredis.from_url(redis_url, decode_responses=True)
    members = await redis.smembers(rule_key(tenant_of(api_key), RuleType.EMAIL))
    await redis.aclose()
    assert members == set()  # swept with its record, not just hidden


async def test_expires_at_and_ttl_are_checked(proxy):
    running, client = proxy
    later = "2099-01-01T00:00:00Z"
    for extra in ({"ttl_seconds": 0}, {"ttl_seconds": "5"}, {"expires_at": "2020-01-01T00:00:00Z"},
                  {"expires_at": "tomorrow"}, {"ttl_seconds": 5, "expires_at": later},
                  {"reason": "x" * 501}):
        status, body = await call(client, "POST", running.url + PATH, key(),
                                  {"type": "email", "values": ["a@acme.com"], **extra})
        assert status == 400 and body["detail"], extra


async def test_suppression_counts_follow_filtered_responses(proxy):
    running, client = proxy
    api_key = key()
    await add(client, running.url, api_key, "email", ["jane.doe@acme.com", "never@seen.io"])
    for _ in range(3):
        _, doc = await task_result(client, running.url, api_key)
        assert emails(doc)[0] is None

    async def counted() -> bool:
        page = await listing(client, running.url, api_key, "sort_by=value&sort_order=asc")
        return [r["suppressions"] for r in page["data"]] == [3, 0]

    await eventually(counted, "the counts to be flushed", timeout=10)
    page = await listing(client, running.url, api_key, "sort_by=value&sort_order=asc")
    assert page["data"][0]["last_suppressed_at"] and page["data"][1]["last_suppressed_at"] is None
