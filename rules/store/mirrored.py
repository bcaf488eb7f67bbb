"""The Redis store a Kafka consumer keeps: rules with the offsets they reach, and a marker.

The consumer writes rules together with the offsets they reach, and lookups also check, in the
same round trip, that the consumer marked the rule set complete (a flushed or rebuilding Redis
answers 503 rather than filtering against half a rule set). On a Cluster the marker is kept
once per slot, and a lookup checks those of the slots it reads.

Offsets are mirrored only while the store's generation is the one this writer positioned on
(`fence`): a planned rebuild that switched generations (SWAPDB) makes the write refuse its
offsets and raise StoreSwappedError, and the consumer positions again from the new ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline

from rules.model import Change
from rules.store.base import StoreSwappedError
from rules.store.changes import queue_changes
from rules.store.keys import (
    SLOTS,
    claim_key,
    generation_key,
    heartbeat_key,
    initialised_keys,
    offsets_key,
    pending_key,
    ready_key,
    slot_marker,
)
from rules.store.redis import MarkerGroup, RedisStore

FENCED_OFFSETS = """
-- KEYS: offsets hash, generation, pending hash; ARGV: the writer's generation, p1, o1, ...
-- a partition's pending offset goes once its offsets reach it
if (redis.call('GET', KEYS[2]) or '0') ~= ARGV[1] then return 0 end
for i = 2, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  if tonumber(redis.call('HGET', KEYS[3], ARGV[i]) or '-1') <= tonumber(ARGV[i + 1]) then
    redis.call('HDEL', KEYS[3], ARGV[i])
  end
end
return 1
"""

RAISE_PENDING = """
-- KEYS: pending hash; ARGV: p1, o1, ...: raise each partition's pending offset, never lower it
for i = 1, #ARGV, 2 do
  if tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '-1') < tonumber(ARGV[i + 1]) then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
return 1
"""


class MirroredRedisStore(RedisStore):
    """The Redis store a consumer of `topic` writes: reader for proxies, writer for it."""

    def __init__(self, client: aioredis.Redis, topic: str, cache: bool = False) -> None:
        super().__init__(client, topic, cache)
        self.topic = topic
        self.generation = "0"

    @property
    def shared(self) -> bool:
        return True

    def mirrors(self, topic: str) -> bool:
        return topic == self.topic

    def marker_group(self, slot: int | None) -> MarkerGroup:
        """Only the consumer's marker: an operator's `initialised` never stands in for it."""
        return (ready_key(self.topic),) if slot is None else (slot_marker(self.topic, slot),)

    def missing_marker_detail(self) -> str:
        return "suppression store is still loading rules"

    async def apply(
        self, changes: Sequence[Change], offsets: Mapping[int, int] | None = None
    ) -> None:
        """One pipeline: the changes in order, then the offsets they reach."""
        pipe = self.client.pipeline(transaction=False)
        queue_changes(pipe, changes)
        self._queue_offsets(pipe, offsets or {})
        replies = await self._run(pipe)
        await self.synced()
        _check_fence(replies[-1] if offsets else 1)

    async def apply_and_check(
        self, changes: Sequence[Change], offsets: Mapping[int, int],
        pending: Mapping[int, int] | None = None,
    ) -> bool:
        """apply() between two reads of the ready marker, all in the same pipeline; `pending`:
        the offsets a logged write will mirror later, recorded before its rules."""
        if self.cluster:
            return await self._apply_and_check_cluster(changes, offsets, pending or {})
        ready = ready_key(self.topic)
        pipe = self.client.pipeline(transaction=False)
        pipe.exists(ready)
        self._queue_pending(pipe, pending or {})
        queue_changes(pipe, changes)
        self._queue_offsets(pipe, offsets)
        pipe.exists(ready)
        replies = await self._run(pipe)
        await self.synced()
        _check_fence(replies[-2] if offsets else 1)
        return bool(replies[0]) and bool(replies[-1])

    async def _apply_and_check_cluster(
        self, changes: Sequence[Change], offsets: Mapping[int, int], pending: Mapping[int, int]
    ) -> bool:
        """A cluster pipeline runs per node, concurrently: the rules go first and the offsets
        after them, in a second round trip, so offsets never get ahead of rules; the reads
        cover a marker on every node, so a busy consumer also notices a node back empty."""
        groups = await self.health_groups()
        before = await self.all_present(groups)
        if pending:
            pipe = self.client.pipeline(transaction=False)
            self._queue_pending(pipe, pending)
            await self._run(pipe)
        await self.apply(changes)
        pipe = self.client.pipeline(transaction=False)
        self._queue_offsets(pipe, offsets)
        for group in groups:
            pipe.exists(*group)
        replies = await self._run(pipe)
        _check_fence(replies[0] if offsets else 1)
        return before and all(replies[-len(groups) :])

    async def claim(self, scopes: Iterable[str]) -> set[str]:
        """Claim each scope for this topic unless another topic owns it (SET NX, then GET, in
        one pipeline): the scopes another topic owns, which this consumer must not write.

        A claim is never moved, so one the pipeline confirmed holds until a flush (which also
        drops the ready marker: the consumer rebuilds and claims again).
        """
        by_key: dict[str, list[str]] = {}
        for scope in scopes:
            by_key.setdefault(claim_key(scope), []).append(scope)
        if not by_key:
            return set()
        pipe = self.client.pipeline(transaction=False)
        for key in by_key:
            pipe.set(key, self.topic, nx=True)
            pipe.get(key)
        owners = (await self._run(pipe))[1::2]
        foreign = (k for k, o in zip(by_key, owners, strict=True) if _text(o) != self.topic)
        return {scope for key in foreign for scope in by_key[key]}

    def _queue_offsets(self, pipe: Pipeline, offsets: Mapping[int, int]) -> None:
        if offsets:
            flat = [x for p, o in offsets.items() for x in (str(p), o)]
            keys = (offsets_key(self.topic), generation_key(), pending_key(self.topic))
            pipe.eval(FENCED_OFFSETS, 3, *keys, self.generation, *flat)

    def _queue_pending(self, pipe: Pipeline, pending: Mapping[int, int]) -> None:
        if pending:
            flat = [x for p, o in pending.items() for x in (str(p), o)]
            pipe.eval(RAISE_PENDING, 1, pending_key(self.topic), *flat)

    async def fence(self) -> None:
        """Remember the generation now in the store: offsets follow only while it holds."""
        raw = await self._call(self.client.get(generation_key()))
        self.generation = "0" if raw is None else str(raw)

    async def offsets(self) -> dict[int, int]:
        """The mirrored next-offset per partition; empty after a flush or on a new Redis."""
        raw = await self._call(self.client.hgetall(offsets_key(self.topic)))
        return {int(p): int(o) for p, o in raw.items()}

    async def set_heartbeat(self, fresh: Mapping[int, float]) -> None:
        if fresh:
            key = heartbeat_key(self.topic)
            await self._call(self.client.hset(key, mapping={str(p): t for p, t in fresh.items()}))

    async def heartbeat(self) -> dict[int, float]:
        raw = await self._call(self.client.hgetall(heartbeat_key(self.topic)))
        return {int(p): float(t) for p, t in raw.items()}

    async def set_ready(self, ready: bool) -> None:
        """On a Cluster: the {state} marker and every slot's, in one pipeline (only at rebuilds).

        Not ready also removes any operator's `initialised` markers, so that a proxy without
        Kafka reading this Redis never takes a rebuilding rule set for a complete one.
        """
        keys = [ready_key(self.topic)]
        if self.cluster:
            keys += [slot_marker(self.topic, s) for s in range(SLOTS)]
        if not ready:
            keys += initialised_keys(self.cluster)
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            if ready:
                pipe.set(key, "1")
            else:
                pipe.delete(key)
        await self._run(pipe)


def _text(raw: object) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _check_fence(reply: object) -> None:
    if not reply:
        raise StoreSwappedError("the rule store switched generations; positioning again")
