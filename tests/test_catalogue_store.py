"""The catalogue beside each store (memory, real Redis): the same records, replays, expiry."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from rules.catalogue import redis as catalogue_redis
from rules.catalogue.of import Catalogue, catalogue_of
from rules.catalogue.record import ListQuery
from rules.model import ChangeMeta, RuleChange, RuleType
from rules.store import MemoryStore, RedisStore
from rules.store.catalogue_script import HITS_CHUNK
from rules.store.memory import MemoryStore as Memory
from tests.harness import eventually

EMAIL = RuleType.EMAIL


@pytest.fixture(params=["memory", "redis"])
async def store(request, redis_url) -> AsyncIterator[MemoryStore | RedisStore]:
    if request.param == "memory":
        yield Memory()
        return
    redis_store = RedisStore.from_url(redis_url, timeout=5)
    await redis_store.mark_initialised()
    yield redis_store
    await redis_store.aclose()


def tenant() -> str:
    return uuid.uuid4().hex * 2


def add(scope: str, value: str, at: float, **meta) -> RuleChange:
    return RuleChange("add", scope, EMAIL, (value,), ChangeMeta(at, "test", **meta))


async def page(catalogue: Catalogue, scope: str) -> list[tuple[str, int]]:
    records = (await catalogue.page(scope, ListQuery())).records
    return [(r.value, r.created_at) for r in records]


async def test_replaying_an_add_keeps_id_and_created_at(store):
    scope, catalogue = tenant(), catalogue_of(store)
    await store.apply([add(scope, "a@acme.com", 1000.0, reason="first")])
    (first,) = (await catalogue.page(scope, ListQuery())).records
    await store.apply([add(scope, "a@acme.com", 2000.0, reason="again")])
    (again,) = (await catalogue.page(scope, ListQuery())).records
    assert (again.id, again.created_at) == (first.id, 1_000_000)
    assert (again.updated_at, again.reason) == (2_000_000, "again")


async def test_an_add_that_arrives_expired_removes_the_rule(store):
    scope, catalogue = tenant(), catalogue_of(store)
    await store.apply([add(scope, "a@acme.com", time.time())])
    await store.apply([add(scope, "a@acme.com", time.time(), expires_at=time.time() - 1)])
    assert await page(catalogue, scope) == []
    assert await store.lookup(scope, {EMAIL: {"a@acme.com"}}) == {}


async def test_a_rule_stops_suppressing_at_its_expiry_before_any_sweep(store):
    scope = tenant()
    await store.apply([add(scope, "a@acme.com", time.time(), expires_at=time.time() + 0.5)])
    assert await store.lookup(scope, {EMAIL: {"a@acme.com"}}) == {EMAIL: {"a@acme.com"}}

    async def stopped() -> bool:
        return await store.lookup(scope, {EMAIL: {"a@acme.com"}}) == {}

    await eventually(stopped, "the rule to expire", timeout=10)


async def test_suppression_hits_count_only_existing_records(store):
    scope, catalogue = tenant(), catalogue_of(store)
    await store.apply([add(scope, "a@acme.com", time.time())])
    hits = {(scope, EMAIL, "a@acme.com"): 2, (scope, EMAIL, "gone@acme.com"): 5}
    await catalogue.record_hits(hits, time.time())
    records = (await catalogue.page(scope, ListQuery())).records
    assert [(r.value, r.suppressions) for r in records] == [("a@acme.com", 2)]
    assert records[0].last_suppressed_at is not None


async def test_a_batch_of_hits_counts_each_record_of_each_scope_across_chunks(
    store, monkeypatch: pytest.MonkeyPatch
):
    """A flush sends one script call per scope and chunk of records: every record of every
    scope gets its own count, across a chunk boundary, and a missing one is skipped."""
    monkeypatch.setattr(catalogue_redis, "HITS_CHUNK", 2)
    first, second, catalogue, now = tenant(), tenant(), catalogue_of(store), time.time()
    values = ["a@acme.com", "b@acme.com", "c@acme.com"]
    await store.apply([add(scope, v, now) for scope in (first, second) for v in values])
    hits = {(first, EMAIL, v): i + 1 for i, v in enumerate(values)}
    hits |= {(first, EMAIL, "gone@acme.com"): 9, (second, EMAIL, "c@acme.com"): 7}
    await catalogue.record_hits(hits, now)
    assert await counts(catalogue, first) == [(v, i + 1) for i, v in enumerate(values)]
    assert await counts(catalogue, second) == [("a@acme.com", 0), ("b@acme.com", 0),
                                               ("c@acme.com", 7)]


async def counts(catalogue: Catalogue, scope: str) -> list[tuple[str, int]]:
    records = (await catalogue.page(scope, ListQuery())).records
    return sorted((r.value, r.suppressions) for r in records)


async def test_a_large_flush_of_the_embedded_catalogue_lets_requests_run_between_chunks():
    """A second of distinct contacts' hits is thousands of records to hash: the flush must not
    hold the event loop (and so every request) for all of them at once."""
    catalogue, scope, now = catalogue_of(Memory()), tenant(), time.time()
    hits = {(scope, EMAIL, f"x{i}@acme.com"): 1 for i in range(5 * HITS_CHUNK)}
    turns = 0

    async def request() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    other = asyncio.create_task(request())
    await asyncio.sleep(0)
    before = turns
    await catalogue.record_hits(hits, now)
    during = turns - before
    other.cancel()
    assert during >= 4
