"""redis-py clients as denyproxy opens them, with command packing done by hiredis.

redis-py's asyncio connections pack commands in Python (its sync ones use hiredis); a lookup
sends every candidate twice, and packing was most of its cost. The patch subclasses
redis-py's connection classes, so it is pinned to the versions it was written for:
tests/test_redis_connection.py fails when the installed redis-py leaves that range.
"""

from __future__ import annotations

from typing import Any, cast

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.connection import HiredisRespSerializer
from redis.typing import EncodableT
from redis.utils import HIREDIS_AVAILABLE

from rules.store.keys import SLOTS

PATCHED_FOR = ((8, 0), (9, 0))
"""redis-py versions [from, to) whose asyncio Connection.pack_command this replaces."""

class _HiredisPacking:
    """pack_command of redis-py's sync hiredis path, for the asyncio connections."""

    _serializer = HiredisRespSerializer()  # used only when HIREDIS_AVAILABLE (see connect)

    def pack_command(self, *args: EncodableT) -> list[bytes]:
        return cast(list[bytes], self._serializer.pack(*cast(Any, args)))  # pack's hint is wrong


class _Connection(_HiredisPacking, aioredis.Connection):
    pass


class _SSLConnection(_HiredisPacking, aioredis.SSLConnection):
    pass


FAST_PACKING: dict[type[AbstractConnection], type[AbstractConnection]] = {
    aioredis.Connection: _Connection,
    aioredis.SSLConnection: _SSLConnection,
}


def connect(
    url: str, *, timeout: float, cluster: bool = False, max_connections: int = 64
) -> aioredis.Redis:
    """A bounded, blocking pool (the default pool is unbounded) with socket timeouts."""
    if cluster:
        return RedisCluster.from_url(  # type: ignore[return-value]  # same command API
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
        pool.connection_class = FAST_PACKING.get(pool.connection_class, pool.connection_class)
    return aioredis.Redis(connection_pool=pool)


async def range_starts(cluster: RedisCluster) -> list[int]:
    """The first slot of each range of slots a primary serves (from the slot map)."""
    await cluster.initialize()  # the slot map; a no-op once connected
    cache = cluster.nodes_manager.slots_cache
    owners = [n[0].name if (n := cache.get(s)) else None for s in range(SLOTS)]
    return [s for s, owner in enumerate(owners) if s == 0 or owner != owners[s - 1]]
