"""rules/store/link.py: the lookup's pipelined connection, against real redis-servers.

Replies go to the caller that asked (many concurrent calls, a cancelled caller among them), a
flushed script is reloaded, a killed server fails the calls (503) and the link reconnects, a
server that stops answering fails them within the timeout, and TLS with an ACL user, a
database other than 0 and a wrong password behave as through redis-py.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field

import pytest
import redis
import redis.asyncio as aioredis
from redis.exceptions import AuthenticationError

from rules.model import RuleChange, RuleType, tenant_of
from rules.store import RedisStore, StoreTimeoutError, StoreUnavailableError
from rules.store.link import RedisLink
from tests.secure_fixtures import SecureRedis
from tests.services import RedisServer, running_redis

EMAIL = RuleType.EMAIL


@pytest.fixture(scope="module")
def own_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server these tests may pause, kill and restart."""
    with running_redis(tmp_path_factory.mktemp("redis-link")) as server:
        yield server


@pytest.fixture
async def admin(own_redis: RedisServer) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(own_redis.url, decode_responses=True, socket_timeout=10)
    await client.flushall()
    yield client
    with contextlib.suppress(redis.RedisError):  # Redis 7.0 answers it when a pause ends
        await client.execute_command("CLIENT", "UNPAUSE")
    await client.aclose()


async def denying_store(url: str, tenant: str, denied: list[str], limit: float) -> RedisStore:
    store = RedisStore.from_url(url, timeout=limit)
    await store.apply([RuleChange("add", tenant, EMAIL, tuple(denied))])
    await store.mark_initialised()
    return store


def link_of(store: RedisStore) -> RedisLink:
    link = store._scripts.link
    assert link is not None, "a single-node store looks up over its link"
    return link


async def wait_pending(link: RedisLink, count: int) -> None:
    """Until `count` calls are written and unanswered (the server is paused)."""
    async with asyncio.timeout(1):
        while link.pending < count:  # noqa: ASYNC110 (a counter of the link's, no event)
            await asyncio.sleep(0.005)


async def test_200_concurrent_lookups_each_get_their_own_answer(redis_url: str) -> None:
    tenant = tenant_of(f"om_{uuid.uuid4().hex}")
    denied = [f"d{i}@link.example" for i in range(200)]
    store = await denying_store(redis_url, tenant, denied, limit=5.0)
    try:
        await store.lookup(tenant, {EMAIL: {"warm@link.example"}})  # the key's lists, cached

        async def ask(i: int) -> dict[RuleType, set[str]]:
            return await store.lookup(tenant, {EMAIL: {denied[i], f"n{i}@link.example"}})

        answers = await asyncio.gather(*(ask(i) for i in range(200)))
        assert answers == [{EMAIL: {d}} for d in denied]
        assert link_of(store).pending == 0
    finally:
        await store.aclose()


async def test_a_flushed_script_is_loaded_again(
    admin: aioredis.Redis, own_redis: RedisServer
) -> None:
    tenant = tenant_of(f"om_{uuid.uuid4().hex}")
    store = await denying_store(own_redis.url, tenant, ["gone@link.example"], limit=2.0)
    sha = store._scripts.sha
    try:
        assert await store.lookup_scopes([tenant], {EMAIL: {"gone@link.example"}})
        await admin.config_resetstat()
        await admin.script_flush()
        assert await admin.script_exists(sha) == [False]
        assert await store.lookup_scopes([tenant], {EMAIL: {"gone@link.example"}}) == {
            EMAIL: {"gone@link.example"}
        }
        assert await admin.script_exists(sha) == [True]
        assert (await admin.info("errorstats"))["errorstat_NOSCRIPT"]["count"] == 1
    finally:
        await store.aclose()


async def test_a_server_that_stops_answering_fails_every_call_with_a_timeout_then_recovers(
    admin: aioredis.Redis, own_redis: RedisServer
) -> None:
    tenant = tenant_of(f"om_{uuid.uuid4().hex}")
    store = await denying_store(own_redis.url, tenant, ["late@link.example"], limit=0.5)
    query = {EMAIL: {"late@link.example"}}
    try:
        await store.lookup_scopes([tenant], query)
        await admin.execute_command("CLIENT", "PAUSE", 3_000, "ALL")
        async with asyncio.timeout(2.5):  # within the pause: the watchdog, not the server
            outcomes = await asyncio.gather(
                *(store.lookup_scopes([tenant], query) for _ in range(10)),
                return_exceptions=True,
            )
        assert all(isinstance(o, StoreTimeoutError) for o in outcomes), outcomes
        await admin.execute_command("CLIENT", "UNPAUSE")  # answered when the pause ends (7.0)
        assert await store.lookup_scopes([tenant], query) == {EMAIL: {"late@link.example"}}
    finally:
        await store.aclose()


async def test_a_cancelled_caller_does_not_shift_the_others_replies(
    admin: aioredis.Redis, own_redis: RedisServer
) -> None:
    tenant = tenant_of(f"om_{uuid.uuid4().hex}")
    denied = [f"c{i}@link.example" for i in range(6)]
    store = await denying_store(own_redis.url, tenant, denied, limit=10.0)
    try:
        await store.lookup_scopes([tenant], {EMAIL: {"warm@link.example"}})
        await admin.execute_command("CLIENT", "PAUSE", 1_500, "ALL")
        calls = [
            asyncio.create_task(store.lookup_scopes([tenant], {EMAIL: {d, "no@link.example"}}))
            for d in denied
        ]
        await wait_pending(link_of(store), len(denied))  # every call written, none answered
        for cancelled in calls[::2]:
            cancelled.cancel()
        outcomes = await asyncio.gather(*calls, return_exceptions=True)  # once the pause ends
        assert all(isinstance(o, asyncio.CancelledError) for o in outcomes[::2])
        assert outcomes[1::2] == [{EMAIL: {d}} for d in denied[1::2]]
        assert await store.lookup_scopes([tenant], {EMAIL: {denied[0]}}) == {EMAIL: {denied[0]}}
        assert link_of(store).pending == 0
    finally:
        await store.aclose()


@dataclass
class Tally:
    """Outcomes of the load by class name; `until` waits for a count, woken by each one."""

    seen: Counter[str] = field(default_factory=Counter)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    stop: bool = False

    def count(self, outcome: str) -> None:
        self.seen[outcome] += 1
        self.changed.set()

    async def until(self, condition: Callable[[Counter[str]], bool], limit: float = 30) -> None:
        async with asyncio.timeout(limit):
            while not condition(self.seen):
                self.changed.clear()
                await self.changed.wait()


async def lookups_until_stopped(store: RedisStore, tenant: str, value: str, tally: Tally) -> None:
    """Lookups back to back until the tally says stop, each outcome counted."""
    while not tally.stop:
        try:
            assert await store.lookup_scopes([tenant], {EMAIL: {value}}) == {EMAIL: {value}}
            tally.count("ok")
        except StoreUnavailableError as exc:
            tally.count(type(exc).__name__)
            await asyncio.sleep(0.01)  # pace the retries while the server is down


async def test_a_killed_server_fails_calls_with_503_errors_and_the_link_reconnects(
    admin: aioredis.Redis, own_redis: RedisServer
) -> None:
    tenant = tenant_of(f"om_{uuid.uuid4().hex}")
    values = [f"k{i}@link.example" for i in range(8)]
    store = await denying_store(own_redis.url, tenant, values, limit=2.0)
    tally = Tally()
    load = [asyncio.create_task(lookups_until_stopped(store, tenant, v, tally)) for v in values]
    try:
        await tally.until(lambda s: s["ok"] >= 50)
        await asyncio.to_thread(own_redis.stop)
        await tally.until(lambda s: s["StoreUnavailableError"] >= 8)
        await asyncio.to_thread(own_redis.start)  # empty: its rules written again below
        refill = await denying_store(own_redis.url, tenant, values, limit=2.0)
        await refill.aclose()
        ok_before = tally.seen["ok"]
        await tally.until(lambda s: s["ok"] >= ok_before + 50)
    finally:
        tally.stop = True
        await asyncio.gather(*load)
        await store.aclose()
        if not own_redis.running:
            own_redis.start()
    assert set(tally.seen) <= {"ok", "StoreUnavailableError", "StoreNotInitialisedError"}


async def test_the_link_selects_the_database_of_the_url(own_redis: RedisServer) -> None:
    tenant = tenant_of(f"om_{uuid.uuid4().hex}")
    url = own_redis.url.rsplit("/", 1)[0] + "/3"
    store = await denying_store(url, tenant, ["db3@link.example"], limit=2.0)
    try:
        assert link_of(store).endpoint.db == 3
        assert await store.lookup_scopes([tenant], {EMAIL: {"db3@link.example"}}) == {
            EMAIL: {"db3@link.example"}
        }
    finally:
        await store.aclose()


async def test_the_link_logs_in_over_tls_as_the_proxy_user(secure_redis: SecureRedis) -> None:
    tenant = tenant_of(f"om_{uuid.uuid4().hex}")
    writer = await denying_store(secure_redis.url("consumer"), tenant, ["tls@link.example"], 2.0)
    await writer.aclose()
    reader = RedisStore.from_url(secure_redis.url("proxy"), timeout=2.0)
    try:
        assert link_of(reader).endpoint.ssl is not None
        assert link_of(reader).endpoint.credentials is not None
        assert await reader.lookup(tenant, {EMAIL: {"tls@link.example", "x@link.example"}}) == {
            EMAIL: {"tls@link.example"}
        }
    finally:
        await reader.aclose()


async def test_a_wrong_password_fails_closed(secure_redis: SecureRedis) -> None:
    url = secure_redis.server.url("denyproxy-proxy", "not-the-password")
    store = RedisStore.from_url(url, timeout=2.0)
    try:
        with pytest.raises(StoreUnavailableError) as caught:
            await store.lookup_scopes(["global"], {EMAIL: {"x@link.example"}})
        assert isinstance(caught.value.__cause__, AuthenticationError)
    finally:
        await store.aclose()



def test_the_link_runs_on_uvloop(redis_url: str) -> None:
    """uvloop (--event-loop uvloop) has transports of its own: the link works on them too."""
    uvloop = pytest.importorskip("uvloop")
    tenant = tenant_of(f"om_{uuid.uuid4().hex}")

    async def lookups() -> list[dict[RuleType, set[str]]]:
        store = await denying_store(redis_url, tenant, ["uv@link.example"], limit=2.0)
        try:
            query = {EMAIL: {"uv@link.example", "other@link.example"}}
            return await asyncio.gather(*(store.lookup(tenant, query) for _ in range(20)))
        finally:
            await store.aclose()

    assert uvloop.run(lookups()) == [{EMAIL: {"uv@link.example"}}] * 20
