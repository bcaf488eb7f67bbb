"""Rules in Redis, shared by every proxy, read and written without a Kafka consumer here.

`RedisStore` is what a proxy without Kafka reads (and its rules API writes directly).
Its lookups read, in the same round trip, a completeness marker: either `initialised` (an
operator initialised a rule set written without Kafka: `denyproxy store init`) or the ready
marker of `feeder_topic` (a `denyproxy consume` elsewhere keeps this Redis from Kafka).
A flushed or restarted-empty Redis has neither, so it answers 503 instead of filtering against
nothing. On a Cluster the markers are kept once per slot. The Kafka-fed store is in
rules/store/mirrored.py; key names in rules/store/keys.py.
"""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast, overload

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisClusterException, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from rules.lists.cache import AssignedCache
from rules.lists.model import Assigned
from rules.lists.redis import RedisLists
from rules.model import Change, Lookup, RuleChange, RuleType
from rules.scopes import filtering_scopes, has_lists
from rules.store.base import (
    Limits,
    StoreNotInitialisedError,
    StoreTimeoutError,
    StoreUnavailableError,
)
from rules.store.changes import queue_changes
from rules.store.keys import (
    admitted_key,
    initialised_key,
    initialised_keys,
    lists_version_key,
    ready_key,
    region_key,
    rule_key,
    slot_initialised,
    slot_marker,
    slot_of,
)
from rules.store.lookup_calls import LookupScripts, by_slot
from rules.store.lookup_script import LookupCall
from rules.store.redis_connection import connect, range_starts
from rules.store.tracked_lookup import TrackedLookup, fence
from rules.store.write_script import NOT_INITIALISED, SCRIPT, raise_for, script_args, script_keys

if TYPE_CHECKING:
    from rules.store.mirrored import MirroredRedisStore

DEFAULT_TOPIC = "denyproxy.rules"

T = TypeVar("T")
MarkerGroup = tuple[str, ...]
"""Markers of which at least one must exist."""
NO_LISTS = Assigned(None, ())


class RedisStore:
    """Rules in Redis without a consumer's state: trusted while a marker says complete."""

    def __init__(
        self, client: aioredis.Redis, feeder_topic: str = DEFAULT_TOPIC, cache: bool = False
    ) -> None:
        self.client = client
        self.feeder_topic = feeder_topic
        self.cluster = isinstance(client, RedisCluster)  # cache: not on a Cluster (one link)
        self.tracked = TrackedLookup(client) if cache and not self.cluster else None
        self._script = client.register_script(SCRIPT)
        self._scripts = LookupScripts(client)
        self.lists = RedisLists(self)
        self._assigned = AssignedCache(self.lists.assigned)

    @overload
    @classmethod
    def from_url(
        cls, url: str, *, timeout: float, topic: None = None, cluster: bool = False,
        feeder_topic: str = DEFAULT_TOPIC, cache: bool = False,
    ) -> RedisStore: ...

    @overload
    @classmethod
    def from_url(
        cls, url: str, *, timeout: float, topic: str, cluster: bool = False,
        feeder_topic: str = DEFAULT_TOPIC, cache: bool = False,
    ) -> MirroredRedisStore: ...

    @classmethod
    def from_url(
        cls, url: str, *, timeout: float, topic: str | None = None, cluster: bool = False,
        feeder_topic: str = DEFAULT_TOPIC, cache: bool = False,
    ) -> RedisStore:
        """A store on `url`; with `topic`, the one its Kafka consumer keeps complete; `cache`:
        lookups answered from memory while Redis tracks them (tracked_cache.py)."""
        from rules.store.mirrored import MirroredRedisStore

        client = connect(url, timeout=timeout, cluster=cluster)
        if topic is None:
            return RedisStore(client, feeder_topic, cache)
        return MirroredRedisStore(client, topic, cache)

    def marker_group(self, slot: int | None) -> MarkerGroup:
        """The markers of `slot` (None: the {state} ones) of which one must exist."""
        if slot is None:
            return (initialised_key(), ready_key(self.feeder_topic))
        return (slot_initialised(slot), slot_marker(self.feeder_topic, slot))

    def missing_marker_detail(self) -> str:
        return NOT_INITIALISED

    async def lookup(
        self, tenant: str, query: Lookup, *, include_global: bool = True,
        campaign: str | None = None,
    ) -> dict[RuleType, set[str]]:
        """Every scope (key, global, assigned lists, campaign) and the key's assignments
        version in one round trip; a version that moved re-reads the key's lists (the lookup
        stands if they are the same). A cached answer costs no round trip and no await."""
        if not any(query.values()):
            return {}
        with_lists = has_lists(tenant, include_global)
        held = NO_LISTS
        if with_lists:
            held = self._assigned.get(tenant) or await self._assigned.held(tenant)
        version_key = lists_version_key(tenant) if with_lists else None
        for _ in range(3):
            scopes = filtering_scopes(
                tenant, include_global=include_global, campaign=campaign, lists=held.ids
            )
            found = self._cached(scopes, query, version_key)
            denied, version = found or await self._lookup(scopes, query, version_key)
            if with_lists and version != held.version:  # the key's lists changed: re-read
                read_with, held = held.ids, await self._assigned.refresh(tenant)
                if held.version != version or held.ids != read_with:
                    continue
            return denied
        raise StoreUnavailableError("list assignments kept changing during the lookup")

    def cached_lists(self, tenant: str) -> tuple[str, ...]:
        return self._assigned.cached(tenant)

    async def lookup_scopes(
        self, scopes: Sequence[str], query: Lookup
    ) -> dict[RuleType, set[str]]:
        """Denied in any of `scopes`: one script call per Cluster slot, one round trip."""
        found = self._cached(tuple(scopes), query, None)
        return (found or await self._lookup(scopes, query, None))[0]

    def _cached(
        self, scopes: tuple[str, ...], query: Lookup, version_key: str | None
    ) -> tuple[dict[RuleType, set[str]], int | None] | None:
        """The answer from the local read path when it holds all of it (no I/O); else None."""
        tracked = self.tracked
        return None if tracked is None else tracked.cached(
            self.state_markers, scopes, query, version_key)

    @functools.cached_property
    def state_markers(self) -> MarkerGroup:
        """marker_group(None), named once: every lookup sends it."""
        return self.marker_group(None)

    async def _lookup(
        self, scopes: Sequence[str], query: Lookup, version_key: str | None
    ) -> tuple[dict[RuleType, set[str]], int | None]:
        """The script calls, and `version_key` read in the same round trip."""
        asked = [(t, list(values)) for t, values in query.items() if values]
        if not asked:
            return {}, None
        call, now_ms = LookupCall.of(asked), int(time.time() * 1000)
        if self.tracked is not None:  # one call on the tracking link
            pending = self.tracked.fetch(self.state_markers, scopes, call, version_key, now_ms)
        else:
            slots = by_slot(scopes, self.cluster)
            groups = [(self.marker_group(slot), group) for slot, group in slots]
            pending = self._scripts.lookup(groups, call, version_key, now_ms)
        found = await self._call(pending)
        if found is None:  # no completeness marker (on some slot)
            raise StoreNotInitialisedError(self.missing_marker_detail())
        return found[0], None if found[1] is None else int(found[1])

    async def apply(self, changes: Sequence[Change]) -> None:
        """One pipeline, the changes in order, unchecked; replayed SADD/SREM are idempotent."""
        pipe = self.client.pipeline(transaction=False)
        queue_changes(pipe, changes)
        await self._run(pipe)
        await self.synced()

    async def synced(self) -> None:
        """Every proxy caching what this process just wrote was told (tracked_lookup.fence);
        no proxy caches on a Cluster."""
        if not self.cluster:
            await self._call(fence(self.client, self.tracked))

    async def write(self, change: RuleChange, limits: Limits) -> None:
        """Marker, limits and the write itself in one script (see write_script.py)."""
        slot = slot_of(rule_key(change.tenant, change.type)) if self.cluster else None
        initialised = initialised_key() if slot is None else slot_initialised(slot)
        fed = ready_key(self.feeder_topic) if slot is None else slot_marker(self.feeder_topic, slot)
        await self._run_script(change, limits, [initialised, fed])
        await self.synced()

    async def admit(self, change: RuleChange, limits: Limits) -> str | None:
        """Limits only, before the change is published to Kafka; an add's new values are
        reserved (a minute) until `release`d: the reservation to release, if any."""
        token = str(uuid.uuid4())
        reply = await self._run_script(change, limits, [admitted_key(change.tenant)], token)
        held = reply[1] if len(reply) > 1 else None
        return held.decode() if isinstance(held, bytes) else cast(str | None, held)

    async def release(self, tenant: str, reservation: str) -> None:
        """The admitted add was applied (it counts as held now): its reservation goes."""
        await self._call(self.client.zrem(admitted_key(tenant), reservation))

    async def _run_script(
        self, change: RuleChange, limits: Limits, extra: list[str], token: str | None = None
    ) -> list[int | bytes | str]:
        keys = script_keys(change, extra)
        topic = "" if token is None else self.feeder_topic  # an admitted change's topic
        args = script_args(change, limits, apply=token is None, token=token or "", topic=topic)
        reply = cast(list[int | bytes | str], await self._call(self._script(keys=keys, args=args)))
        raise_for(reply, limits, self.feeder_topic)
        return reply

    async def offsets(self) -> dict[int, int]:
        """No consumer mirrors offsets into a store without a topic."""
        return {}

    async def ready(self) -> bool:
        """Reachable and complete: on a Cluster, markers on every node."""
        try:
            return await self.all_present(await self.health_groups())
        except StoreUnavailableError:
            return False

    async def mark_initialised(self) -> None:
        """The operator's word that the rule set is complete (rules/store/init.py)."""
        keys = initialised_keys(self.cluster)
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.set(key, "1")
        await self._run(pipe)

    async def claim_region(self, record: str) -> str:
        """Record `record` as the rule set's region unless one is recorded; the one recorded.
        One key, written once (SET NX): the first process to start on a store records it; one
        already recorded is only read, so a read-only ACL user (the proxy's) can check it."""
        recorded = await self._call(self.client.get(region_key()))
        if recorded is None:
            pipe = self.client.pipeline(transaction=False)
            pipe.set(region_key(), record, nx=True)
            pipe.get(region_key())
            recorded = (await self._run(pipe))[-1]
        return recorded.decode() if isinstance(recorded, bytes) else str(recorded)

    async def count(self, tenant: str, rule_type: RuleType) -> int:
        return int(await self._call(self.client.scard(rule_key(tenant, rule_type))))

    async def aclose(self) -> None:
        if self.tracked is not None:
            await self.tracked.aclose()
        await self._scripts.aclose()
        await self.client.aclose()

    async def health_groups(self) -> list[MarkerGroup]:
        """{state}'s markers and, per primary, those of the first slot of each range it serves.

        Reading every slot's marker costs ~0.2 s; a node that came back empty has lost all of
        its markers, so this is enough to notice it.
        """
        if not self.cluster:
            return [self.marker_group(None)]
        starts = await self._call(range_starts(cast(RedisCluster, self.client)))
        return [self.marker_group(None), *(self.marker_group(s) for s in starts)]

    async def all_present(self, groups: Sequence[MarkerGroup]) -> bool:
        """One pipeline: on a Cluster it reaches every node those keys live on at once."""
        pipe = self.client.pipeline(transaction=False)
        for group in groups:
            pipe.exists(*group)
        return all(await self._run(pipe))

    async def _run(self, pipe: Pipeline) -> list[Any]:
        return await self._call(pipe.execute())

    async def _call(self, awaitable: Awaitable[T]) -> T:
        try:
            return await awaitable
        except (RedisTimeoutError, TimeoutError) as exc:
            raise StoreTimeoutError(f"redis: {type(exc).__name__}") from exc
        # RedisClusterException is no RedisError: a cluster that cannot be reached or mapped
        # (no node answers, a slot not covered) must fail closed (503) like any Redis error.
        except (RedisError, RedisClusterException, OSError) as exc:
            raise StoreUnavailableError(f"redis: {type(exc).__name__}") from exc
