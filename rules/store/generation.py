"""Generations of the rule set on one Redis: fill the next in another logical database, while
the current one (db 0) keeps serving, then switch both in one atomic step (SWAPDB).

Proxies' connections stay on db 0 and see the new generation at once: no 503 in between.
The consumer mirrors offsets only while the generation it positioned on holds (the fenced
offsets of rules/store/mirrored.py), so its first write after the switch is refused and it
positions again from the new generation's offsets. The switch itself is WATCHed on db 0's
offsets, pending offsets and ready marker: it happens only when the new generation has reached
exactly what db 0 holds, and carries db 0's ready marker as it is. What db 0 holds includes a
logged write in flight (its rules are in, its offsets not yet: `pending`): the new generation
catches up to those offsets too, so it never lacks a rule db 0 already enforced.
Redis Cluster has no SWAPDB (one database): see rules/EVENTS.md "Generations" for the fallback.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.exceptions import WatchError

from rules.store.keys import (
    generation_key,
    normaliser_key,
    offsets_key,
    pending_key,
    ready_key,
    region_key,
    switches_key,
)

NORMALISER_VERSION = "3"
"""Raise it with any change to a normal form (rules/normalize.py, rules/company_name.py): stores
record it, and one normalised by another version is rebuilt at start-up (a planned rebuild, zero
503s). 2: company names and cities fold `oe`, `ue`, `ae` (`Koeln` = `Köln` = `Koln`). 3: they
fold `æ`, `œ` after accents (`Cǽsar` = `Caesar`), `aa` (`Aarhus` = `Århus`), dotless i, `þ`, `ð`."""

CatchUp = Callable[[dict[int, int]], Awaitable[None]]
"""Brings the new generation to exactly these offsets (the ones db 0 has applied)."""


async def prepare(live: aioredis.Redis, target: aioredis.Redis) -> str:
    """Empty the target database and give it the next generation number."""
    await target.flushdb()
    current = await live.get(generation_key())
    generation = str(int(current or 0) + 1)
    await target.set(generation_key(), generation)
    return generation


async def offsets(client: aioredis.Redis, topic: str) -> dict[int, int]:
    raw = await client.hgetall(offsets_key(topic))
    return {int(p): int(o) for p, o in raw.items()}


async def switch(
    live: aioredis.Redis, target: aioredis.Redis, db: int, topic: str, catch_up: CatchUp,
    timeout: float = 600.0,  # noqa: ASYNC109 - a bound on the whole loop, not one call
) -> int:
    """Catch the target up with db 0, then SWAPDB unless db 0 moved meanwhile; the attempts.

    The target must hold exactly db 0's offsets: behind, it catches up; ahead (the changelog
    recorded offsets db 0 has not mirrored yet: a write in flight, or a consumer that is down)
    it waits for the consumer, which would otherwise re-apply older events on top of it.
    """
    attempts, deadline = 0, time.monotonic() + timeout
    while True:
        attempts += 1
        async with live.pipeline(transaction=True) as pipe:
            await pipe.watch(offsets_key(topic), pending_key(topic), ready_key(topic))
            wanted = await _wanted(pipe, topic)
            have = await offsets(target, topic)
            if have != wanted:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"db {db} holds offsets {have}, db 0 {wanted}: not "
                                       "switched (is the consumer running?)")
                await pipe.unwatch()  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
                await _converge(have, wanted, catch_up)
                continue
            await carry_state(live, target, topic)
            pipe.multi()  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
            pipe.swapdb(0, db)
            pipe.incr(switches_key())  # in the new db 0: every local cache is invalidated
            try:
                await pipe.execute()
                return attempts
            except WatchError:  # db 0 moved meanwhile: again, within the same bound
                if time.monotonic() > deadline:
                    raise TimeoutError(f"db 0's offsets kept moving for {timeout:g} s: "
                                       f"db {db} not switched") from None
                continue


async def _wanted(pipe: Pipeline, topic: str) -> dict[int, int]:
    """db 0's offsets, raised to those a write in flight will reach (its rules already serve)."""
    wanted = {int(p): int(o) for p, o in (await pipe.hgetall(offsets_key(topic))).items()}
    for p, o in (await pipe.hgetall(pending_key(topic))).items():
        wanted[int(p)] = max(wanted.get(int(p), -1), int(o))
    return wanted


async def _converge(have: dict[int, int], wanted: dict[int, int], catch_up: CatchUp) -> None:
    if any(have.get(p, -1) < o for p, o in wanted.items()):
        await catch_up(wanted)
    else:
        await asyncio.sleep(0.05)  # ahead of db 0: wait for the consumer to get there


async def carry_state(live: aioredis.Redis, target: aioredis.Redis, topic: str) -> None:
    """What the new generation needs besides rules: the recorded region and the ready marker,
    as db 0 has them (both WATCHed): a store still loading switches to one still loading.
    Never `pending`: the new generation already holds those offsets, the writer's are refused."""
    region, ready = await live.get(region_key()), await live.exists(ready_key(topic))
    pipe = target.pipeline(transaction=False)
    if region is not None:
        pipe.set(region_key(), region)
    if ready:
        pipe.set(ready_key(topic), "1")
    else:
        pipe.delete(ready_key(topic))
    await pipe.execute()


async def drop_old(target: aioredis.Redis) -> None:
    """After the switch the target database holds the old generation: delete it."""
    await target.flushdb(asynchronous=True)


def with_db(url: str, db: int) -> str:
    """The same Redis URL on logical database `db`."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{db}"))


async def normaliser_changed(client: aioredis.Redis, version: str) -> bool:
    """Records `version` on a store that has none; True when another one is recorded."""
    await client.set(normaliser_key(), version, nx=True)
    return str(await client.get(normaliser_key())) != version


async def record_normaliser(client: aioredis.Redis, version: str) -> None:
    await client.set(normaliser_key(), version)
