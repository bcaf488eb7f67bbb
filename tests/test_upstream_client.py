"""proxy/upstream_client.py against a real socket server that writes raw bytes (no fake
client, no mocked socket): framing, keep-alive, limits, failures and flow control."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest
from multidict import CIMultiDict

from proxy.errors import UpstreamUnavailableError
from proxy.upstream import upstream_errors
from proxy.upstream_client import MAX_HEAD, UpstreamClient
from proxy.upstream_request import request_head
from proxy.upstream_response import (
    HIGH_WATER,
    BodyCut,
    ConnectFailed,
    Disconnected,
    Malformed,
    Response,
)

CLOSE = b""
"""In a script: close the connection instead of answering."""
HANG = b"HANG"
"""In a script: never answer (until the client closes the connection)."""


@dataclass
class RawServer:
    """Answers each request read on any connection with the next scripted bytes."""

    script: list[bytes | tuple[bytes, bool]]
    connections: int = 0
    heads: list[bytes] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    port: int = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while self.script:
                head = await reader.readuntil(b"\r\n\r\n")
                self.heads.append(head)
                if b"chunked" in head.lower():
                    self.bodies.append(await reader.readuntil(b"0\r\n\r\n"))
                answer = self.script.pop(0)
                data, close = answer if isinstance(answer, tuple) else (answer, False)
                if data == HANG:
                    await reader.read()
                    break
                writer.write(data)
                await writer.drain()
                if close or data == CLOSE:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@asynccontextmanager
async def raw_server(*script: bytes | tuple[bytes, bool]) -> AsyncIterator[RawServer]:
    raw = RawServer(list(script))
    server = await asyncio.start_server(raw.serve, "127.0.0.1", 0)
    raw.port = server.sockets[0].getsockname()[1]
    async with server:
        yield raw


def client_of(raw: RawServer | int) -> UpstreamClient:
    port = raw if isinstance(raw, int) else raw.port
    return UpstreamClient("127.0.0.1", port, f"127.0.0.1:{port}", None, connect_timeout=5)


async def until(condition: Callable[[], bool]) -> None:
    """Wait for a state of the client's socket the loop reaches by itself: it has no event to
    wait on, so it is polled (bounded by pytest's timeout; nothing is ordered by the sleep)."""
    while not condition():  # noqa: ASYNC110 (no event exists for a socket's state)
        await asyncio.sleep(0.005)


def ok(body: bytes, *extra: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%b\r\n%b" % (
        len(body), b"".join(h + b"\r\n" for h in extra), body)


async def get(client: UpstreamClient, method: str = "GET", target: str = "/x") -> Response:
    return await client.request(method, target, CIMultiDict({"X-API-Key": "k"}))


async def test_a_body_that_came_with_the_headers_is_complete_and_the_connection_reused() -> None:
    async with raw_server(ok(b"one"), ok(b"two", b"X-Odd: \xff")) as raw:
        client = client_of(raw)
        first = await get(client)
        assert first.status == 200 and first.at_eof and first.content_length == 3
        assert first.read_nowait() == b"one"
        second = await get(client)
        assert await second.read() == b"two"
        assert second.headers["X-Odd"] == "\ufffd"  # what the check reads is what is sent
    assert raw.connections == 1
    assert raw.heads[0].startswith(b"GET /x HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n" % raw.port)


async def test_chunked_body_is_read_whole_and_the_connection_reused() -> None:
    chunked = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
    async with raw_server(chunked, ok(b"again")) as raw:
        client = client_of(raw)
        response = await get(client)
        assert response.content_length is None and await response.read() == b"abcde"
        assert await (await get(client)).read() == b"again"
    assert raw.connections == 1


async def test_a_close_delimited_body_ends_at_close_and_is_not_reused() -> None:
    async with raw_server((b"HTTP/1.0 200 OK\r\n\r\nuntil the end", True), ok(b"new")) as raw:
        client = client_of(raw)
        assert await (await get(client)).read() == b"until the end"
        assert await (await get(client)).read() == b"new"
    assert raw.connections == 2


async def test_connection_close_from_the_upstream_is_not_reused() -> None:
    async with raw_server(ok(b"a", b"Connection: close"), ok(b"b")) as raw:
        client = client_of(raw)
        assert await (await get(client)).read() == b"a"
        assert not client.idle
        assert await (await get(client)).read() == b"b"
    assert raw.connections == 2


async def test_head_with_a_content_length_has_no_body_and_is_not_reused() -> None:
    async with raw_server(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", ok(b"get")) as raw:
        client = client_of(raw)
        head = await get(client, "HEAD")
        assert head.at_eof and head.content_length == 1000 and await head.read() == b""
        assert await (await get(client)).read() == b"get"
    assert raw.connections == 2


async def test_204_and_an_interim_100_are_handled_and_the_connection_reused() -> None:
    no_content = b"HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n"
    interim = b"HTTP/1.1 100 Continue\r\n\r\n" + ok(b"final")
    async with raw_server(no_content, interim) as raw:
        client = client_of(raw)
        response = await get(client, "DELETE")
        assert response.status == 204 and response.at_eof and await response.read() == b""
        final = await get(client)
        assert final.status == 200 and await final.read() == b"final"
    assert raw.connections == 1
    assert b"Content-Length: 0\r\n" in raw.heads[0]  # a DELETE without a body says so


async def test_a_pooled_connection_the_upstream_closed_is_never_used() -> None:
    async with raw_server((ok(b"then closed"), True), ok(b"fresh")) as raw:
        client = client_of(raw)
        assert await (await get(client)).read() == b"then closed"
        await until(lambda: not client.idle)  # connection_lost dropped it from the pool
        assert await (await get(client)).read() == b"fresh"
    assert raw.connections == 2


async def test_an_answer_nobody_asked_for_drops_the_connection() -> None:
    async with raw_server(ok(b"asked") + ok(b"not asked"), ok(b"next")) as raw:
        client = client_of(raw)
        assert await (await get(client)).read() == b"asked"
        await until(lambda: not client.idle)  # never handed out with a stray answer in it
        assert await (await get(client)).read() == b"next"
    assert raw.connections == 2


async def test_a_request_given_up_on_closes_its_connection() -> None:
    """The caller's timeout cancels the wait: that connection is never pooled."""
    async with raw_server(HANG, ok(b"later")) as raw:
        client = client_of(raw)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.1):
                await get(client)
        assert not client.idle
        assert await (await get(client)).read() == b"later"
    assert raw.connections == 2


@pytest.mark.parametrize("header", [b"X-Big: " + b"v" * 9000, b"X-Many: v\r\n" * 8000],
                         ids=["one-long-field", "many-fields"])
async def test_an_oversized_response_head_is_malformed(header: bytes) -> None:
    assert len(header) > 8190
    async with raw_server(b"HTTP/1.1 200 OK\r\n" + header + b"\r\n\r\n") as raw:
        with pytest.raises(Malformed):
            await get(client_of(raw))


async def test_a_head_that_never_ends_is_cut_at_the_bound() -> None:
    endless = b"HTTP/1.1 200 OK\r\n" + b"X-A: b\r\n" * (2 * MAX_HEAD // 8)
    async with raw_server(endless) as raw:
        with pytest.raises(Malformed):
            await get(client_of(raw))


async def test_garbage_is_malformed_and_maps_to_todays_502_detail() -> None:
    async with raw_server(b"NOT HTTP AT ALL\r\n\r\n") as raw:
        with pytest.raises(UpstreamUnavailableError) as caught, upstream_errors(5):
            await get(client_of(raw))
    assert caught.value.detail == "upstream sent a malformed response"


async def test_a_reset_mid_body_is_a_body_error_after_the_bytes_that_came() -> None:
    cut = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\npartial"
    async with raw_server((cut, True)) as raw:
        response = await get(client_of(raw))
        assert await response.readany() == b"partial"
        with pytest.raises(BodyCut):
            await response.readany()


async def test_closed_before_answering_is_disconnected_and_refused_is_unreachable() -> None:
    async with raw_server(CLOSE) as raw:
        with pytest.raises(Disconnected):
            await get(client_of(raw))
    with pytest.raises(ConnectFailed):
        await get(client_of(raw.port))  # the server is gone: connection refused


async def test_a_big_body_pauses_the_socket_until_it_is_read() -> None:
    size = 8 * 1024 * 1024
    async with raw_server(ok(b"z" * size)) as raw:
        client = client_of(raw)
        response = await get(client)
        conn = response._conn
        await until(lambda: conn.paused)  # the buffer passed HIGH_WATER: reading stopped
        assert response._size < HIGH_WATER + 256 * 1024  # not the 8 MiB the server sent
        total = 0
        while chunk := await response.readany():
            total += len(chunk)
        assert total == size
    assert raw.connections == 1


async def test_a_streamed_request_body_goes_chunked() -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"hello "
        yield b"world"

    async with raw_server(ok(b"got it")) as raw:
        client = client_of(raw)
        response = await client.request("POST", "/up", CIMultiDict(), body())
        assert await response.read() == b"got it"
    assert b"Transfer-Encoding: chunked\r\n" in raw.heads[0]
    assert raw.bodies == [b"6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n"]


def test_the_request_head_refuses_a_line_break_in_a_header() -> None:
    with pytest.raises(ValueError, match="line break"):
        request_head("GET", "/", "h", CIMultiDict({"X-A": "v\r\nHost: elsewhere"}), None)
    head = request_head("POST", "/p", "h:1", CIMultiDict({"Content-Length": "2"}), b"ab")
    assert head == b"POST /p HTTP/1.1\r\nHost: h:1\r\nContent-Length: 2\r\n\r\n"
