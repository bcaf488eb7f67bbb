"""Named lists, the admin API and campaign scopes (issue #13) through the running proxy,
against the fake upstream and a real Redis (written directly: no Kafka here)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from proxy import cli
from proxy.settings import Settings
from rules.model import GLOBAL, RuleType, tenant_of
from rules.store import RedisStore
from tests.fake_openmart import person
from tests.harness import eventually, fake_upstream, running_proxy
from tests.test_company_proxy import ACME_ROW, OTHER_ROW, TIERS, search
from tests.test_suppression import add, emails, key, task_result

TOKEN = "admin-" + uuid.uuid4().hex
JANE, ADA = "jane.doe@acme.com", "https://www.linkedin.com/in/AdaLovelace/"


@pytest.fixture
async def env(redis_url):
    async with fake_upstream() as (fake, upstream):
        settings = Settings(upstream=upstream, redis=redis_url, admin_token=TOKEN)
        async with running_proxy(settings) as proxy, aiohttp.ClientSession() as client:
            yield fake, proxy, client


async def admin(
    client: aiohttp.ClientSession, proxy: Any, method: str, path: str, body: Any = None,
    token: str | None = TOKEN,
) -> tuple[int, Any]:
    auth = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with client.request(method, f"{proxy.admin}/admin/v1{path}", json=body,
                              headers=auth) as r:
        return r.status, (await r.json() if r.content_type == "application/json" else None)


async def new_list(client: aiohttp.ClientSession, proxy: Any, *entries: Any) -> str:
    status, made = await admin(client, proxy, "POST", "/lists", {"name": "Existing customers"})
    assert status == 201, made
    if entries:
        status, added = await admin(client, proxy, "POST", f"/lists/{made['id']}/entries",
                                    {"entries": list(entries)})
        assert status == 201 and not added["failed"], added
    return str(made["id"])


async def assign(client: aiohttp.ClientSession, proxy: Any, list_id: str, *keys: str) -> None:
    status, body = await admin(client, proxy, "PUT", f"/lists/{list_id}/assignments",
                               {"api_keys": list(keys)})
    assert status == 200 and body == {"tenants": sorted(tenant_of(k) for k in keys)}


async def jane_shown(client: aiohttp.ClientSession, proxy: Any, api_key: str,
                     campaign: str | None = None) -> bool:
    headers = {"X-Denyproxy-Campaign": campaign} if campaign else None
    r, doc = await task_result_with(client, proxy.url, api_key, headers)
    assert r.status == 200, doc
    return emails(doc)[0] == JANE


async def task_result_with(client: aiohttp.ClientSession, base: str, api_key: str,
                           extra: dict[str, str] | None) -> tuple[aiohttp.ClientResponse, Any]:
    if extra is None:
        return await task_result(client, base, api_key)
    async with aiohttp.ClientSession(headers=extra) as scoped:
        return await task_result(scoped, base, api_key)


async def test_admin_api_refuses_without_the_token_and_with_another(env):
    _, proxy, client = env
    assert (await admin(client, proxy, "GET", "/lists", token=None))[0] == 401
    assert (await admin(client, proxy, "GET", "/lists", token="wrong"))[0] == 401
    assert (await admin(client, proxy, "POST", "/lists", {"name": "x"}, token=None))[0] == 401
    assert (await admin(client, proxy, "GET", "/lists"))[0] == 200


async def test_admin_api_is_absent_without_a_configured_token(redis_url):
    async with fake_upstream() as (_, upstream), running_proxy(
        Settings(upstream=upstream, redis=redis_url)
    ) as proxy, aiohttp.ClientSession() as client:
        assert (await admin(client, proxy, "GET", "/lists"))[0] == 404
        assert (await admin(client, proxy, "POST", "/lists", {"name": "x"}))[0] == 404


async def test_create_fill_assign_reassign_unassign_delete_take_effect_at_once(env):
    _, proxy, client = env
    first, second = key(), key()
    list_id = await new_list(client, proxy, JANE)
    assert await jane_shown(client, proxy, first)  # not assigned yet
    await assign(client, proxy, list_id, first)
    assert not await jane_shown(client, proxy, first)
    assert await jane_shown(client, proxy, second)
    await assign(client, proxy, list_id, second)  # replace-all: the first key loses it
    assert await jane_shown(client, proxy, first)
    assert not await jane_shown(client, proxy, second)
    await assign(client, proxy, list_id)  # unassign all
    assert await jane_shown(client, proxy, second)
    await assign(client, proxy, list_id, first, second)
    assert not await jane_shown(client, proxy, first)
    assert (await admin(client, proxy, "DELETE", f"/lists/{list_id}"))[0] == 204
    assert await jane_shown(client, proxy, first) and await jane_shown(client, proxy, second)
    assert (await admin(client, proxy, "GET", f"/lists/{list_id}"))[0] == 404


async def test_entries_are_detected_counted_paged_and_removed(env):
    _, proxy, client = env
    list_id = await new_list(client, proxy)
    entries = ["Jane.Doe@ACME.com", JANE, "+1 (512) 555-1003", ADA, "not a thing",
               {"type": "phone", "value": "512-555-1002"}, {"type": "fax"}, 7]
    status, added = await admin(client, proxy, "POST", f"/lists/{list_id}/entries",
                                {"entries": entries})
    assert status == 201
    assert added["added"] == 4 and added["duplicates"] == 1
    assert [f["index"] for f in added["failed"]] == [4, 6, 7]
    status, again = await admin(client, proxy, "POST", f"/lists/{list_id}/entries",
                                {"entries": [JANE]})
    assert again == {"added": 0, "duplicates": 1, "failed": []}
    status, page = await admin(client, proxy, "GET", f"/lists/{list_id}/entries?type=phone&limit=1")
    assert status == 200 and len(page["data"]) == 1 and page["data"][0]["scope"] == "list"
    assert page["pagination"] == {"total": 2, "limit": 1, "offset": 0, "has_more": True}
    (_, info) = await admin(client, proxy, "GET", f"/lists/{list_id}")
    assert info["entry_count"] == 4 and info["name"] == "Existing customers"
    status, gone = await admin(client, proxy, "DELETE", f"/lists/{list_id}/entries",
                               {"values": ["JANE.DOE@acme.com", "nobody@acme.com"]})
    assert gone == {"deleted": 1}
    status, gone = await admin(client, proxy, "DELETE", f"/lists/{list_id}/entries",
                               {"ids": [page["data"][0]["id"]]})
    assert gone == {"deleted": 1}
    assert (await admin(client, proxy, "GET", f"/lists/{list_id}"))[1]["entry_count"] == 2


async def test_lists_crud_and_validation(env):
    _, proxy, client = env
    assert (await admin(client, proxy, "POST", "/lists", {"name": ""}))[0] == 400
    assert (await admin(client, proxy, "POST", "/lists", {"name": "x" * 501}))[0] == 400
    list_id = await new_list(client, proxy)
    status, patched = await admin(client, proxy, "PATCH", f"/lists/{list_id}",
                                  {"name": "Competitors", "description": "do not contact"})
    assert status == 200 and patched["name"] == "Competitors"
    assert patched["description"] == "do not contact"
    status, listed = await admin(client, proxy, "GET", "/lists")
    assert status == 200 and list_id in [item["id"] for item in listed["data"]]
    assert (await admin(client, proxy, "GET", "/lists/" + "0" * 32))[0] == 404
    assert (await admin(client, proxy, "GET", "/lists/not-an-id"))[0] == 404
    too_many = {"entries": ["a@b.com"] * 10_001}
    assert (await admin(client, proxy, "POST", f"/lists/{list_id}/entries", too_many))[0] == 413


async def test_tenant_lists_and_each_key_sees_only_its_own(env):
    _, proxy, client = env
    mine, other = key(), key()
    list_id = await new_list(client, proxy, JANE)
    await assign(client, proxy, list_id, mine)
    status, held = await admin(client, proxy, "GET", f"/tenants/{tenant_of(mine)}/lists")
    assert status == 200 and [item["id"] for item in held["data"]] == [list_id]
    assert (await admin(client, proxy, "GET", f"/tenants/{tenant_of(other)}/lists"))[1] == {
        "data": []}
    async with client.get(f"{proxy.url}/api/v2/deny-lists", headers={"X-API-Key": mine}) as r:
        assert r.status == 200
        assert (await r.json())["data"] == [{"id": list_id, "name": "Existing customers",
                                            "description": None, "entry_count": 1}]
    async with client.get(f"{proxy.url}/api/v2/deny-lists", headers={"X-API-Key": other}) as r:
        assert (await r.json()) == {"data": []}
    async with client.get(f"{proxy.url}/api/v2/deny-lists") as r:
        assert r.status == 401


async def campaign_rule(client: aiohttp.ClientSession, proxy: Any, api_key: str, campaign: str,
                        value: str) -> None:
    headers = {"X-API-Key": api_key, "X-Denyproxy-Campaign": campaign}
    async with client.post(f"{proxy.url}/api/v2/deny-rules", headers=headers,
                           json={"type": "email", "values": [value]}) as r:
        assert r.status == 200, await r.text()


async def test_campaign_rules_apply_only_with_their_header_never_across_keys_or_campaigns(env):
    fake, proxy, client = env
    mine, other = key(), key()
    await campaign_rule(client, proxy, mine, "spring-2026", JANE)
    assert await jane_shown(client, proxy, mine)
    assert not await jane_shown(client, proxy, mine, "spring-2026")
    assert await jane_shown(client, proxy, mine, "autumn")
    assert await jane_shown(client, proxy, other, "spring-2026")
    assert all("x-denyproxy-campaign" not in {h.lower() for h in seen.headers}
               for seen in fake.requests)
    headers = {"X-API-Key": mine, "X-Denyproxy-Campaign": "spring-2026"}
    async with client.post(f"{proxy.url}/api/v2/deny-rules/check", headers=headers,
                           json={"type": "email", "values": [JANE]}) as r:
        assert (await r.json()) == {"denied": {JANE: True}}
    async with client.post(f"{proxy.url}/api/v2/deny-rules/check", headers={"X-API-Key": mine},
                           json={"type": "email", "values": [JANE]}) as r:
        assert (await r.json()) == {"denied": {JANE: False}}


@pytest.mark.parametrize("campaign", ["", "a b", "x" * 129, "a*b", "a/b", "{x}"])
async def test_a_malformed_campaign_header_is_400(env, campaign):
    fake, proxy, client = env
    before = len(fake.requests)
    async with client.get(f"{proxy.url}/api/v1/task/x", headers={
            "X-API-Key": key(), "X-Denyproxy-Campaign": campaign}) as r:
        assert r.status == 400 and "X-Denyproxy-Campaign" in (await r.json())["detail"]
    assert len(fake.requests) == before


async def test_every_scope_alone_and_combined(env, redis_url):
    fake, proxy, client = env
    api_key, other, tag = key(), key(), uuid.uuid4().hex[:12]
    fake.people = [person(scope, tag, "acme.com", []) for scope in ("g", "k", "l", "c")]
    address = {scope: f"{scope}.{tag}@acme.com" for scope in ("g", "k", "l", "c")}
    await add(redis_url, GLOBAL, RuleType.EMAIL, address["g"])
    await add(redis_url, tenant_of(api_key), RuleType.EMAIL, address["k"])
    await assign(client, proxy, await new_list(client, proxy, address["l"]), api_key)
    await campaign_rule(client, proxy, api_key, "c1", address["c"])
    for who, campaign, shown in [
        (other, None, ["k", "l", "c"]), (other, "c1", ["k", "l", "c"]),
        (api_key, None, ["c"]), (api_key, "c1", []),
    ]:
        extra = {"X-Denyproxy-Campaign": campaign} if campaign else None
        r, doc = await task_result_with(client, proxy.url, who, extra)
        assert r.status == 200
        assert [e.split(".")[0] for e in emails(doc) if e] == shown, (who == api_key, campaign)


async def test_one_redis_round_trip_per_response_with_lists_and_a_campaign(env, redis_url):
    """As test_suppression's: lists and the campaign are scopes of that one read."""
    fake, proxy, client = env
    api_key = key()
    list_ids = [await new_list(client, proxy, JANE), await new_list(client, proxy, ADA)]
    for list_id in list_ids:
        status, _ = await admin(client, proxy, "PUT", f"/lists/{list_id}/assignments",
                                {"tenants": [tenant_of(api_key)]})
        assert status == 200
    # 10 people: the request stays under Redis's 16 KB read buffer, so one round trip is one
    # read (a larger one is read in several chunks)
    fake.people = [person(f"P{i}", "X", f"d{i}.com", [f"+1512555{2000 + i}"]) for i in range(10)]
    headers = {"X-API-Key": api_key, "X-Denyproxy-Campaign": "c1"}
    async with client.post(f"{proxy.url}/api/v1/task/batch/find_people", json=[{"domain": "a"}],
                           headers=headers) as r:
        batch = (await r.json())["batch_id"]
    async with client.get(f"{proxy.url}/api/v1/task/batch/{batch}/task_ids",
                          headers=headers) as r:
        (task_id,) = await r.json()
    async with client.get(f"{proxy.url}/api/v1/task/{task_id}", headers=headers):
        pass  # warm-up: the connection, and the key's assigned lists read once
    # people not seen yet: no lookup of them is cached (tracked_cache.py), Redis is asked
    fake.people = [person(f"P{i}", "X", f"d{i}.com", [f"+1512556{2000 + i}"]) for i in range(10)]
    monitor = aioredis.from_url(redis_url)
    try:
        before = await monitor.info("stats")
        stats_before = await monitor.info("commandstats")
        async with client.get(f"{proxy.url}/api/v1/task/{task_id}", headers=headers) as r:
            assert r.status == 200
        after = await monitor.info("stats")
        stats_after = await monitor.info("commandstats")
    finally:
        await monitor.aclose()
    own_reads = 2
    assert after["total_reads_processed"] - before["total_reads_processed"] - own_reads <= 1

    def calls(command: str) -> int:
        counted = [s.get(f"cmdstat_{command}", {"calls": 0})["calls"]
                   for s in (stats_before, stats_after)]
        return int(counted[1] - counted[0])

    assert calls("evalsha_ro") == 1  # every scope in the one lookup script call
    assert calls("get") == 1 and calls("smembers") == 0  # the key's version; lists cached
    assert calls("smismember") == 5 * 5  # 5 types (with company) × (key, global, 2 lists, campaign)


async def test_the_admin_token_can_come_from_a_file_and_is_never_shown(redis_url, tmp_path):
    token_file = tmp_path / "admin-token"
    token_file.write_text(f"{TOKEN}\n")
    settings = Settings(redis=redis_url, admin_token_file=str(token_file))
    assert TOKEN not in repr(Settings(admin_token=TOKEN))
    async with fake_upstream() as (_, upstream), running_proxy(
        settings.with_(upstream=upstream)
    ) as proxy, aiohttp.ClientSession() as client:
        assert (await admin(client, proxy, "GET", "/lists"))[0] == 200
        assert (await admin(client, proxy, "GET", "/lists", token="other"))[0] == 401


async def test_the_catalogue_lists_a_campaigns_rules_with_its_header_only(env):
    _, proxy, client = env
    mine = key()
    await campaign_rule(client, proxy, mine, "q3", JANE)
    async with client.get(f"{proxy.url}/api/v2/deny-rules", headers={
            "X-API-Key": mine, "X-Denyproxy-Campaign": "q3"}) as r:
        page = await r.json()
    assert [(rec["value"], rec["scope"]) for rec in page["data"]] == [(JANE, "campaign")]
    async with client.get(f"{proxy.url}/api/v2/deny-rules", headers={"X-API-Key": mine}) as r:
        assert (await r.json())["data"] == []
    assert not await jane_shown(client, proxy, mine, "q3")

    async def counted() -> bool:
        async with client.get(f"{proxy.url}/api/v2/deny-rules", headers={
                "X-API-Key": mine, "X-Denyproxy-Campaign": "q3"}) as r:
            return bool((await r.json())["data"][0]["suppressions"] == 1)

    await eventually(counted, "the campaign rule's suppression to be counted")


def test_the_lists_cli_creates_fills_and_assigns_without_kafka(redis_url, capsys):
    mine = key()
    cli.main(["store", "init", "--redis", redis_url])  # as an operator would, first
    capsys.readouterr()
    assert cli.main(["lists", "create", "Competitors", "--redis", redis_url]) == 0
    list_id = capsys.readouterr().out.strip()
    assert cli.main(["lists", "add", list_id, JANE, "nonsense", "--redis", redis_url]) == 0
    assert "1 entries sent" in capsys.readouterr().out
    assert cli.main(["lists", "assign", list_id, "--api-key", mine, "--redis", redis_url]) == 0
    assert cli.main(["lists", "list", "--redis", redis_url]) == 0
    assert f"{list_id}          1  Competitors" in capsys.readouterr().out

    async def looked_up() -> dict[RuleType, set[str]]:
        store = RedisStore.from_url(redis_url, timeout=2.0)
        try:
            return await store.lookup(tenant_of(mine), {RuleType.EMAIL: [JANE]})
        finally:
            await store.aclose()

    assert asyncio.run(looked_up()) == {RuleType.EMAIL: {JANE}}


async def test_without_kafka_lists_are_not_written_into_a_store_a_consumer_keeps(redis_url):
    """A rebuild from the topic would drop them: refused (503), like the rules API's writes."""
    topic = f"kept-{uuid.uuid4().hex[:8]}"
    redis = aioredis.from_url(redis_url)
    await redis.set(f"denyproxy:{{state}}:{topic}:ready", "1")
    try:
        async with fake_upstream() as (_, upstream), running_proxy(Settings(
            upstream=upstream, redis=redis_url, admin_token=TOKEN, topic=topic,
        )) as proxy, aiohttp.ClientSession() as client:
            status, body = await admin(client, proxy, "POST", "/lists", {"name": "x"})
            assert status == 503 and "Kafka" in body["detail"]
    finally:
        await redis.delete(f"denyproxy:{{state}}:{topic}:ready")
        await redis.aclose()


async def test_a_list_entry_counts_its_suppressions(env):
    _, proxy, client = env
    mine = key()
    list_id = await new_list(client, proxy, JANE)
    await assign(client, proxy, list_id, mine)
    assert not await jane_shown(client, proxy, mine)

    async def counted() -> bool:
        _, page = await admin(client, proxy, "GET", f"/lists/{list_id}/entries")
        return bool(page["data"][0]["suppressions"] == 1)

    await eventually(counted, "the list entry's suppression to be counted")


async def test_company_entries_are_stored_per_matching_tier(env):
    _, proxy, client = env
    list_id = await new_list(client, proxy)
    entries = [{"type": "company", "company_name": "Acme Corp.", "city": "Austin",
                "website_url": "https://www.acme-corp.com/about"},
               {"type": "company", "city": "Austin"}]
    status, added = await admin(client, proxy, "POST", f"/lists/{list_id}/entries",
                                {"entries": entries})
    assert status == 201 and added["added"] == 3  # domain, name + city, name
    assert [f["index"] for f in added["failed"]] == [1]
    _, page = await admin(client, proxy, "GET", f"/lists/{list_id}/entries?type=company")
    assert page["pagination"]["total"] == 3
    assert any(r["value"] == "domain:acme-corp.com" for r in page["data"])


@pytest.mark.parametrize("entry", TIERS)
async def test_a_company_entry_of_a_list_removes_the_company_for_assigned_keys_only(env, entry):
    fake, proxy, client = env
    fake.search_rows = [ACME_ROW, OTHER_ROW]
    assigned, other = key(), key()
    await assign(client, proxy, await new_list(client, proxy, {"type": "company", **entry}),
                 assigned)
    suppressed, doc = await search(client, proxy, assigned)
    assert doc["data"] == [OTHER_ROW] and suppressed == "1"
    _, doc = await search(client, proxy, other)
    assert doc["data"] == [ACME_ROW, OTHER_ROW]
