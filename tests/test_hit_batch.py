"""HitBatch: a response's denied values count once per scope that filtered it, in memory, and
the bound on distinct pending hits holds however a batch arrives."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import cast

import pytest

from rules.catalogue import hits as hits_module
from rules.catalogue.hits import HitBatch
from rules.catalogue.of import Catalogue, catalogue_of
from rules.catalogue.record import ListQuery
from rules.consumer.cancel import cancel_and_wait
from rules.metrics import HITS_DROPPED
from rules.model import GLOBAL, ChangeMeta, RuleChange, RuleType
from rules.store.base import StoreUnavailableError
from rules.store.catalogue_script import HITS_CHUNK
from rules.store.memory import MemoryStore

EMAIL, PHONE = RuleType.EMAIL, RuleType.PHONE


def batch() -> HitBatch:
    return HitBatch(catalogue_of(MemoryStore()))


def test_each_denied_value_counts_for_the_tenant_global_and_extra_scopes() -> None:
    hits, tenant = batch(), uuid.uuid4().hex * 2
    hits.record(tenant, {EMAIL: {"a@acme.com"}, PHONE: {"+14155550100"}}, ["list:x"])
    hits.record(tenant, {EMAIL: {"a@acme.com"}})
    assert hits._pending == {
        (tenant, EMAIL, "a@acme.com"): 2, (GLOBAL, EMAIL, "a@acme.com"): 2,
        ("list:x", EMAIL, "a@acme.com"): 1, (tenant, PHONE, "+14155550100"): 1,
        (GLOBAL, PHONE, "+14155550100"): 1, ("list:x", PHONE, "+14155550100"): 1,
    }
    assert hits.dropped == 0


def test_a_global_request_counts_its_values_once() -> None:
    hits = batch()
    hits.record(GLOBAL, {EMAIL: {"a@acme.com", "b@acme.com"}})
    assert hits._pending == {(GLOBAL, EMAIL, "a@acme.com"): 1, (GLOBAL, EMAIL, "b@acme.com"): 1}


def test_past_the_bound_known_hits_still_count_and_new_ones_are_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(hits_module, "MAX_PENDING", 3)
    hits = batch()
    hits.record(GLOBAL, {EMAIL: {"a@acme.com", "b@acme.com"}})
    hits.record(GLOBAL, {EMAIL: {"a@acme.com", "c@acme.com", "d@acme.com"}})
    assert len(hits._pending) == 3
    assert hits._pending[(GLOBAL, EMAIL, "a@acme.com")] == 2
    assert hits.dropped == 1  # c or d: whichever came second found the batch full


async def test_a_flush_adds_the_counts_to_the_records() -> None:
    store, tenant = MemoryStore(), uuid.uuid4().hex * 2
    change = RuleChange("add", tenant, EMAIL, ("a@acme.com",), ChangeMeta(time.time(), "test"))
    await store.apply([change])
    hits = HitBatch(catalogue_of(store))
    for _ in range(3):
        hits.record(tenant, {EMAIL: {"a@acme.com"}})
    await hits.flush()
    records = (await store.catalogue.page(tenant, ListQuery())).records
    assert [(r.value, r.suppressions) for r in records] == [("a@acme.com", 3)]
    assert not hits._pending


async def test_a_flusher_stopped_mid_flush_still_counts_every_hit_of_the_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The embedded catalogue's flush yields between chunks (HITS_CHUNK): the shutdown's
    cancel can land inside it. The rest of that batch must still be counted, not dropped."""
    store, tenant = MemoryStore(), uuid.uuid4().hex * 2
    values = [f"x{i}@acme.com" for i in range(4 * HITS_CHUNK)]
    meta = ChangeMeta(time.time(), "test")
    await store.apply([RuleChange("add", tenant, EMAIL, tuple(values), meta)])
    monkeypatch.setattr(hits_module, "FLUSH_SECONDS", 0.001)
    hits = HitBatch(catalogue_of(store))
    hits.record(tenant, {EMAIL: set(values)})
    flusher = asyncio.create_task(hits.run())
    for _ in range(1000):  # loop turns until the flush took the batch and yielded (one chunk)
        if not hits._pending:
            break
        await asyncio.sleep(0)
    assert not hits._pending
    assert await cancel_and_wait(flusher, "the flusher")
    counted = 0
    for offset in range(0, len(values), 50):
        page = await store.catalogue.page(tenant, ListQuery(offset=offset))
        counted += sum(r.suppressions for r in page.records)
    assert counted == len(values)


async def test_a_batch_of_many_distinct_hits_is_flushed_before_its_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Distinct contacts fill a window in seconds: past FLUSH_AT the flusher goes at once
    (the interval here is an hour), so nothing reaches the bound and is dropped."""
    monkeypatch.setattr(hits_module, "FLUSH_AT", 10)
    store, tenant = MemoryStore(), uuid.uuid4().hex * 2
    values = [f"x{i}@acme.com" for i in range(10)]
    await store.apply([RuleChange("add", tenant, EMAIL, tuple(values), ChangeMeta(time.time()))])
    hits = HitBatch(catalogue_of(store), interval=3600.0)
    flusher = asyncio.create_task(hits.run())
    try:
        hits.record(tenant, {EMAIL: set(values[:4])})  # 8 distinct hits (key and global)
        for _ in range(20):
            await asyncio.sleep(0)
        assert len(hits._pending) == 8  # under FLUSH_AT: waits for its interval
        hits.record(tenant, {EMAIL: set(values[4:])})
        for _ in range(1000):
            if not hits._pending:
                break
            await asyncio.sleep(0)
        assert not hits._pending
        page = await store.catalogue.page(tenant, ListQuery(limit=50))
        assert sum(r.suppressions for r in page.records) == 10
    finally:
        assert await cancel_and_wait(flusher, "the flusher")


async def test_hits_past_the_bound_are_counted_as_dropped_in_the_metric(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(hits_module, "MAX_PENDING", 2)
    before = HITS_DROPPED._value.get()
    hits = batch()
    hits.record(GLOBAL, {EMAIL: {"a@acme.com", "b@acme.com", "c@acme.com"}})
    assert (hits.dropped, HITS_DROPPED._value.get() - before) == (1, 1)


class _Down:
    """A catalogue whose store is unreachable: counts the flushes tried."""

    def __init__(self) -> None:
        self.tries = 0

    async def record_hits(self, hits: object, at: float) -> None:
        self.tries += 1
        raise StoreUnavailableError("redis: ConnectionError")


async def test_a_full_batch_on_a_store_that_is_down_is_retried_once_per_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """FLUSH_AT stays reached while the flush keeps failing: each response would start one
    more flush at once; the store gets the interval's rest instead."""
    monkeypatch.setattr(hits_module, "FLUSH_AT", 2)
    down = _Down()
    hits = HitBatch(cast(Catalogue, down), interval=3600.0)
    flusher = asyncio.create_task(hits.run())
    try:
        for i in range(50):
            hits.record(GLOBAL, {EMAIL: {f"a{i}@acme.com", f"b{i}@acme.com"}})
            await asyncio.sleep(0)
        assert down.tries == 1
        assert len(hits._pending) == 100  # kept for the next flush, nothing dropped
    finally:
        assert await cancel_and_wait(flusher, "the flusher")
