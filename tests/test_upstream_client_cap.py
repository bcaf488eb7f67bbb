"""The cap on the upstream client's connections (`--upstream-max-connections`), against real
sockets: a tiny asyncio upstream that counts the connections it accepts and answers only what
the test lets it, and the proxy in front of it for the 504 of a caller that waited too long."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import aiohttp
import pytest

from proxy.settings import Settings, SettingsError, from_sources
from proxy.upstream import Upstream, upstream_client
from proxy.upstream_client import UpstreamClient
from proxy.upstream_response import ConnectFailed, UpstreamError
from proxy.upstream_slots import Slots
from tests.harness import running_proxy
from tests.services import free_ports
from tests.test_upstream_client import CLOSE, client_of, get, ok, raw_server, until

END = b""
"""In `Held.answers`: the answer to the current request is complete."""


@dataclass
class Held:
    """An upstream that writes only what the test queues (`END` closes an answer), and counts
    the connections it accepted and the most open at once."""

    answers: asyncio.Queue[bytes] = field(default_factory=asyncio.Queue)
    accepted: int = 0
    open: int = 0
    most: int = 0
    requests: int = 0
    port: int = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self.open += 1
        self.most = max(self.most, self.open)
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                self.requests += 1
                while (data := await self.answers.get()) != END:
                    writer.write(data)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.open -= 1
            writer.close()

    def answer(self, body: bytes = b"ok") -> None:
        self.answers.put_nowait(ok(body))
        self.answers.put_nowait(END)


@asynccontextmanager
async def held_upstream() -> AsyncIterator[Held]:
    held = Held()
    server = await asyncio.start_server(held.serve, "127.0.0.1", 0)
    held.port = server.sockets[0].getsockname()[1]
    async with server:
        yield held


def capped(held: Held, limit: int) -> UpstreamClient:
    client = client_of(held.port)
    client.slots = Slots(limit)
    return client


async def body_of(client: UpstreamClient) -> bytes:
    return await (await get(client)).read()


async def test_the_upstream_never_sees_more_than_the_cap_and_every_request_succeeds() -> None:
    async with held_upstream() as held:
        for _ in range(20):
            held.answer()
        client = capped(held, 4)
        bodies = await asyncio.gather(*(body_of(client) for _ in range(20)))
        assert bodies == [b"ok"] * 20
        assert held.accepted == 4 and held.most == 4  # without the cap: 20 sockets at once
        assert held.requests == 20
        assert client.slots.used == 4 and len(client.idle) == 4 and not client.slots.waiters
        client.close()


@pytest.mark.timeout(30)  # a lost handover would hang `after`
async def test_a_waiter_cancelled_in_the_queue_frees_nothing_and_the_next_one_proceeds() -> None:
    async with held_upstream() as held:
        client = capped(held, 1)
        first = asyncio.create_task(body_of(client))
        await until(lambda: held.requests == 1)
        cancelled = asyncio.create_task(body_of(client))
        after = asyncio.create_task(body_of(client))
        await until(lambda: len(client.slots.waiters) == 2)
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        assert client.slots.used == 1  # the cancelled waiter held no slot and gave none back
        held.answer(b"first")
        assert await first == b"first"
        held.answer(b"after")
        assert await after == b"after"  # the released connection went past the cancelled one
        assert held.accepted == 1 and client.slots.used == 1 and not client.slots.waiters
        client.close()


async def test_a_waiter_cancelled_after_its_handover_gives_it_on() -> None:
    """Its timeout can fire between the handover and its turn to run: the connection (or the
    slot) goes to the next waiter, or back."""
    slots: Slots[str] = Slots(1)
    assert slots.take() and not slots.take()
    returned: list[str] = []
    loop = asyncio.get_running_loop()
    for connection in (True, False):
        waiter = asyncio.create_task(slots.wait(loop, returned.append))
        await until(lambda: len(slots.waiters) == 1)
        if connection:
            assert slots.hand("conn")
        else:
            slots.free()  # a connection closed: its slot is handed over
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
    assert returned == ["conn"]  # the connection handed over came back to the pool
    assert slots.used == 0  # the slot handed over was freed: nothing held, nothing waits
    assert not slots.waiters


@pytest.mark.timeout(30)  # a slot that never came back would hang the second round
async def test_slots_come_back_after_closes_and_bad_answers() -> None:
    bad = b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"
    async with raw_server(CLOSE, bad, CLOSE, bad, *[ok(b"fine")] * 4) as raw:
        client = client_of(raw)
        client.slots = Slots(2)
        failed = await asyncio.gather(*(get(client) for _ in range(4)), return_exceptions=True)
        assert all(isinstance(error, UpstreamError) for error in failed)
        await until(lambda: client.slots.used == 0)
        bodies = await asyncio.gather(*(body_of(client) for _ in range(4)))
        assert bodies == [b"fine"] * 4
        assert raw.connections == 4 + 2  # two new ones for the four; the server then closes
        client.close()


async def test_a_connection_that_never_opens_gives_its_slot_to_the_next_waiter() -> None:
    (dead,) = free_ports(1)
    client = client_of(dead)
    client.slots = Slots(1)
    failed = await asyncio.gather(*(get(client) for _ in range(3)), return_exceptions=True)
    assert all(isinstance(error, ConnectFailed) for error in failed)
    assert client.slots.used == 0 and not client.slots.waiters


async def test_a_caller_that_waits_for_a_connection_past_the_upstream_timeout_gets_504() -> None:
    """One connection, streaming a download the test keeps alive, while a second caller waits
    for it: the wait counts in `upstream_timeout` (the caller never reaches the upstream)."""
    settings = Settings(upstream_max_connections=1, upstream_timeout=1.0)
    async with held_upstream() as held:
        settings = settings.with_(upstream=f"http://127.0.0.1:{held.port}")
        async with running_proxy(settings) as proxy, aiohttp.ClientSession() as session:
            held.answers.put_nowait(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream"
                                    b"\r\nTransfer-Encoding: chunked\r\n\r\n")
            async with session.get(f"{proxy.url}/download") as download:
                waiting = asyncio.create_task(answer_of(session, f"{proxy.url}/x"))
                while not waiting.done():  # one chunk at a time, each through the proxy
                    held.answers.put_nowait(b"1\r\nb\r\n")
                    assert await download.content.readany() == b"b"
                status, detail = await waiting
                assert status == 504 and "within 1 s" in detail
                held.answers.put_nowait(b"0\r\n\r\n")
                held.answers.put_nowait(END)
                assert await download.content.read() == b""
    assert held.accepted == 1 and held.requests == 1


async def answer_of(session: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    async with session.get(url) as response:
        return response.status, str((await response.json())["detail"])


@pytest.mark.parametrize("value", ["0", "-2", "many", "1.5"])
def test_the_cap_must_be_a_positive_whole_number(value: str) -> None:
    with pytest.raises(SettingsError) as info:
        from_sources({"upstream_max_connections": value}, {})
    assert str(info.value).startswith(f"--upstream-max-connections={value!r}: ")


def test_the_cap_defaults_to_aiohttps_100_and_reaches_the_client() -> None:
    assert Settings().upstream_max_connections == 100
    settings = from_sources({}, {"DENYPROXY_UPSTREAM_MAX_CONNECTIONS": "7"})
    client = upstream_client(settings, Upstream.parse("http://127.0.0.1:1"))
    assert client.slots.limit == 7 and client.slots.used == 0
