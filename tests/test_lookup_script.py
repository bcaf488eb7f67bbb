"""rules/store/lookup_script.py: one lookup is one script call, against the real Redis (and a
real 3-node Cluster), whatever the types, scopes and number of values asked."""

from __future__ import annotations

import time
import uuid

import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster as ClusterClient

from rules.model import GLOBAL, RuleChange, RuleType, tenant_of
from rules.store import MirroredRedisStore, RedisStore, StoreNotInitialisedError
from rules.store.keys import expires_key, rule_key, slot_of
from rules.store.lookup_script import LookupCall

E, P, D, L = RuleType.EMAIL, RuleType.PHONE, RuleType.DOMAIN, RuleType.LINKEDIN


def scope() -> str:
    return tenant_of(str(uuid.uuid4()))


async def calls(client: aioredis.Redis, command: str) -> int:
    stats = await client.info("commandstats")
    return int(stats.get(f"cmdstat_{command}", {"calls": 0})["calls"])


def test_indexes_map_back_to_values_by_type() -> None:
    call = LookupCall.of([(E, ["a", "b"]), (P, []), (L, ["c", "d", "e"])])
    assert call.args(1, 5) == [1, 5, 3, 2, "a", "b", 0, 3, "c", "d", "e"]
    denied: dict[RuleType, set[str]] = {}
    call.denied([0, 2, 4], denied)
    assert denied == {E: {"a"}, L: {"c", "e"}}


async def test_a_lookup_of_every_type_in_two_scopes_is_one_read_only_script_call(
    plain: RedisStore,
) -> None:
    tenant, phone = scope(), f"+1{uuid.uuid4().int % 10**10:010d}"
    await plain.apply([RuleChange("add", tenant, E, ("a@x.io",)),
                       RuleChange("add", GLOBAL, P, (phone,))])
    query = {E: ["a@x.io", "b@x.io"], P: [phone], D: ["x.io"], L: ["jane"]}
    await plain.lookup(tenant, query)  # the first call may load the script
    before = {c: await calls(plain.client, c) for c in ("evalsha_ro", "zmscore", "smismember")}
    assert await plain.lookup(tenant, query) == {E: {"a@x.io"}, P: {phone}}
    after = {c: await calls(plain.client, c) for c in before}
    assert after["evalsha_ro"] - before["evalsha_ro"] == 1
    assert after["zmscore"] == before["zmscore"]
    assert after["smismember"] - before["smismember"] == 8  # inside the script: 4 types x 2


async def test_any_number_of_scopes_is_read(plain: RedisStore) -> None:
    scopes = [scope(), scope(), scope()]
    await plain.apply([RuleChange("add", scopes[2], E, ("c@x.io",)),
                       RuleChange("add", scopes[0], L, ("jane",))])
    query = {E: ["a@x.io", "c@x.io"], L: ["jane", "john"]}
    assert await plain.lookup_scopes(scopes, query) == {E: {"c@x.io"}, L: {"jane"}}
    assert await plain.lookup_scopes(scopes[1:2], query) == {}


async def test_thousands_of_values_per_type_are_read_in_chunks(plain: RedisStore) -> None:
    tenant = scope()
    emails = [f"u{i}@x.io" for i in range(2500)]
    tag = uuid.uuid4().hex[:8]  # global rules outlive a test: values of this test only
    phones = [f"+1{tag}{i:04d}" for i in range(1200)]
    denied_e, denied_p = {emails[0], emails[999], emails[1000], emails[2499]}, {phones[1199]}
    await plain.apply([RuleChange("add", tenant, E, tuple(denied_e)),
                       RuleChange("add", GLOBAL, P, tuple(denied_p))])
    assert await plain.lookup(tenant, {E: emails, P: phones}) == {E: denied_e, P: denied_p}


async def test_a_member_past_its_expiry_is_not_denied_before_the_sweep(
    plain: RedisStore,
) -> None:
    """Written straight into the set and the expiry index, as a rule whose expiry has come
    but that no write has swept yet looks in Redis."""
    tenant, now_ms = scope(), int(time.time() * 1000)
    await plain.client.sadd(rule_key(tenant, E), "old@x.io", "new@x.io", "kept@x.io")
    await plain.client.zadd(expires_key(tenant, E),
                            {"old@x.io": now_ms - 1000, "new@x.io": now_ms + 600_000})
    query = {E: ["old@x.io", "new@x.io", "kept@x.io"]}
    assert await plain.lookup(tenant, query) == {E: {"new@x.io", "kept@x.io"}}


async def test_a_missing_marker_fails_closed_in_the_script(redis_url: str) -> None:
    store = RedisStore.from_url(redis_url, timeout=2.0, topic=f"t-{uuid.uuid4().hex[:8]}")
    assert isinstance(store, MirroredRedisStore)
    try:
        with pytest.raises(StoreNotInitialisedError, match="still loading"):
            await store.lookup(scope(), {E: ["a@x.io"]})
        await store.set_ready(True)
        assert await store.lookup(scope(), {E: ["a@x.io"]}) == {}
    finally:
        await store.set_ready(False)
        await store.aclose()


async def test_a_flushed_script_cache_is_loaded_again(plain: RedisStore) -> None:
    tenant = scope()
    await plain.apply([RuleChange("add", tenant, E, ("a@x.io",))])
    await plain.client.script_flush()
    assert await plain.lookup(tenant, {E: ["a@x.io"]}) == {E: {"a@x.io"}}


async def on_primaries(client: ClusterClient, command: str = "evalsha_ro") -> int:
    stats = await client.info("commandstats", target_nodes=ClusterClient.PRIMARIES)
    return sum(int(node.get(f"cmdstat_{command}", {"calls": 0})["calls"])
               for node in stats.values())


async def test_on_a_cluster_each_slot_gets_its_own_call_and_a_flush_is_survived(
    redis_cluster_url: str,
) -> None:
    store = RedisStore.from_url(redis_cluster_url, timeout=2.0, cluster=True)
    assert isinstance(store.client, ClusterClient)
    try:
        await store.mark_initialised()
        tenants, g = [scope() for _ in range(3)], f"g{uuid.uuid4().hex[:8]}@x.io"
        await store.apply([RuleChange("add", tenants[1], E, ("b@x.io",)),
                           RuleChange("add", GLOBAL, E, (g,))])
        await store.client.script_flush()  # every primary forgets the script
        query = {E: ["a@x.io", "b@x.io", g]}
        scopes = [*tenants, GLOBAL]
        assert await store.lookup_scopes(scopes, query) == {E: {"b@x.io", g}}
        before = await on_primaries(store.client)
        getkeys = await on_primaries(store.client, "command|getkeys")
        assert await store.lookup_scopes(scopes, query) == {E: {"b@x.io", g}}
        slots = {slot_of(rule_key(s, E)) for s in scopes}
        assert await on_primaries(store.client) - before == len(slots)
        assert await on_primaries(store.client, "command|getkeys") == getkeys  # no extra trip
        assert await store.lookup(tenants[0], query) == {E: {g}}
    finally:
        await store.aclose()
