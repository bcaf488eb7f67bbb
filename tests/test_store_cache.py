"""The Redis store's local read path (rules/store/tracked_cache.py, tracked_lookup.py) against the
real Redis: answers served from memory without a Redis command, kept exact by Redis's own
invalidations on the lookup link (no mocks; every write below comes from ANOTHER connection)."""

from __future__ import annotations

import asyncio
import gc
import time
import tracemalloc
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import redis.asyncio as aioredis

from rules.model import RuleType, tenant_of
from rules.store import (
    MirroredRedisStore,
    RedisStore,
    StoreNotInitialisedError,
    generation,
    tracked_cache,
)
from rules.store.keys import expires_key, ready_key, rule_key
from rules.store.link import _LinkProtocol
from rules.store.tracked_cache import HITS, MISSES, NEVER, TrackedAnswers
from rules.store.tracked_lookup import TrackedLookup
from tests.test_link_writes import KeptWrites

E, P = RuleType.EMAIL, RuleType.PHONE
DEADLINE = 5.0


async def until(condition: Callable[[], Awaitable[bool] | bool], what: str) -> None:
    """Wait for `condition` (checked every loop turn or so), failing after DEADLINE seconds."""
    deadline = time.monotonic() + DEADLINE
    while True:
        result = condition()
        if result if isinstance(result, bool) else await result:
            return
        assert time.monotonic() < deadline, f"not within {DEADLINE} s: {what}"
        await asyncio.sleep(0.005)


@pytest.fixture
async def other(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """Another connection: the writer the proxy's cache must hear about."""
    client = aioredis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def store(redis_url: str, other: aioredis.Redis) -> AsyncIterator[MirroredRedisStore]:
    topic = f"cache-{uuid.uuid4().hex[:8]}"
    store = RedisStore.from_url(redis_url, timeout=2.0, topic=topic, cache=True)
    await other.set(ready_key(topic), "1")
    yield store
    await other.delete(ready_key(topic))
    await store.aclose()


@pytest.fixture
def tenant() -> str:
    return tenant_of(str(uuid.uuid4()))


def tracked(store: RedisStore) -> TrackedLookup:
    assert store.tracked is not None
    return store.tracked


async def commands(client: aioredis.Redis, only: str | None = None) -> int:
    """Commands Redis ran so far (those inside scripts too), INFO itself not counted."""
    stats = await client.info("commandstats")
    if only is not None:
        return int(stats.get(f"cmdstat_{only}", {"calls": 0})["calls"])
    return sum(int(s["calls"]) for name, s in stats.items() if name != "cmdstat_info")


async def denied(store: RedisStore, tenant: str, *values: str) -> set[str]:
    return (await store.lookup(tenant, {E: set(values)})).get(E, set())


async def test_a_repeated_lookup_is_answered_without_a_redis_command(store, other, tenant):
    await other.sadd(rule_key(tenant, E), "jane@acme.com")
    assert await denied(store, tenant, "jane@acme.com", "bob@acme.com") == {"jane@acme.com"}
    hits, misses = HITS._value.get(), MISSES._value.get()
    before = await commands(other)
    assert await denied(store, tenant, "jane@acme.com", "bob@acme.com") == {"jane@acme.com"}
    assert await denied(store, tenant, "bob@acme.com") == set()
    assert await commands(other) - before == 0
    assert (HITS._value.get() - hits, MISSES._value.get() - misses) == (2, 0)
    before = await commands(other, "evalsha_ro")
    assert await denied(store, tenant, "new@acme.com") == set()  # never asked: Redis is
    assert await commands(other, "evalsha_ro") - before == 1


async def test_a_scope_named_twice_is_answered_alike_from_redis_and_from_memory(
    store, other, tenant
):
    """The script's KEYS and the cached answer's rule sets are named apart: same answer."""
    await other.sadd(rule_key(tenant, E), "jane@acme.com")
    scopes, query = [tenant, "*", tenant], {E: {"jane@acme.com", "bob@acme.com"}, P: {"+1555"}}
    hits, misses = HITS._value.get(), MISSES._value.get()
    assert await store.lookup_scopes(scopes, query) == {E: {"jane@acme.com"}}  # from Redis
    assert await store.lookup_scopes(scopes, query) == {E: {"jane@acme.com"}}  # from memory
    assert (HITS._value.get() - hits, MISSES._value.get() - misses) == (1, 1)


async def test_a_rule_added_or_removed_by_another_connection_is_seen_by_the_next_lookup(
    store, other, tenant
):
    assert await denied(store, tenant, "jane@acme.com") == set()  # cached: not denied
    await other.sadd(rule_key(tenant, E), "jane@acme.com")
    await until(lambda: tracked(store).answers.answers(rule_key(tenant, E)) is None,
                "the invalidation reached the link")
    assert await denied(store, tenant, "jane@acme.com") == {"jane@acme.com"}
    await other.srem(rule_key(tenant, E), "jane@acme.com")
    await store.synced()  # a PING on the link: its reply follows the invalidation
    assert await denied(store, tenant, "jane@acme.com") == set()


async def test_the_global_scope_and_an_expiry_written_elsewhere_invalidate_too(
    store, other, tenant
):
    value = f"{uuid.uuid4().hex}@acme.com"
    assert await denied(store, tenant, value) == set()
    await other.sadd(rule_key("*", E), value)
    await store.synced()
    assert await denied(store, tenant, value) == {value}
    await other.zadd(expires_key("*", E), {value: 1000})  # an expiry in the past, set alone
    await store.synced()
    assert await denied(store, tenant, value) == set()
    await other.srem(rule_key("*", E), value)


async def test_an_expiry_that_passes_with_the_cache_warm_lifts_the_rule(store, other, tenant):
    expiry = int(time.time() * 1000) + 300
    await other.sadd(rule_key(tenant, E), "jane@acme.com")
    await other.zadd(expires_key(tenant, E), {"jane@acme.com": expiry})
    assert await denied(store, tenant, "jane@acme.com") == {"jane@acme.com"}
    await until(lambda: time.time() * 1000 > expiry, "the proxy's clock passed the expiry")
    before = await commands(other)
    assert await denied(store, tenant, "jane@acme.com") == set()
    assert await commands(other) - before == 0  # from the cache, by the proxy's clock


async def test_a_deleted_marker_answers_503_on_the_next_lookup(store, other, tenant):
    assert await denied(store, tenant, "jane@acme.com") == set()
    await other.delete(ready_key(store.topic))
    await store.synced()
    with pytest.raises(StoreNotInitialisedError):
        await denied(store, tenant, "jane@acme.com")


async def test_a_killed_link_clears_the_cache_and_answers_stay_right(store, other, tenant):
    assert await denied(store, tenant, "jane@acme.com") == set()
    answers = tracked(store).answers
    assert answers.entries > 0
    (link_id,) = await tracked(store).link.call([("CLIENT", "ID")])
    assert await other.execute_command("CLIENT", "KILL", "ID", link_id) == 1
    await until(lambda: answers.entries == 0 and not answers.live(), "the link noticed")
    await other.sadd(rule_key(tenant, E), "jane@acme.com")  # while no link tracks it
    assert await denied(store, tenant, "jane@acme.com") == {"jane@acme.com"}  # reconnected
    assert answers.live()


async def test_a_flush_clears_the_cache(flushable_redis_url):
    client = aioredis.from_url(flushable_redis_url)
    topic, tenant = f"cache-{uuid.uuid4().hex[:8]}", tenant_of("flush")
    store = RedisStore.from_url(flushable_redis_url, timeout=2.0, topic=topic, cache=True)
    try:
        await client.set(ready_key(topic), "1")
        await client.sadd(rule_key(tenant, E), "jane@acme.com")
        assert await denied(store, tenant, "jane@acme.com") == {"jane@acme.com"}
        await client.flushall()
        await store.synced()
        assert tracked(store).answers.entries == 0
        with pytest.raises(StoreNotInitialisedError):  # the marker went with the rules
            await denied(store, tenant, "jane@acme.com")
    finally:
        await store.aclose()
        await client.aclose()


async def never(offsets: dict[int, int]) -> None:
    raise AssertionError("the target needed no catching up")


async def test_a_generation_switch_clears_the_cache(flushable_redis_url):
    """A planned rebuild switches databases with SWAPDB, which invalidates nothing by itself:
    a rule that only the new generation holds must not stay hidden by a cached answer."""
    db, jane = 7, "jane@acme.com"
    live, target = aioredis.from_url(flushable_redis_url), aioredis.from_url(
        generation.with_db(flushable_redis_url, db))
    topic = f"cache-{uuid.uuid4().hex[:8]}"
    first, second = tenant_of(str(uuid.uuid4())), tenant_of(str(uuid.uuid4()))
    store = RedisStore.from_url(flushable_redis_url, timeout=2.0, topic=topic, cache=True)
    try:
        await live.set(ready_key(topic), "1")
        await target.flushdb()
        for tenant in (first, second):  # only the new generation holds their rules
            await target.sadd(rule_key(tenant, E), jane)
        await store.synced()  # tracking is by key name: those writes invalidated here too
        for tenant in (first, second):  # the old generation's answers, cached again
            assert await denied(store, tenant, jane) == set()
        assert await denied(store, second, jane) == set()
        assert tracked(store).answers.entries > 0
        assert await generation.switch(live, target, db, topic, never) == 1
        await store.synced()
        assert await denied(store, first, jane) == {jane}  # a lookup that reads Redis again
        assert await denied(store, second, jane) == {jane}  # and one the cache held
    finally:
        await live.swapdb(0, db)  # the suite's other keys back in db 0
        await target.flushdb()
        await store.aclose()
        await live.aclose()
        await target.aclose()


async def test_the_cache_keeps_within_its_bound_on_entries(store, other, tenant):
    tracked(store).answers.max_entries = 50
    await other.sadd(rule_key(tenant, E), "v7@acme.com")
    for batch in range(10):
        values = [f"v{batch * 10 + i}@acme.com" for i in range(10)]
        want = {"v7@acme.com"} & set(values)
        assert await denied(store, tenant, *values) == want
        assert tracked(store).answers.entries <= 50
    assert await denied(store, tenant, "v7@acme.com", "v99@acme.com") == {"v7@acme.com"}


async def test_a_stream_of_new_values_through_a_full_cache_fills_one_miss_in_eight(
    store, other, tenant, monkeypatch: pytest.MonkeyPatch
):
    """Every lookup asks new values and the cache is at its bound: after a window in which it
    evicted and hardly hit, only one miss in FILL_SAMPLE fills it; every answer stays exact."""
    monkeypatch.setattr(tracked_cache, "FILL_WINDOW", 16)
    answers = tracked(store).answers
    answers.max_entries = 20
    filled: list[bool] = []  # per reply kept: did it fill values (or only markers, version)
    keep = answers.keep
    monkeypatch.setattr(answers, "keep", lambda m, asked, *rest: (
        filled.append(bool(asked)), keep(m, asked, *rest)))
    await other.sadd(rule_key(tenant, E), *(f"v{n}.0@acme.com" for n in range(0, 64, 3)))
    for n in range(64):
        values = [f"v{n}.{i}@acme.com" for i in range(2)]
        misses = MISSES._value.get()
        want = {f"v{n}.0@acme.com"} if n % 3 == 0 else set()
        assert await denied(store, tenant, *values) == want
        assert MISSES._value.get() == misses + 1  # every value new: each lookup read Redis
        assert answers.entries <= 20
    assert len(filled) == 64 and answers.sampling
    assert all(filled[:16])  # the first window: every miss filled (evicting past 20)
    assert sum(filled[16:]) == 48 // tracked_cache.FILL_SAMPLE


async def test_hits_again_bring_the_full_fill_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sampling ends after a window with hits enough (a workload that repeats again)."""
    monkeypatch.setattr(tracked_cache, "FILL_WINDOW", 16)
    answers = TrackedAnswers()
    answers.evicted = True
    assert sum(answers.fills() for _ in range(16)) == 16  # the first window: all fill
    assert answers.sampling
    assert sum(answers.fills() for _ in range(15)) == 1
    answers.hits = 2  # as many as one per FILL_SAMPLE misses
    answers.fills()
    assert not answers.sampling
    assert sum(answers.fills() for _ in range(15)) == 15


async def test_several_types_are_cached_and_invalidated_per_rule_set(store, other, tenant):
    query = {E: {"jane@acme.com"}, P: {"+15125550100"}}
    assert await store.lookup(tenant, query) == {}
    before = await commands(other)
    assert await store.lookup(tenant, query) == {}
    assert await commands(other) - before == 0
    await other.sadd(rule_key(tenant, P), "+15125550100")
    await store.synced()
    assert await store.lookup(tenant, query) == {P: {"+15125550100"}}


async def test_without_tracking_the_store_reads_redis_every_time(redis_url, other, tenant):
    """An ACL user without HELLO and CLIENT (docs/redis.md's proxy user): cache off, exact."""
    user, password = f"nocache-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    await other.execute_command(
        "ACL", "SETUSER", user, "on", f">{password}", "~denyproxy:*", "resetchannels", "-@all",
        "+evalsha_ro", "+script|load", "+smismember", "+zscore", "+exists", "+get", "+smembers",
    )
    topic = f"cache-{uuid.uuid4().hex[:8]}"
    url = redis_url.replace("redis://", f"redis://{user}:{password}@", 1)
    store = RedisStore.from_url(url, timeout=2.0, topic=topic, cache=True)
    try:
        await other.set(ready_key(topic), "1")
        await other.sadd(rule_key(tenant, E), "jane@acme.com")
        for _ in range(2):
            before = await commands(other)
            assert await denied(store, tenant, "jane@acme.com") == {"jane@acme.com"}
            assert await commands(other) - before >= 1
        assert not tracked(store).answers.live()
    finally:
        await store.aclose()
        await other.execute_command("ACL", "DELUSER", user)
        await other.delete(ready_key(topic))


def test_an_answer_cached_from_a_dead_link_is_not_served() -> None:
    answers = TrackedAnswers()
    answers.opened(None, None)
    answers.keep(("m",), [(("k",), {"v"})], {}, None)  # no live link: nothing kept
    assert answers.entries == 0 and not answers.live()


async def test_an_invalidation_read_with_the_reply_drops_what_the_reply_cached() -> None:
    """The reply and the push arrive in one read: the reply's answers are kept at their place in
    the stream (the hook, before the caller resumes), so the push after them drops them."""
    answers = TrackedAnswers()
    protocol = _LinkProtocol(asyncio.get_running_loop(), None, "kept", answers)
    protocol.connection_made(KeptWrites())
    protocol.tracking = True
    answers.opened(protocol, None)
    answers.switches_tracked = True  # as after a lookup's read of the switches key

    def keep(replies: list[object]) -> None:
        answers.keep(("m",), [(("k", "j"), {"v"})], {}, None)

    first = protocol.send(b"PING", 1, keep)
    protocol.data_received(b"+PONG\r\n")
    assert await first == [b"PONG"] and answers.answers("k") == {"v"}
    second = protocol.send(b"PING", 1, keep)
    protocol.data_received(b"+PONG\r\n>2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n")
    assert await second == [b"PONG"]
    assert answers.answers("k") is None and answers.answers("j") == {"v"}
    protocol.data_received(b">2\r\n$10\r\ninvalidate\r\n_\r\n")  # a flush: nil
    assert answers.entries == 0 and answers.answers("j") is None


async def test_answers_kept_again_are_charged_once_and_freed_by_an_invalidation() -> None:
    """The fill charges only values (and members) not yet held: a reply repeating what the
    cache knows leaves its count and bytes as they were; dropping the rule set frees them."""
    answers = TrackedAnswers()
    protocol = _LinkProtocol(asyncio.get_running_loop(), None, "kept", answers)
    protocol.connection_made(KeptWrites())
    protocol.tracking = True
    answers.opened(protocol, None)
    answers.switches_tracked = True
    ping = protocol.send(b"PING", 1)
    protocol.data_received(b"+PONG\r\n")  # Redis heard from: live
    assert await ping == [b"PONG"]
    answers.keep(("m",), [(("k",), {"a", "b"})], {"k": {"a": NEVER}}, None)
    charged = answers.bytes
    answers.keep(("m",), [(("k",), ["b", "a"])], {"k": {"a": NEVER}}, None)
    assert (answers.entries, answers.bytes) == (2, charged)
    answers.keep(("m",), [(("k",), {"a", "c"})], {"k": {"c": 5.0}}, None)
    assert answers.entries == 3 and answers.members("k") == {"a": NEVER, "c": 5.0}
    answers.invalidated([b"k"])
    assert (answers.entries, answers.bytes, answers.members("k")) == (0, 0, None)


@pytest.mark.parametrize("per_lookup", [1, 500])
async def test_the_byte_bound_holds_in_the_bytes_python_allocates(store, tenant, per_lookup):
    """Filled past max_bytes through real lookups (one value per tenant's rule set, the costliest
    shape per entry, and 500): clearing the cache frees no more than the bound (25 % margin)."""
    answers, values = tracked(store).answers, 4_000
    answers.max_bytes = 2**19
    tracemalloc.start()
    try:
        for n in range(values // per_lookup):
            asked = {f"v{n}.{i}@{uuid.uuid4().hex[:8]}.com" for i in range(per_lookup)}
            await store.lookup(tenant_of(f"k{n}") if per_lookup == 1 else tenant, {E: asked})
        gc.collect()
        full = tracemalloc.get_traced_memory()[0]
        charged, entries = answers.bytes, answers.entries
        answers.clear("flush")
        gc.collect()
        freed = full - tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert answers.max_bytes / 2 < charged <= answers.max_bytes
    assert entries < values * 2  # each value asked in two scopes (the key's, global): evicted
    assert answers.max_bytes / 4 < freed <= answers.max_bytes * 1.25, (freed, charged, entries)
