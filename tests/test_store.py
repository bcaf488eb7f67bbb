"""rules/store: the memory store and the Redis stores against the real Redis (no mocks)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from rules.model import GLOBAL, RuleChange, RuleType, tenant_of
from rules.store import (
    MemoryStore,
    MirroredRedisStore,
    RedisStore,
    RuleWriter,
    StoreUnavailableError,
    rule_key,
    state_key,
)
from rules.store.keys import offsets_key, ready_key, slot_marker, slot_of, slot_tags

E = RuleType.EMAIL


def add(tenant: str, *values: str) -> RuleChange:
    return RuleChange("add", tenant, E, values)


def remove(tenant: str, *values: str) -> RuleChange:
    return RuleChange("remove", tenant, E, values)


@pytest.fixture
def tenant() -> str:
    return tenant_of(str(uuid.uuid4()))


@pytest.fixture
async def plain(redis_url: str) -> AsyncIterator[RedisStore]:
    store = RedisStore.from_url(redis_url, timeout=2.0)
    yield store
    await store.aclose()


@pytest.fixture
async def mirrored(redis_url: str) -> AsyncIterator[MirroredRedisStore]:
    store = RedisStore.from_url(redis_url, timeout=2.0, topic=f"t-{uuid.uuid4().hex[:8]}")
    yield store
    await store.client.delete(ready_key(store.topic), offsets_key(store.topic))
    await store.aclose()


def test_key_names() -> None:
    assert rule_key("abc", E) == "denyproxy:{abc}:email"
    assert state_key("rules", "offsets") == offsets_key("rules") == "denyproxy:{state}:rules:offsets"
    assert ready_key("rules") == "denyproxy:{state}:rules:ready"


def test_slot_markers_land_in_their_slot() -> None:
    tags = slot_tags()
    assert len(tags) == 16384 and len(set(tags)) == 16384
    for slot in (0, 1, 8000, 16383):
        assert slot_of(slot_marker("rules", slot)) == slot


async def test_memory_store_applies_in_order_and_checks_global(tenant: str) -> None:
    store = MemoryStore()
    await store.apply([add(tenant, "a@x.io", "b@x.io"), remove(tenant, "a@x.io"),
                       add(GLOBAL, "g@x.io")], {0: 3})
    assert await store.lookup(tenant, {E: ["a@x.io", "b@x.io", "g@x.io"]}) == {E: {"b@x.io", "g@x.io"}}
    assert await store.lookup(tenant_of("other"), {E: ["b@x.io"]}) == {}
    assert await store.offsets() == {0: 3}


async def test_memory_store_not_ready_fails_closed() -> None:
    store = MemoryStore(ready=False)
    with pytest.raises(StoreUnavailableError):
        await store.lookup("t", {E: ["a@x.io"]})
    assert not await store.apply_and_check([], {0: 1})
    await store.set_ready(True)
    assert await store.apply_and_check([], {0: 2}) and await store.offsets() == {0: 2}


def test_which_stores_are_writers(mirrored: MirroredRedisStore, plain: RedisStore) -> None:
    assert isinstance(MemoryStore(), RuleWriter) and isinstance(mirrored, RuleWriter)
    assert not isinstance(plain, RuleWriter), "a store without a topic keeps no offsets"
    assert not MemoryStore().shared and mirrored.shared
    assert mirrored.mirrors(mirrored.topic) and not mirrored.mirrors("another")


async def test_plain_redis_store_reads_and_writes_without_a_marker(
    plain: RedisStore, tenant: str
) -> None:
    await plain.apply([add(tenant, "a@x.io", "b@x.io"), remove(tenant, "b@x.io")])
    assert await plain.lookup(tenant, {E: ["a@x.io", "b@x.io"]}) == {E: {"a@x.io"}}
    assert await plain.lookup(tenant, {E: []}) == {}
    assert await plain.count(tenant, E) == 1
    assert await plain.ready() and await plain.offsets() == {}


async def test_big_changes_are_written_in_chunks(plain: RedisStore, tenant: str) -> None:
    values = [f"u{i}@x.io" for i in range(25_001)]
    await plain.apply([add(tenant, *values)])
    assert await plain.count(tenant, E) == 25_001


async def test_mirrored_store_fails_closed_until_marked_ready(
    mirrored: MirroredRedisStore, tenant: str
) -> None:
    await mirrored.apply([add(tenant, "a@x.io")], {0: 1, 1: 4})
    assert not await mirrored.ready()
    with pytest.raises(StoreUnavailableError):
        await mirrored.lookup(tenant, {E: ["a@x.io"]})
    await mirrored.set_ready(True)
    assert await mirrored.lookup(tenant, {E: ["a@x.io"]}) == {E: {"a@x.io"}}
    assert await mirrored.offsets() == {0: 1, 1: 4}


async def test_apply_and_check_sees_the_marker_go(mirrored: MirroredRedisStore, tenant: str) -> None:
    await mirrored.set_ready(True)
    assert await mirrored.apply_and_check([add(tenant, "a@x.io")], {0: 1})
    await mirrored.set_ready(False)
    assert not await mirrored.apply_and_check([add(tenant, "b@x.io")], {0: 2})
    assert await mirrored.offsets() == {0: 2}, "the write still happened"


async def test_a_redis_that_is_down_is_unavailable(redis_url: str) -> None:
    store = RedisStore.from_url("redis://127.0.0.1:1", timeout=0.5, topic="t")
    try:
        with pytest.raises(StoreUnavailableError):
            await store.lookup("t", {E: ["a@x.io"]})
        with pytest.raises(StoreUnavailableError):
            await store.offsets()
        assert not await store.ready()
    finally:
        await store.aclose()
