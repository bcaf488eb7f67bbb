"""Where rules live: one interface, an in-memory store and a Redis store.

Redis layout (one set per scope per type, hash-tagged so a scope stays in one Cluster slot):
    denyproxy:{<tenant>}:<type>          SET of normalised values
    denyproxy:{*}:<type>                 the global scope
    denyproxy:{state}:<topic>:offsets    HASH partition -> next offset to apply
    denyproxy:{state}:<topic>:ready      "1" once the consumer has caught up after a (re)build
    denyproxy:{<tag>}:<topic>:ready      Cluster only: that marker again in every slot (slot_marker)
"""

from __future__ import annotations

import functools
import itertools
import string
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol, cast

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.utils import HIREDIS_AVAILABLE
from redis.connection import HiredisRespSerializer
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot
from redis.exceptions import RedisClusterException, RedisError

from rules.model import GLOBAL, RULE_TYPES, Lookup, RuleChange, RuleType


class StoreUnavailableError(Exception):
    """The store did not answer (down, slow, or still rebuilding): callers fail closed."""


class RuleStore(Protocol):
    async def lookup(self, tenant: str, query: Lookup) -> dict[RuleType, set[str]]:
        """Which of `query` are denied for `tenant` or globally: one round trip.

        Raises StoreUnavailableError when the answer cannot be trusted.
        """

    async def apply(
        self, changes: Sequence[RuleChange], offsets: Mapping[int, int] | None = None
    ) -> None:
        """Apply changes in order, and record the consumer offsets they bring us to."""

    async def apply_and_check(
        self, changes: Sequence[RuleChange], offsets: Mapping[int, int]
    ) -> bool:
        """apply(), and whether the ready marker was there both before and after the writes.

        False tells a consumer that believed the store complete that it was flushed (or a
        rebuild began) around this write: the offsets it just mirrored cannot be trusted.
        """

    async def offsets(self) -> dict[int, int]:
        """The next offset to apply per partition; empty means rebuild from the start."""

    async def set_ready(self, ready: bool) -> None:
        """The consumer marks the rule set complete (or not) for lookups."""

    async def ready(self) -> bool:
        """True when lookups can be trusted."""

    async def aclose(self) -> None: ...


def rule_key(tenant: str, rule_type: RuleType) -> str:
    """The one place that names a rule set."""
    return f"denyproxy:{{{tenant}}}:{rule_type.value}"


def state_key(topic: str, what: str) -> str:
    return f"denyproxy:{{state}}:{topic}:{what}"


def slot_marker(topic: str, slot: int) -> str:
    """The ready marker kept in Cluster slot `slot`: it goes wherever that slot's rules go.

    A node that comes back empty (no persistence, replaced, failover that lost writes) loses
    its slots' markers along with their rules, so lookups there fail closed.
    """
    return f"denyproxy:{{{_slot_tags()[slot]}}}:{topic}:ready"


def _slot(key: str) -> int:
    return key_slot(key.encode())


@functools.cache
def _slot_tags() -> tuple[str, ...]:
    """A short hash tag per Cluster slot; searched once per process (~15 ms), on first use."""
    tags: list[str | None] = [None] * REDIS_CLUSTER_HASH_SLOTS
    left = REDIS_CLUSTER_HASH_SLOTS
    alphabet = (string.ascii_lowercase + string.digits).encode()
    for size in range(1, 5):  # 36**4 candidates: every slot is hit well before that
        for chars in itertools.product(alphabet, repeat=size):
            tag = bytes(chars)
            slot = key_slot(tag)
            if tags[slot] is None:
                tags[slot], left = tag.decode(), left - 1
                if not left:
                    return cast(tuple[str, ...], tuple(tags))
    raise AssertionError("some Cluster slot has no tag of up to 4 characters")


class MemoryStore:
    """The embedded default: rules in this process only, lost on restart.

    With a Kafka consumer feeding it, it starts not ready and the consumer marks it ready
    once it has replayed the topic.
    """

    def __init__(self, *, ready: bool = True) -> None:
        self._sets: dict[tuple[str, RuleType], set[str]] = defaultdict(set)
        self._offsets: dict[int, int] = {}
        self._ready = ready

    async def lookup(self, tenant: str, query: Lookup) -> dict[RuleType, set[str]]:
        if not self._ready:
            raise StoreUnavailableError("suppression store is still loading rules")
        denied: dict[RuleType, set[str]] = {}
        for rule_type, values in query.items():
            own, shared = self._sets.get((tenant, rule_type)), self._sets.get((GLOBAL, rule_type))
            hits = {v for v in values if (own and v in own) or (shared and v in shared)}
            if hits:
                denied[rule_type] = hits
        return denied

    async def apply(
        self, changes: Sequence[RuleChange], offsets: Mapping[int, int] | None = None
    ) -> None:
        for change in changes:
            target = self._sets[(change.tenant, change.type)]
            if change.op == "add":
                target.update(change.values)
            else:
                target.difference_update(change.values)
        self._offsets.update(offsets or {})

    async def apply_and_check(
        self, changes: Sequence[RuleChange], offsets: Mapping[int, int]
    ) -> bool:
        await self.apply(changes, offsets)
        return self._ready

    async def offsets(self) -> dict[int, int]:
        return dict(self._offsets)

    async def set_ready(self, ready: bool) -> None:
        self._ready = ready

    async def ready(self) -> bool:
        return self._ready

    async def aclose(self) -> None:
        return None


class RedisStore:
    """Rules in Redis, shared by every proxy and written by the Kafka consumer.

    `topic` set means the rules come from Kafka: lookups then also check, in the same
    round trip, that the consumer has marked the store complete (a flushed or rebuilding
    Redis answers 503 rather than filtering against half a rule set). On a Cluster the
    marker is kept once per slot, and a lookup checks those of the slots it reads.
    """

    def __init__(self, client: aioredis.Redis, topic: str | None = None) -> None:
        self.client = client
        self.topic = topic
        self._cluster = isinstance(client, RedisCluster)

    @classmethod
    def from_url(
        cls, url: str, *, timeout: float, topic: str | None = None, cluster: bool = False
    ) -> RedisStore:
        return cls(connect(url, timeout=timeout, cluster=cluster), topic)

    async def lookup(self, tenant: str, query: Lookup) -> dict[RuleType, set[str]]:
        asked = [(t, list(values)) for t, values in query.items() if values]
        if not asked:
            return {}
        pipe = self.client.pipeline(transaction=False)
        for rule_type, values in asked:
            pipe.smismember(rule_key(tenant, rule_type), values)
            pipe.smismember(rule_key(GLOBAL, rule_type), values)
        markers = [] if self.topic is None else self._lookup_markers(tenant, asked[0][0])
        for marker in markers:
            pipe.get(marker)
        replies = await self._run(pipe)
        if markers and any(replies.pop() is None for _ in markers):
            raise StoreUnavailableError("suppression store is still loading rules")
        denied: dict[RuleType, set[str]] = {}
        for i, (rule_type, values) in enumerate(asked):
            own, shared = replies[2 * i], replies[2 * i + 1]
            hits = {v for v, a, b in zip(values, own, shared) if a or b}
            if hits:
                denied[rule_type] = hits
        return denied

    async def apply(
        self, changes: Sequence[RuleChange], offsets: Mapping[int, int] | None = None
    ) -> None:
        """One pipeline: the changes in order, then (for the consumer) the offsets they reach.

        Replaying a batch gives the same state: SADD/SREM replayed in order are idempotent.
        """
        pipe = self.client.pipeline(transaction=False)
        self._queue_apply(pipe, changes, offsets)
        await self._run(pipe)

    async def apply_and_check(
        self, changes: Sequence[RuleChange], offsets: Mapping[int, int]
    ) -> bool:
        """apply() between two reads of the ready marker, all in the same pipeline.

        A cluster pipeline runs per node, concurrently: there the rules go first and the
        offsets after them, in a second round trip, so offsets never get ahead of rules; the
        reads cover a marker on every node, so a busy consumer also notices a node back empty.
        """
        assert self.topic is not None
        ready = state_key(self.topic, "ready")
        if self._cluster:
            markers = await self._health_markers()
            before = await self._all_exist(markers)
            await self.apply(changes)
            pipe = self.client.pipeline(transaction=False)
            self._queue_apply(pipe, (), offsets)
            for marker in markers:
                pipe.exists(marker)
            after = all((await self._run(pipe))[-len(markers) :])
            return before and after
        pipe = self.client.pipeline(transaction=False)
        pipe.exists(ready)
        self._queue_apply(pipe, changes, offsets)
        pipe.exists(ready)
        replies = await self._run(pipe)
        return bool(replies[0]) and bool(replies[-1])

    def _queue_apply(
        self,
        pipe: aioredis.client.Pipeline,
        changes: Sequence[RuleChange],
        offsets: Mapping[int, int] | None,
    ) -> None:
        for change in changes:
            key = rule_key(change.tenant, change.type)
            for chunk in _chunks(change.values, 10_000):
                (pipe.sadd if change.op == "add" else pipe.srem)(key, *chunk)
        if offsets and self.topic is not None:
            pipe.hset(state_key(self.topic, "offsets"), mapping={str(p): o for p, o in offsets.items()})

    async def offsets(self) -> dict[int, int]:
        """The mirrored next-offset per partition; empty after a flush or on a new Redis."""
        assert self.topic is not None
        raw = await self._call(self.client.hgetall(state_key(self.topic, "offsets")))
        return {int(p): int(o) for p, o in raw.items()}

    async def set_ready(self, ready: bool) -> None:
        """On a Cluster: the {state} marker and every slot's, in one pipeline (only at rebuilds)."""
        assert self.topic is not None
        key = state_key(self.topic, "ready")
        if not self._cluster:
            await self._call(self.client.set(key, "1") if ready else self.client.delete(key))
            return
        pipe = self.client.pipeline(transaction=False)
        for marker in [key, *(slot_marker(self.topic, s) for s in range(REDIS_CLUSTER_HASH_SLOTS))]:
            if ready:
                pipe.set(marker, "1")
            else:
                pipe.delete(marker)
        await self._run(pipe)

    async def ready(self) -> bool:
        try:
            if self.topic is None:
                return bool(await self._call(self.client.ping()))
            if self._cluster:
                return await self._all_exist(await self._health_markers())
            return await self._call(self.client.get(state_key(self.topic, "ready"))) is not None
        except StoreUnavailableError:
            return False

    def _lookup_markers(self, tenant: str, rule_type: RuleType) -> list[str]:
        """The marker(s) a lookup must see: on a Cluster those of the two slots it reads."""
        assert self.topic is not None
        if not self._cluster:
            return [state_key(self.topic, "ready")]
        slots = {_slot(rule_key(tenant, rule_type)), _slot(rule_key(GLOBAL, rule_type))}
        return [slot_marker(self.topic, s) for s in slots]

    async def _health_markers(self) -> list[str]:
        """{state}'s marker and, per primary, that of the first slot of each range it serves.

        Reading every slot's marker costs ~0.2 s; a node that came back empty has lost all of
        its markers, so this is enough for the consumer to notice it and rebuild.
        """
        assert self.topic is not None
        cluster = cast(RedisCluster, self.client)
        await self._call(cluster.initialize())  # the slot map; a no-op once connected
        cache = cluster.nodes_manager.slots_cache
        owners = [n[0].name if (n := cache.get(s)) else None for s in range(len(_slot_tags()))]
        starts = [s for s, owner in enumerate(owners) if s == 0 or owner != owners[s - 1]]
        return [state_key(self.topic, "ready"), *(slot_marker(self.topic, s) for s in starts)]

    async def _all_exist(self, keys: Sequence[str]) -> bool:
        """One pipeline: on a Cluster it reaches every node those keys live on at once."""
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.exists(key)
        return all(await self._run(pipe))

    async def count(self, tenant: str, rule_type: RuleType) -> int:
        return int(await self._call(self.client.scard(rule_key(tenant, rule_type))))

    async def aclose(self) -> None:
        await self.client.aclose()

    async def _run(self, pipe: aioredis.client.Pipeline) -> list:
        return await self._call(pipe.execute())

    async def _call(self, awaitable):  # type: ignore[no-untyped-def]
        try:
            return await awaitable
        # RedisClusterException is no RedisError: a cluster that cannot be reached or mapped
        # (no node answers, a slot not covered) must fail closed (503) like any Redis error.
        except (RedisError, RedisClusterException, OSError, TimeoutError) as exc:
            raise StoreUnavailableError(f"redis: {type(exc).__name__}") from exc


class _HiredisPacking:
    """redis-py's asyncio connections pack commands in Python (its sync ones use hiredis);
    a lookup sends every candidate twice, and packing was most of its cost."""

    _serializer = HiredisRespSerializer() if HIREDIS_AVAILABLE else None

    def pack_command(self, *args):  # type: ignore[no-untyped-def]
        return self._serializer.pack(*args)


class _Connection(_HiredisPacking, aioredis.Connection):
    pass


class _SSLConnection(_HiredisPacking, aioredis.SSLConnection):
    pass


_FAST_PACKING = {aioredis.Connection: _Connection, aioredis.SSLConnection: _SSLConnection}


def connect(
    url: str, *, timeout: float, cluster: bool = False, max_connections: int = 64
) -> aioredis.Redis:
    """A bounded, blocking pool (the default pool is unbounded) with socket timeouts."""
    if cluster:
        return RedisCluster.from_url(  # type: ignore[return-value]
            url,
            max_connections=max_connections,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            decode_responses=True,
        )
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=timeout,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        decode_responses=True,
    )
    if HIREDIS_AVAILABLE:
        pool.connection_class = _FAST_PACKING.get(pool.connection_class, pool.connection_class)
    return aioredis.Redis(connection_pool=pool)


def _chunks(values: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


__all__ = ["RULE_TYPES", "MemoryStore", "RedisStore", "RuleStore", "StoreUnavailableError"]
