"""Lists and campaigns in the stores (the memory store and a real Redis), and on the wire."""

from __future__ import annotations

import time
import uuid

import orjson
import pytest
import redis.asyncio as aioredis

from rules import events
from rules.event_fields import InvalidEventError
from rules.lists.events import encode_list
from rules.model import GLOBAL, ListChange, RuleChange, RuleType, tenant_of
from rules.scopes import campaign_scope, list_scope, new_list_id
from rules.store import Limits, MemoryStore, RedisStore, TooManyWritesError, rule_key
from rules.store.keys import slot_of

EMAIL = RuleType.EMAIL


@pytest.fixture(params=["memory", "redis", "redis-cached", "cluster"])
async def store(request):
    if request.param == "memory":
        yield MemoryStore()
        return
    cluster = request.param == "cluster"
    url = request.getfixturevalue("redis_cluster_url" if cluster else "redis_url")
    cache = request.param == "redis-cached"  # the local read path (tracked_cache.py)
    redis = RedisStore.from_url(url, timeout=2.0, cluster=cluster, cache=cache)
    await redis.mark_initialised()
    yield redis
    await redis.aclose()


def tenant() -> str:
    return tenant_of(uuid.uuid4().hex)


async def test_assigned_lists_are_looked_up_until_unassigned_or_deleted(store):
    mine, other, list_id = tenant(), tenant(), new_list_id()
    value = f"{uuid.uuid4().hex}@acme.com"
    await store.apply([
        ListChange("create", list_id, time.time(), "Competitors"),
        RuleChange("add", list_scope(list_id), EMAIL, (value,)),
        ListChange("assign", list_id, time.time(), tenants=(mine,)),
    ])
    assert await store.lookup(mine, {EMAIL: [value]}) == {EMAIL: {value}}
    assert await store.lookup(other, {EMAIL: [value]}) == {}
    assert await store.lookup(mine, {EMAIL: [value]}, include_global=False) == {}
    await store.apply([ListChange("assign", list_id, time.time(), tenants=(other,))])
    assert await store.lookup(mine, {EMAIL: [value]}) == {}
    assert await store.lookup(other, {EMAIL: [value]}) == {EMAIL: {value}}
    (info,) = await store.lists.lists([list_id])
    assert (info.name, info.entry_count) == ("Competitors", 1)
    await store.apply([ListChange("delete", list_id, time.time())])
    assert await store.lookup(other, {EMAIL: [value]}) == {}
    assert await store.lists.lists([list_id]) == []
    assert await store.lists.list_tenants(list_id) == []


async def test_changes_to_a_missing_list_change_nothing(store):
    list_id, mine = new_list_id(), tenant()
    await store.apply([ListChange("assign", list_id, time.time(), tenants=(mine,)),
                       ListChange("update", list_id, time.time(), name="x")])
    assert await store.lists.lists([list_id]) == []
    assert (await store.lists.assigned(mine)).ids == ()


async def test_campaign_rules_only_with_the_campaign(store):
    mine, value = tenant(), f"{uuid.uuid4().hex}@acme.com"
    await store.apply([RuleChange("add", campaign_scope(mine, "q3"), EMAIL, (value,))])
    assert await store.lookup(mine, {EMAIL: [value]}) == {}
    assert await store.lookup(mine, {EMAIL: [value]}, campaign="q3") == {EMAIL: {value}}
    assert await store.lookup(mine, {EMAIL: [value]}, campaign="q4") == {}
    assert await store.lookup(tenant(), {EMAIL: [value]}, campaign="q3") == {}


async def test_campaign_writes_are_limited_with_their_keys_writes(store):
    mine, value = tenant(), f"{uuid.uuid4().hex}@acme.com"
    limits = Limits(writes_per_minute=2)
    await store.write(RuleChange("add", mine, EMAIL, (value,)), limits)
    await store.write(RuleChange("add", campaign_scope(mine, "q3"), EMAIL, (value,)), limits)
    assert await store.lookup(mine, {EMAIL: [value]}, campaign="q3") == {EMAIL: {value}}
    with pytest.raises(TooManyWritesError):
        await store.write(RuleChange("add", campaign_scope(mine, "q4"), EMAIL, (value,)), limits)


def test_a_campaign_shares_its_keys_slot_and_a_list_has_its_own():
    mine = tenant()
    assert slot_of(rule_key(campaign_scope(mine, "q3"), EMAIL)) == slot_of(rule_key(mine, EMAIL))
    assert rule_key(campaign_scope(mine, "q3"), EMAIL) != rule_key(mine, EMAIL)
    assert rule_key(list_scope("a" * 32), EMAIL) == "denyproxy:{list:" + "a" * 32 + "}:email"
    with pytest.raises(ValueError, match="campaigns"):
        campaign_scope(GLOBAL, "q3")


def test_list_and_campaign_events_round_trip_as_v3():
    mine, list_id = tenant(), new_list_id()
    body = events.encode("add", list_scope(list_id), EMAIL, ["a@acme.com"], region="US")
    doc = orjson.loads(body)
    assert (doc["v"], doc["tenant"], doc["list"]) == (3, GLOBAL, list_id)
    assert events.key_of(list_scope(list_id)) == b"*"
    assert events.decode(body, "US") == RuleChange("add", list_scope(list_id), EMAIL,
                                                   ("a@acme.com",))
    body = events.encode("add", campaign_scope(mine, "q3"), EMAIL, ["a@acme.com"], region="US")
    assert events.key_of(campaign_scope(mine, "q3")) == mine.encode()
    assert events.decode(body, "US").tenant == campaign_scope(mine, "q3")
    change = ListChange("assign", list_id, 1.0, tenants=(mine,))
    decoded = events.decode(encode_list(change), "US")
    assert isinstance(decoded, ListChange) and decoded.tenants == (mine,)


@pytest.mark.parametrize("fields", [
    {"v": 2, "list": "a" * 32},  # a v2 reader would apply it as a global rule
    {"v": 3, "list": "not-hex"},
    {"v": 3, "campaign": "a b"},
    {"v": 3, "list": "a" * 32, "campaign": "x"},
])
def test_bad_list_or_campaign_fields_are_dead_letters(fields):
    body = {"op": "add", "tenant": GLOBAL, "type": "email", "values": ["a@acme.com"],
            "id": str(uuid.uuid4()), "ts": "2026-12-01T00:00:00Z"} | fields
    with pytest.raises(InvalidEventError):
        events.decode(orjson.dumps(body), "US")


@pytest.mark.parametrize("version", [1, 2, 3])
def test_every_version_up_to_3_is_read(version):
    body = {"v": version, "op": "add", "tenant": GLOBAL, "type": "email", "values": ["a@x.io"],
            "id": str(uuid.uuid4()), "ts": "2026-12-01T00:00:00Z"}
    assert events.decode(orjson.dumps(body), "US").values == ("a@x.io",)


async def test_only_the_changed_keys_lookups_re_read_their_lists(redis_url):
    """A lookup reads the key's lists once (SMEMBERS), then only its version: another key's
    assignment leaves it alone; its own makes it re-read once."""
    store = RedisStore.from_url(redis_url, timeout=2.0)
    monitor = aioredis.from_url(redis_url)
    mine, other, list_id = tenant(), tenant(), new_list_id()
    value = f"{uuid.uuid4().hex}@acme.com"

    async def reads_of_lists() -> int:
        stats = await monitor.info("commandstats")
        return int(stats.get("cmdstat_smembers", {"calls": 0})["calls"])

    try:
        await store.mark_initialised()
        await store.apply([ListChange("create", list_id, time.time(), "x"),
                           RuleChange("add", list_scope(list_id), EMAIL, (value,))])
        assert await store.lookup(mine, {EMAIL: [value]}) == {}
        before = await reads_of_lists()
        await store.apply([ListChange("assign", list_id, time.time(), tenants=(other,))])
        after_change = await reads_of_lists()  # the assign script's own SMEMBERS count too
        assert await store.lookup(mine, {EMAIL: [value]}) == {}
        assert await reads_of_lists() == after_change
        await store.apply([ListChange("assign", list_id, time.time(), tenants=(mine,))])
        after_change = await reads_of_lists()
        assert await store.lookup(mine, {EMAIL: [value]}) == {EMAIL: {value}}
        assert await store.lookup(mine, {EMAIL: [value]}) == {EMAIL: {value}}
        assert await reads_of_lists() == after_change + 1 and after_change > before
    finally:
        await monitor.aclose()
        await store.aclose()
