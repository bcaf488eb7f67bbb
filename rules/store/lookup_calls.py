"""Sending the lookup script (lookup_script.py): one EVALSHA_RO per Cluster slot, in one
pipeline, with a key's assignments version (named lists) read in the same round trip.

On a single node both go over the store's link (link.py): one write, one read, no redis-py
round trip on the hot path. A Cluster routes them through redis-py."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from typing import Any, cast

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoScriptError

from rules.model import RuleType
from rules.store.keys import prefix, slot_of
from rules.store.link import RedisLink
from rules.store.lookup_script import LOOKUP, NOT_COMPLETE, READ_ONLY, LookupCall
from rules.store.resp import Parts, pack

LookupArgs = tuple[tuple[str, ...], list[str | int]]
"""KEYS and ARGV of one lookup script call."""
Found = tuple[dict[RuleType, set[str]], bytes | None]
"""The denied values by type, and the key's lists version (None: not asked, or no lists)."""


@functools.lru_cache(maxsize=1024)  # a few kB each: a few MB at most
def script_head(sha: str, keys: tuple[str, ...]) -> Parts:
    """EVALSHA_RO, the SHA and `keys`, encoded once: a tenant's lookups name the same keys
    (the tuple LookupCall.keys keeps), so only ARGV is packed per call."""
    return Parts.of((READ_ONLY, sha, len(keys), *keys))


@functools.lru_cache(maxsize=4096)
def get_command(key: str) -> bytes:
    """GET `key`, packed: a key's assignments version, read by each of its lookups."""
    return pack([("GET", key)])


class LookupScripts:
    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client
        self.cluster = isinstance(client, RedisCluster)
        self.sha = hashlib.sha1(LOOKUP.encode()).hexdigest()
        self.link = None if self.cluster else RedisLink.of(client)

    async def lookup(
        self, groups: Sequence[tuple[tuple[str, ...], list[str]]], call: LookupCall,
        version_key: str | None, now_ms: int,
    ) -> Found | None:
        """One call per (markers, scopes) group (a Cluster slot's); None: a marker is missing."""
        calls = [(call.keys(markers, scopes), call.args(len(markers), now_ms))
                 for markers, scopes in groups]
        replies, version = await self.evaluate(calls, version_key)
        denied: dict[RuleType, set[str]] = {}
        for reply in replies:
            if reply[0] == NOT_COMPLETE:
                return None
            call.denied(reply[1:], denied)
        return denied, version

    async def evaluate(
        self, calls: Sequence[LookupArgs], version_key: str | None = None
    ) -> tuple[list[list[int]], bytes | None]:
        """The registered lookup by its SHA; a server that lost it (restart, SCRIPT FLUSH) gets
        it loaded (on every primary of a Cluster) once and the calls again."""
        try:
            return await self.evalsha(calls, version_key)
        except NoScriptError:
            await self.client.script_load(LOOKUP)
            return await self.evalsha(calls, version_key)

    async def evalsha(
        self, calls: Sequence[LookupArgs], version_key: str | None
    ) -> tuple[list[list[int]], bytes | None]:
        """EVALSHA_RO: a read-only script, so a user allowed only to read the rule sets runs it;
        `version_key` (a key's assignments version) is a GET in the same pipeline.

        redis-py routes EVALSHA_RO by asking the server for its keys (COMMAND GETKEYS, one more
        round trip): on a Cluster each call names its node, the owner of its scopes' slot.
        """
        if self.link is not None:
            return await self.on_link(self.link, calls, version_key)
        pipe = self.client.pipeline(transaction=False)
        for keys, args in calls:
            node = await self.node(keys[-1])
            pipe.execute_command(READ_ONLY, self.sha, len(keys), *keys, *args, **node)
        if version_key is not None:
            pipe.get(version_key)
        replies = await pipe.execute()
        return (replies[:-1], replies[-1]) if version_key is not None else (replies, None)

    async def on_link(
        self, link: RedisLink, calls: Sequence[LookupArgs], version_key: str | None
    ) -> tuple[list[list[int]], bytes | None]:
        """The calls and the GET of `version_key` in one write on the link."""
        packed = [script_head(self.sha, keys).command(args) for keys, args in calls]
        if version_key is not None:
            packed.append(get_command(version_key))
        replies = await link.call_packed(b"".join(packed), len(packed))
        if version_key is None:
            return cast(list[list[int]], replies), None
        return cast(list[list[int]], replies[:-1]), cast(bytes | None, replies[-1])

    async def aclose(self) -> None:
        if self.link is not None:
            await self.link.aclose()

    async def node(self, key: str) -> dict[str, Any]:
        """On a Cluster, where a call on `key`'s slot goes; off one, nothing to say."""
        if not self.cluster:
            return {}
        cluster = cast(RedisCluster, self.client)
        await cluster.initialize()  # the slot map; a no-op once connected
        return {"target_nodes": cluster.get_node_from_key(key)}


def by_slot(scopes: Sequence[str], cluster: bool) -> list[tuple[int | None, list[str]]]:
    """The scopes of each slot a lookup reads (one group, slot None, off a Cluster)."""
    if not cluster:
        return [(None, list(dict.fromkeys(scopes)))]
    slots: dict[int, list[str]] = {}
    for scope in dict.fromkeys(scopes):
        slots.setdefault(slot_of(prefix(scope)), []).append(scope)
    return sorted(slots.items())
