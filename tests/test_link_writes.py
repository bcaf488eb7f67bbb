"""rules/store/link.py: what a lookup puts on the wire, and over which socket.

The encoding and the coalescing of writes are checked byte for byte on a transport that keeps
what is written (the bytes are under test, not a server); a lookup over a redis-server's unix
socket, and the TCP socket's TCP_NODELAY, against a real one.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rules.model import RuleChange, RuleType, tenant_of
from rules.store import RedisStore
from rules.store.link import _LinkProtocol
from rules.store.lookup_calls import script_head
from rules.store.resp import Arg, Parts, pack
from tests.services import RedisServer

PING = pack([("PING",)])


class KeptWrites(asyncio.Transport):
    """A transport that keeps each write (a connection's other side is not under test)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


def connected() -> tuple[_LinkProtocol, KeptWrites]:
    protocol = _LinkProtocol(asyncio.get_running_loop(), None, "kept")
    transport = KeptWrites()
    protocol.connection_made(transport)
    return protocol, transport


def test_a_command_of_kept_parts_is_what_hiredis_packs() -> None:
    head = Parts.of(("EVALSHA_RO", "f" * 40, 2, "denyproxy:{a}:email", "é:{b}"))
    args: list[Arg] = [1, 1733100000000, "x@y.io", "ünïcode@ex.io", b"\x00raw"]
    assert head.command(args) == pack([("EVALSHA_RO", "f" * 40, 2, "denyproxy:{a}:email",
                                        "é:{b}", *args)])


def test_a_script_head_is_encoded_once_per_set_of_keys() -> None:
    keys = ("denyproxy:{state}:initialised", "denyproxy:{t}:email")
    assert script_head("a" * 40, keys) is script_head("a" * 40, (keys[0], keys[1]))
    assert script_head("a" * 40, keys) != script_head("a" * 40, keys[:1])


async def test_a_lone_call_is_written_at_once() -> None:
    protocol, transport = connected()
    first = protocol.send(PING, 1)
    assert transport.writes == [PING]
    protocol.data_received(b"+PONG\r\n")
    assert await first == [b"PONG"]
    protocol.send(PING, 1)
    assert transport.writes == [PING, PING]


async def test_calls_answered_together_send_their_next_calls_in_one_write() -> None:
    protocol, transport = connected()

    async def caller() -> None:
        await protocol.send(PING, 1)
        protocol.send(PING, 1)  # its next call, in the turn it is woken

    callers = [asyncio.create_task(caller()) for _ in range(3)]
    await asyncio.sleep(0)  # they call: the first is written at once, the others
    await asyncio.sleep(0)  # at the end of that turn
    assert transport.writes == [PING, PING * 2]
    transport.writes.clear()
    protocol.data_received(b"+PONG\r\n" * 3)  # one read answers the three
    await asyncio.gather(*callers)
    assert transport.writes == [PING * 3]


@pytest.fixture(scope="module")
def unix_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(Path(tmp_path_factory.mktemp("redis-unix")), unix=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_a_store_on_a_unix_socket_looks_up_over_its_link(unix_redis: RedisServer) -> None:
    store = RedisStore.from_url(unix_redis.unix_url, timeout=2.0)
    tenant = tenant_of("om_unix")
    try:
        assert store._scripts.link is not None and store._scripts.link.endpoint.path
        await store.apply([RuleChange("add", tenant, RuleType.EMAIL, ("a@x.io",))])
        await store.mark_initialised()
        query = {RuleType.EMAIL: ["a@x.io", "b@x.io"]}
        assert await store.lookup(tenant, query) == {RuleType.EMAIL: {"a@x.io"}}
        assert store._scripts.link.pending == 0
    finally:
        await store.aclose()


async def test_a_call_made_after_the_woken_callers_turn_is_written_at_once() -> None:
    protocol, transport = connected()
    callers = [asyncio.ensure_future(protocol.send(PING, 1)) for _ in range(2)]
    await asyncio.sleep(0)
    protocol.data_received(b"+PONG\r\n" * 2)
    await asyncio.gather(*callers)  # the callers' turn, in which nobody calls again
    await asyncio.sleep(0)
    transport.writes.clear()
    protocol.send(PING, 1)
    assert transport.writes == [PING]


async def test_the_link_over_tcp_sends_without_nagle_delay(unix_redis: RedisServer) -> None:
    """A lookup is one small write waiting for its answer: Nagle's algorithm must not hold it."""
    store = RedisStore.from_url(unix_redis.url, timeout=2.0)
    try:
        await store.mark_initialised()
        assert await store.lookup(tenant_of("om_tcp"), {RuleType.EMAIL: ["a@x.io"]}) == {}
        link = store._scripts.link
        assert link is not None and link._protocol is not None
        transport = link._protocol._transport
        assert transport is not None
        sock = transport.get_extra_info("socket")
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        await store.aclose()
