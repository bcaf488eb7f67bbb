"""Rules in Redis, shared by every proxy: a plain store, and one a Kafka consumer mirrors.

`RedisStore` is what a proxy without Kafka reads (and the rules API writes directly).
`MirroredRedisStore` has a topic: the consumer writes rules together with the offsets they
reach, and lookups also check, in the same round trip, that the consumer marked the rule set
complete (a flushed or rebuilding Redis answers 503 rather than filtering against half a rule
set). On a Cluster the marker is kept once per slot, and a lookup checks those of the slots
it reads. Key names live in rules/store/keys.py.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable, Mapping, Sequence
from typing import Any, TypeVar, cast, overload

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisClusterException, RedisError

from rules.model import GLOBAL, Lookup, RuleChange, RuleType
from rules.store.base import StoreUnavailableError
from rules.store.keys import (
    SLOTS,
    heartbeat_key,
    offsets_key,
    ready_key,
    rule_key,
    slot_marker,
    slot_of,
)
from rules.store.redis_connection import connect

WRITE_CHUNK = 10_000
"""Values per SADD/SREM command: big events are cut so no single command blocks Redis long."""

T = TypeVar("T")


class RedisStore:
    """Rules in Redis without a consumer's state: lookups are trusted while Redis answers."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client
        self._cluster = isinstance(client, RedisCluster)

    @overload
    @classmethod
    def from_url(
        cls, url: str, *, timeout: float, topic: None = None, cluster: bool = False
    ) -> RedisStore: ...

    @overload
    @classmethod
    def from_url(
        cls, url: str, *, timeout: float, topic: str, cluster: bool = False
    ) -> MirroredRedisStore: ...

    @classmethod
    def from_url(
        cls, url: str, *, timeout: float, topic: str | None = None, cluster: bool = False
    ) -> RedisStore:
        """A store on `url`; with `topic`, the one its Kafka consumer keeps complete."""
        client = connect(url, timeout=timeout, cluster=cluster)
        return RedisStore(client) if topic is None else MirroredRedisStore(client, topic)

    async def lookup(self, tenant: str, query: Lookup) -> dict[RuleType, set[str]]:
        asked = [(t, list(values)) for t, values in query.items() if values]
        if not asked:
            return {}
        pipe = self.client.pipeline(transaction=False)
        for rule_type, values in asked:
            pipe.smismember(rule_key(tenant, rule_type), values)
            pipe.smismember(rule_key(GLOBAL, rule_type), values)
        markers = self._lookup_markers(tenant, asked[0][0])
        for marker in markers:
            pipe.get(marker)
        replies = await self._run(pipe)
        if markers and any(replies.pop() is None for _ in markers):
            raise StoreUnavailableError("suppression store is still loading rules")
        return _denied(asked, replies)

    def _lookup_markers(self, tenant: str, rule_type: RuleType) -> list[str]:
        """The ready markers a lookup must see: none without a consumer."""
        return []

    async def apply(self, changes: Sequence[RuleChange]) -> None:
        """One pipeline, the changes in order; replayed in order SADD/SREM are idempotent."""
        pipe = self.client.pipeline(transaction=False)
        _queue_changes(pipe, changes)
        await self._run(pipe)

    async def offsets(self) -> dict[int, int]:
        """No consumer mirrors offsets into a store without a topic."""
        return {}

    async def ready(self) -> bool:
        try:
            return bool(await self._call(self.client.ping()))
        except StoreUnavailableError:
            return False

    async def count(self, tenant: str, rule_type: RuleType) -> int:
        return int(await self._call(self.client.scard(rule_key(tenant, rule_type))))

    async def aclose(self) -> None:
        await self.client.aclose()

    async def _run(self, pipe: Pipeline) -> list[Any]:
        return await self._call(pipe.execute())

    async def _call(self, awaitable: Awaitable[T]) -> T:
        try:
            return await awaitable
        # RedisClusterException is no RedisError: a cluster that cannot be reached or mapped
        # (no node answers, a slot not covered) must fail closed (503) like any Redis error.
        except (RedisError, RedisClusterException, OSError, TimeoutError) as exc:
            raise StoreUnavailableError(f"redis: {type(exc).__name__}") from exc


class MirroredRedisStore(RedisStore):
    """The Redis store a consumer of `topic` writes: reader for proxies, writer for it."""

    def __init__(self, client: aioredis.Redis, topic: str) -> None:
        super().__init__(client)
        self.topic = topic

    @property
    def shared(self) -> bool:
        return True

    def mirrors(self, topic: str) -> bool:
        return topic == self.topic

    def _lookup_markers(self, tenant: str, rule_type: RuleType) -> list[str]:
        """The marker(s) a lookup must see: on a Cluster those of the two slots it reads."""
        if not self._cluster:
            return [ready_key(self.topic)]
        slots = {slot_of(rule_key(tenant, rule_type)), slot_of(rule_key(GLOBAL, rule_type))}
        return [slot_marker(self.topic, s) for s in slots]

    async def apply(
        self, changes: Sequence[RuleChange], offsets: Mapping[int, int] | None = None
    ) -> None:
        """One pipeline: the changes in order, then the offsets they reach."""
        pipe = self.client.pipeline(transaction=False)
        _queue_changes(pipe, changes)
        self._queue_offsets(pipe, offsets or {})
        await self._run(pipe)

    async def apply_and_check(
        self, changes: Sequence[RuleChange], offsets: Mapping[int, int]
    ) -> bool:
        """apply() between two reads of the ready marker, all in the same pipeline."""
        if self._cluster:
            return await self._apply_and_check_cluster(changes, offsets)
        ready = ready_key(self.topic)
        pipe = self.client.pipeline(transaction=False)
        pipe.exists(ready)
        _queue_changes(pipe, changes)
        self._queue_offsets(pipe, offsets)
        pipe.exists(ready)
        replies = await self._run(pipe)
        return bool(replies[0]) and bool(replies[-1])

    async def _apply_and_check_cluster(
        self, changes: Sequence[RuleChange], offsets: Mapping[int, int]
    ) -> bool:
        """A cluster pipeline runs per node, concurrently: the rules go first and the offsets
        after them, in a second round trip, so offsets never get ahead of rules; the reads
        cover a marker on every node, so a busy consumer also notices a node back empty."""
        markers = await self._health_markers()
        before = await self._all_exist(markers)
        await self.apply(changes)
        pipe = self.client.pipeline(transaction=False)
        self._queue_offsets(pipe, offsets)
        for marker in markers:
            pipe.exists(marker)
        after = all((await self._run(pipe))[-len(markers) :])
        return before and after

    def _queue_offsets(self, pipe: Pipeline, offsets: Mapping[int, int]) -> None:
        if offsets:
            pipe.hset(offsets_key(self.topic), mapping={str(p): o for p, o in offsets.items()})

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
        """On a Cluster: the {state} marker and every slot's, in one pipeline (only at rebuilds)."""
        key = ready_key(self.topic)
        if not self._cluster:
            await self._call(self.client.set(key, "1") if ready else self.client.delete(key))
            return
        pipe = self.client.pipeline(transaction=False)
        for marker in [key, *(slot_marker(self.topic, s) for s in range(SLOTS))]:
            if ready:
                pipe.set(marker, "1")
            else:
                pipe.delete(marker)
        await self._run(pipe)

    async def ready(self) -> bool:
        try:
            if self._cluster:
                return await self._all_exist(await self._health_markers())
            return await self._call(self.client.get(ready_key(self.topic))) is not None
        except StoreUnavailableError:
            return False

    async def _health_markers(self) -> list[str]:
        """{state}'s marker and, per primary, that of the first slot of each range it serves.

        Reading every slot's marker costs ~0.2 s; a node that came back empty has lost all of
        its markers, so this is enough for the consumer to notice it and rebuild.
        """
        cluster = cast(RedisCluster, self.client)
        await self._call(cluster.initialize())  # the slot map; a no-op once connected
        cache = cluster.nodes_manager.slots_cache
        owners = [n[0].name if (n := cache.get(s)) else None for s in range(SLOTS)]
        starts = [s for s, owner in enumerate(owners) if s == 0 or owner != owners[s - 1]]
        return [ready_key(self.topic), *(slot_marker(self.topic, s) for s in starts)]

    async def _all_exist(self, keys: Sequence[str]) -> bool:
        """One pipeline: on a Cluster it reaches every node those keys live on at once."""
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.exists(key)
        return all(await self._run(pipe))


def _queue_changes(pipe: Pipeline, changes: Sequence[RuleChange]) -> None:
    for change in changes:
        key = rule_key(change.tenant, change.type)
        for chunk in _chunks(change.values, WRITE_CHUNK):
            (pipe.sadd if change.op == "add" else pipe.srem)(key, *chunk)


def _denied(
    asked: list[tuple[RuleType, list[str]]], replies: list[Any]
) -> dict[RuleType, set[str]]:
    """Pairs of SMISMEMBER replies (own scope, global) back into the denied values per type."""
    denied: dict[RuleType, set[str]] = {}
    for i, (rule_type, values) in enumerate(asked):
        own, shared = replies[2 * i], replies[2 * i + 1]
        hits = {v for v, a, b in zip(values, own, shared) if a or b}
        if hits:
            denied[rule_type] = hits
    return denied


def _chunks(values: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]
