"""HitBatch: a response's denied values count once per scope that filtered it, in memory, and
the bound on distinct pending hits holds however a batch arrives."""

from __future__ import annotations

import time
import uuid

import pytest

from rules.catalogue import hits as hits_module
from rules.catalogue.hits import HitBatch
from rules.catalogue.of import catalogue_of
from rules.catalogue.record import ListQuery
from rules.model import GLOBAL, ChangeMeta, RuleChange, RuleType
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
