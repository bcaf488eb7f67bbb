"""rules/store/redis_connection.py: the hiredis packing patch, pinned to the redis-py it patches."""

from __future__ import annotations

from collections.abc import AsyncIterator

import hiredis
import pytest
import redis
import redis.asyncio as aioredis

from rules.store.redis_connection import PATCHED_FOR, connect


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".")[:2])


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = connect(redis_url, timeout=2.0)
    yield client
    await client.aclose()


def test_installed_redis_py_is_one_the_patch_was_written_for() -> None:
    low, high = PATCHED_FOR
    assert low <= version_tuple(redis.__version__) < high, (
        f"redis-py {redis.__version__}: re-read its asyncio Connection.pack_command and "
        f"widen PATCHED_FOR={PATCHED_FOR} only if the patch still fits"
    )


def test_the_pool_uses_the_patched_connection(client: aioredis.Redis) -> None:
    connection_class = client.connection_pool.connection_class
    assert issubclass(connection_class, aioredis.Connection)
    assert connection_class is not aioredis.Connection


def test_packing_goes_through_hiredis_and_matches_redis_py(client: aioredis.Redis) -> None:
    connection = client.connection_pool.connection_class()
    args = ("SMISMEMBER", "denyproxy:{t}:email", "a@b.io", b"\xff", 7, 1.5)
    packed = connection.pack_command(*args)
    # hiredis's stub types the command as a 1-tuple; it takes any number of parts.
    assert packed == [hiredis.pack_command(("SMISMEMBER", *args[1:]))]  # type: ignore[arg-type]
    python = aioredis.Connection.pack_command(connection, *args)  # redis-py's own, unpatched
    assert b"".join(packed) == b"".join(python)


async def test_commands_round_trip_against_the_real_redis(client: aioredis.Redis) -> None:
    key = "denyproxy-test:{conn}:set"
    try:
        assert await client.sadd(key, "a@b.io", "ünï@cödé.io", "x y") == 3
        assert await client.smismember(key, ["a@b.io", "nope", "ünï@cödé.io", "x y"]) == [
            1, 0, 1, 1,
        ]
        pipe = client.pipeline(transaction=False)
        pipe.scard(key)
        pipe.srem(key, "x y")
        pipe.scard(key)
        assert await pipe.execute() == [3, 1, 2]
    finally:
        await client.delete(key)
