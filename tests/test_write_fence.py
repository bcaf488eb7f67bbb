"""A rule write is acknowledged only once every proxy caching what it changed was told (real
Redis). Redis queues the writer's reply after the invalidations the write caused, but writes its
queue last in, first out: without a second round trip the acknowledgement can leave before the
invalidation reaches a replica, whose next response (to the caller who was told "done") then
serves a cached "not denied". Many tracking connections widen that window from microseconds to
milliseconds, so the order is observable here on every run."""

from __future__ import annotations

import select
import socket
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from rules.model import RuleChange, RuleType, tenant_of
from rules.store import RedisStore
from rules.store.base import Limits
from rules.store.keys import rule_key
from rules.store.resp import pack

TRACKERS = 300
"""Tracking connections: their invalidations take Redis a few milliseconds to write."""


def tracking_sockets(redis_url: str, key: str, count: int) -> list[socket.socket]:
    """`count` RESP3 connections tracking `key` (they read it), never read by an event loop."""
    parts = urlsplit(redis_url)
    sockets = []
    for _ in range(count):
        sock = socket.create_connection((parts.hostname or "localhost", parts.port or 6379))
        sock.sendall(pack([("HELLO", "3"), ("CLIENT", "TRACKING", "ON"), ("SCARD", key)]))
        received = b""
        while not received.endswith(b":0\r\n") or b"+OK\r\n" not in received:
            received += sock.recv(65536)
        sockets.append(sock)
    return sockets


def unread(sockets: list[socket.socket]) -> int:
    """How many of `sockets` have nothing to read yet (zero timeout: what is there now)."""
    poller = select.poll()
    for sock in sockets:
        poller.register(sock, select.POLLIN)
    return len(sockets) - len(poller.poll(0))


@pytest.fixture
def tenant() -> str:
    return tenant_of(f"om_{uuid.uuid4().hex}")


@pytest.fixture
def trackers(redis_url: str, tenant: str) -> Iterator[list[socket.socket]]:
    sockets = tracking_sockets(redis_url, rule_key(tenant, RuleType.EMAIL), TRACKERS)
    yield sockets
    for sock in sockets:
        sock.close()


@pytest.mark.parametrize(
    ("cache", "looked_up"), [(False, False), (True, False), (True, True)],
    ids=["writer-without-cache", "cache-link-never-opened", "cache-link-open"],
)
async def test_every_tracking_connection_is_told_before_a_write_returns(
    redis_url: str, tenant: str, trackers: list[socket.socket], cache: bool, looked_up: bool
) -> None:
    """The Kafka consumer and the CLI write without a cache; a proxy whose rules API takes a
    write may never have made a lookup (its own link not open), or may have."""
    store = RedisStore.from_url(redis_url, timeout=5.0, feeder_topic=f"f-{uuid.uuid4().hex[:8]}",
                                cache=cache)
    try:
        await store.mark_initialised()
        if looked_up:
            assert await store.lookup(tenant, {RuleType.EMAIL: {"jane@acme.com"}}) == {}
            assert store.tracked is not None and store.tracked.answers.tracking()
        assert unread(trackers) == TRACKERS
        await store.write(RuleChange("add", tenant, RuleType.EMAIL, ("jane@acme.com",)), Limits())
        assert unread(trackers) == 0
    finally:
        await store.aclose()


async def test_a_pipelined_apply_fences_too(
    redis_url: str, tenant: str, trackers: list[socket.socket]
) -> None:
    store = RedisStore.from_url(redis_url, timeout=5.0)
    try:
        await store.apply([RuleChange("add", tenant, RuleType.EMAIL, ("jane@acme.com",))])
        assert unread(trackers) == 0
    finally:
        await store.aclose()
