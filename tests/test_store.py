"""rules/store: the memory store and the Redis stores against the real Redis (no mocks)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from rules.model import GLOBAL, RuleChange, RuleType, tenant_of
from rules.store import (
    Limits,
    MemoryStore,
    MirroredRedisStore,
    RedisStore,
    RuleWriter,
    StoreFedByKafkaError,
    StoreNotInitialisedError,
    StoreUnavailableError,
    TooManyRulesError,
    TooManyWritesError,
    rule_key,
    state_key,
)
from rules.store.init import initialise
from rules.store.keys import (
    initialised_key,
    offsets_key,
    ready_key,
    slot_marker,
    slot_of,
    slot_tags,
    writes_key,
)

E = RuleType.EMAIL


def add(tenant: str, *values: str) -> RuleChange:
    return RuleChange("add", tenant, E, values)


def remove(tenant: str, *values: str) -> RuleChange:
    return RuleChange("remove", tenant, E, values)


@pytest.fixture
def tenant() -> str:
    return tenant_of(str(uuid.uuid4()))


@pytest.fixture
async def mirrored(redis_url: str) -> AsyncIterator[MirroredRedisStore]:
    store = RedisStore.from_url(redis_url, timeout=2.0, topic=f"t-{uuid.uuid4().hex[:8]}")
    yield store
    await store.client.delete(ready_key(store.topic), offsets_key(store.topic))
    await store.aclose()


def test_key_names() -> None:
    assert rule_key("abc", E) == "denyproxy:{abc}:email"
    assert offsets_key("rules") == "denyproxy:{state}:rules:offsets"
    assert state_key("rules", "offsets") == offsets_key("rules")
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
    found = await store.lookup(tenant, {E: ["a@x.io", "b@x.io", "g@x.io"]})
    assert found == {E: {"b@x.io", "g@x.io"}}
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


async def test_plain_redis_store_reads_and_writes_once_initialised(
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


async def test_apply_and_check_sees_the_marker_go(
    mirrored: MirroredRedisStore, tenant: str
) -> None:
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


async def test_plain_store_without_its_marker_fails_closed_for_reads_and_writes(
    plain: RedisStore, tenant: str
) -> None:
    await plain.apply([add(tenant, "a@x.io")])
    await plain.client.delete(initialised_key())  # what FLUSHALL or an empty restart does
    with pytest.raises(StoreNotInitialisedError, match="denyproxy store init"):
        await plain.lookup(tenant, {E: ["a@x.io"]})
    assert not await plain.ready()
    with pytest.raises(StoreNotInitialisedError, match="nothing was changed"):
        await plain.write(add(tenant, "b@x.io"), Limits())
    assert await plain.count(tenant, E) == 1
    await plain.mark_initialised()
    assert await plain.lookup(tenant, {E: ["a@x.io"]}) == {E: {"a@x.io"}}


async def test_plain_store_trusts_its_feeders_ready_marker_and_refuses_writes_into_it(
    plain: RedisStore, tenant: str
) -> None:
    await plain.client.delete(initialised_key())
    await plain.client.set(ready_key(plain.feeder_topic), "1")  # a `consume` keeps this Redis
    try:
        assert await plain.ready()
        assert await plain.lookup(tenant, {E: ["a@x.io"]}) == {}
        with pytest.raises(StoreFedByKafkaError, match="through Kafka"):
            await plain.write(add(tenant, "a@x.io"), Limits())
    finally:
        await plain.client.delete(ready_key(plain.feeder_topic))
        await plain.mark_initialised()


async def test_a_rebuilding_consumer_clears_an_operators_marker(
    mirrored: MirroredRedisStore,
) -> None:
    await mirrored.client.set(initialised_key(), "1")
    await mirrored.set_ready(False)
    assert not await mirrored.client.exists(initialised_key())
    await mirrored.client.set(initialised_key(), "1")
    assert not await mirrored.ready(), "an operator's marker never stands in for the consumer's"


async def test_lookup_without_global_reads_only_the_keys_own_rules(
    plain: RedisStore, tenant: str
) -> None:
    for store in (plain, MemoryStore()):
        await store.apply([add(tenant, "own@x.io"), add(GLOBAL, "global@x.io")])
        query = {E: ["own@x.io", "global@x.io"]}
        assert await store.lookup(tenant, query) == {E: {"own@x.io", "global@x.io"}}
        assert await store.lookup(tenant, query, include_global=False) == {E: {"own@x.io"}}


@pytest.fixture(params=["memory", "redis"])
async def limited(request: pytest.FixtureRequest, plain: RedisStore) -> RedisStore | MemoryStore:
    return MemoryStore() if request.param == "memory" else plain


async def test_rules_per_key_are_capped_counting_only_new_values(
    limited: RedisStore | MemoryStore, tenant: str
) -> None:
    limits = Limits(max_rules=3, writes_per_minute=100)
    await limited.write(add(tenant, "a@x.io", "b@x.io"), limits)
    await limited.write(RuleChange("add", tenant, RuleType.DOMAIN, ("x.io",)), limits)
    await limited.write(add(tenant, "a@x.io"), limits)  # already held: adds nothing
    with pytest.raises(TooManyRulesError) as caught:
        await limited.write(add(tenant, "a@x.io", "c@x.io"), limits)
    assert (caught.value.held, caught.value.adding, caught.value.limit) == (3, 1, 3)
    assert await limited.lookup(tenant, {E: ["c@x.io"]}) == {}, "nothing was changed"
    await limited.write(remove(tenant, "a@x.io"), limits)
    await limited.write(add(tenant, "c@x.io"), limits)
    assert await limited.lookup(tenant, {E: ["c@x.io"]}) == {E: {"c@x.io"}}


async def test_rule_writes_per_key_per_minute_are_capped(
    limited: RedisStore | MemoryStore, tenant: str
) -> None:
    limits = Limits(max_rules=100, writes_per_minute=3)
    for value in ("a@x.io", "b@x.io"):
        await limited.write(add(tenant, value), limits)
    await limited.admit(remove(tenant, "a@x.io"), limits)  # a published write counts too
    with pytest.raises(TooManyWritesError) as caught:
        await limited.write(add(tenant, "c@x.io"), limits)
    assert 1 <= caught.value.retry_after <= 60
    assert await limited.lookup(tenant, {E: ["c@x.io", "a@x.io"]}) == {E: {"a@x.io"}}
    await limited.write(add(tenant_of("another key"), "c@x.io"), limits)  # per key


async def test_an_admitted_add_holds_its_new_values_until_released(
    plain: RedisStore, tenant: str
) -> None:
    """With Kafka the API admits, publishes, then waits: until the add is applied its values
    are reserved, so another admission cannot take the same room (released once applied)."""
    limits = Limits(max_rules=3, writes_per_minute=100)
    await plain.write(add(tenant, "a@x.io"), limits)
    first = await plain.admit(add(tenant, "a@x.io", "b@x.io"), limits)  # one new value
    assert first is not None
    with pytest.raises(TooManyRulesError) as caught:
        await plain.admit(add(tenant, "c@x.io", "d@x.io"), limits)
    assert (caught.value.held, caught.value.adding) == (2, 2), "held 1, reserved 1"
    assert await plain.admit(add(tenant, "a@x.io"), limits) is None, "nothing new: no room taken"
    await plain.release(tenant, first)
    assert await plain.admit(add(tenant, "c@x.io", "d@x.io"), limits) is not None


async def test_a_write_of_10000_values_is_checked_and_applied_in_one_script(
    plain: RedisStore, tenant: str
) -> None:
    values = tuple(f"u{i}@x.io" for i in range(10_000))
    await plain.write(add(tenant, *values), Limits(max_rules=10_000))
    assert await plain.count(tenant, E) == 10_000
    with pytest.raises(TooManyRulesError):
        await plain.write(add(tenant, "one-more@x.io"), Limits(max_rules=10_000))
    assert await plain.client.get(writes_key(tenant)) == "1"


async def test_initialise_reports_what_is_there_and_refuses_what_it_must(
    redis_url: str, tenant: str
) -> None:
    store = RedisStore.from_url(redis_url, timeout=2.0, feeder_topic=f"f-{uuid.uuid4().hex[:8]}")
    try:
        await store.apply([add(tenant, "a@x.io")])
        await store.client.delete(initialised_key())
        report = await initialise(store, only_if_empty=True)  # `serve --init-store`
        assert not report.initialised and "rules present without a marker" in str(report)
        assert not await store.ready()
        report = await initialise(store)  # `denyproxy store init`
        assert report.initialised and str(report).startswith("marker missing; ")
        assert f"{report.rule_sets} rule sets present" in str(report) and report.rule_sets >= 1
        assert await store.ready()
        assert str(await initialise(store)).startswith("marker present;")
        await store.client.hset(offsets_key(store.feeder_topic), "0", "1")
        assert "kept by the Kafka consumer" in str(await initialise(store))
    finally:
        await store.client.delete(offsets_key(store.feeder_topic))
        await store.mark_initialised()
        await store.aclose()


async def test_limited_writes_and_init_work_on_a_cluster(
    redis_cluster_url: str, tenant: str
) -> None:
    """The script's keys share the tenant's slot; init marks every slot."""
    store = RedisStore.from_url(redis_cluster_url, timeout=2.0, cluster=True)
    try:
        assert (await initialise(store)).initialised
        await store.write(add(tenant, "a@x.io"), Limits(max_rules=1))
        with pytest.raises(TooManyRulesError):
            await store.write(add(tenant, "b@x.io"), Limits(max_rules=1))
        assert await store.lookup(tenant, {E: ["a@x.io", "b@x.io"]}) == {E: {"a@x.io"}}
        assert await store.ready()
    finally:
        await store.aclose()
