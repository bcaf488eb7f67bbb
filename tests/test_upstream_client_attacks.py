"""proxy/upstream_client.py against an upstream that misbehaves, over real sockets: what one
response leaves on a pooled connection must never reach the next request (another tenant's),
and a body that did not come whole is never handed over as whole."""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from multidict import CIMultiDict

from proxy.settings import Settings
from proxy.tls import upstream_ssl_context
from proxy.upstream_client import Connection, UpstreamClient
from proxy.upstream_response import HIGH_WATER, BodyCut, ConnectFailed, Malformed
from tests.harness import running_proxy
from tests.secure_services import TestCA as ThrowAwayCA
from tests.test_upstream_client import client_of, get, ok, raw_server, until


async def test_trailers_of_one_response_never_reach_the_next_ones_headers() -> None:
    """Trailers are parsed as header fields after the head: left in the connection's list,
    they became the NEXT response's first headers (a binary Content-Type first: unfiltered)."""
    trailed = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n"
               b"X-Leak: tenant-a\r\nContent-Type: application/octet-stream\r\n"
               b"X-Last: z\r\n\r\n")
    async with raw_server(trailed, ok(b"two", b"Content-Type: application/json")) as raw:
        client = client_of(raw)
        assert await (await get(client)).read() == b"abc"
        second = await get(client)
        assert await second.read() == b"two"
    assert "X-Leak" not in second.headers and "X-Last" not in second.headers
    assert second.headers.getall("Content-Type") == ["application/json"]


STRAY = b"HTTP/1.1 418 Stolen\r\nX-Stray: "
"""The start of an answer nobody asked for: the next answer's bytes would complete its head."""


@pytest.mark.parametrize("first", [ok(b"asked"), b"HTTP/1.1 204 No Content\r\n\r\n"],
                         ids=["after-a-200", "after-a-204"])
async def test_a_stray_partial_answer_after_a_response_is_never_read_by_the_next_request(
    first: bytes,
) -> None:
    """Bytes past the end of a response in the same read (pipelined junk, a 204's body)
    begin a message nobody asked for: that connection is dropped, not pooled half-parsed."""
    async with raw_server(first + STRAY, ok(b"right")) as raw:
        client = client_of(raw)
        await (await get(client)).read()
        second = await get(client)
        assert await second.read() == b"right"
    assert second.status == 200 and "X-Stray" not in second.headers
    assert raw.connections == 2


async def test_an_answer_that_began_before_the_upload_ended_never_pools_its_connection() -> None:
    """The upstream answered without reading the body: what it did not read it may take for
    the next request, whose answer would then go to whoever uses the connection next."""
    answered = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab")
        answered.set()
        await reader.readuntil(b"0\r\n\r\n")
        writer.write(b"cd")
        await reader.read()  # until the client closes it
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    conns: list[Connection] = []

    class Recording(UpstreamClient):  # keeps the connection it makes, to watch its state
        async def connect(self) -> Connection:
            conns.append(await super().connect())
            return conns[-1]

    client = Recording("127.0.0.1", port, "h", None, connect_timeout=5)

    async def body() -> AsyncIterator[bytes]:
        yield b"first"
        await answered.wait()
        await until(lambda: bool(conns) and conns[0].response is not None)  # head is in
        yield b"second"

    async with server:
        response = await client.request("POST", "/p", CIMultiDict(), body())
        assert await response.read() == b"abcd"
        assert not client.idle and conns[0].transport is not None
        assert conns[0].transport.is_closing()


def answering_then_reset(answer: bytes) -> Callable[
        [asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    """A server that writes `answer` to the first request, then resets the connection."""
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer)
        await writer.drain()
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()  # linger 0: an RST, not a FIN

    return serve


async def test_a_close_delimited_body_cut_by_a_reset_is_a_body_error() -> None:
    """Only a clean close ends a close-delimited body; a reset is a cut (never sent as whole)."""
    server = await asyncio.start_server(
        answering_then_reset(b"HTTP/1.0 200 OK\r\n\r\npartial"), "127.0.0.1", 0)
    async with server:
        response = await get(client_of(server.sockets[0].getsockname()[1]))
        with pytest.raises(BodyCut):
            await response.read()


CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"


@pytest.mark.parametrize("head", [
    CHUNKED + b"Content-Length: 5\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
], ids=["te-and-cl", "conflicting-cl", "listed-cl", "signed-cl", "chunked-not-last"])
async def test_ambiguous_framing_is_refused(head: bytes) -> None:
    """Malformed, or (chunked not last: read until close) never whole: a 502 either way."""
    async with raw_server(head + b"5\r\nhello\r\n0\r\n\r\n") as raw:
        with pytest.raises(Malformed if b"identity" not in head else BodyCut):
            await (await get(client_of(raw))).read()


async def test_a_chunked_body_without_its_last_chunk_is_a_body_error() -> None:
    async with raw_server((CHUNKED + b"\r\n5\r\nhello\r\n", True)) as raw:
        with pytest.raises(BodyCut):
            await (await get(client_of(raw))).read()


async def test_interim_answers_then_junk_is_malformed() -> None:
    interim = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early\r\n\r\n"
    async with raw_server(interim + b"JUNK\r\n\r\n") as raw:
        with pytest.raises(Malformed):
            await get(client_of(raw))


async def test_a_request_cancelled_after_its_answer_came_leaves_the_next_request_alone() -> None:
    """The answer came whole and its connection went back to the pool, but the task that
    asked is cancelled before it resumes (the watchdog's timer in the same loop turn): the
    connection now carries another request, which the cancelled one must not abort.

    The cancelled request is a coroutine stepped by hand: that holds it exactly between its
    answer and its resumption, where the loop may leave it under load."""
    answer_third = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for body in (b"warm", b"a", b"b"):
            await reader.readuntil(b"\r\n\r\n")
            if body == b"b":
                await answer_third.wait()
            writer.write(ok(body))
        await reader.read()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    async with server:
        client = client_of(server.sockets[0].getsockname()[1])
        assert await (await get(client)).read() == b"warm"
        conn = client.idle[-1]
        cancelled = get(client)
        cancelled.send(None)  # sent on the pooled connection; now waits for its answer
        await until(lambda: conn in client.idle)  # answered whole: pooled again
        other = asyncio.create_task(get(client))
        await until(lambda: conn.waiter is not None)  # the other request is on it
        with pytest.raises(asyncio.CancelledError):
            cancelled.throw(asyncio.CancelledError())
        answer_third.set()
        assert await (await other).read() == b"b"


JSON = b"Content-Type: application/json\r\n"
CUTS = {
    "content-length-short": b"HTTP/1.1 200 OK\r\n" + JSON + b"Content-Length: 900\r\n\r\n"
                            b'{"email": "a@b.co"}',
    "chunked-unterminated": b"HTTP/1.1 200 OK\r\n" + JSON + b"Transfer-Encoding: chunked\r\n"
                            b'\r\n13\r\n{"email": "a@b.co"}\r\n',
    "close-delimited-reset": b"HTTP/1.0 200 OK\r\n" + JSON + b'\r\n{"email": "a@b.co"}',
}


@pytest.mark.parametrize("answer", CUTS.values(), ids=CUTS.keys())
async def test_the_proxy_answers_502_for_a_body_that_did_not_come_whole(answer: bytes) -> None:
    """Through the whole proxy: a cut body (read up to the cut, parseable JSON) is never
    filtered and sent as if whole."""
    server = await asyncio.start_server(answering_then_reset(answer), "127.0.0.1", 0)
    upstream = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    async with (
        server, running_proxy(Settings(upstream=upstream)) as proxy,
        aiohttp.ClientSession() as session,
        session.get(f"{proxy.url}/api/v1/x", headers={"X-API-Key": "k"}) as got,
    ):
        assert got.status == 502
        assert (await got.json())["detail"] == "upstream body ended before it was complete"


@pytest.mark.parametrize("close_notify", [True, False], ids=["close-notify", "bare-tcp-close"])
async def test_a_close_delimited_tls_body_ends_whole_only_at_the_close_notify(
    tmp_path: Path, close_notify: bool,
) -> None:
    """Over TLS only the upstream's close_notify ends a close-delimited body: a bare TCP close
    (a FIN anyone on the path can forge) is a cut, never the end of the body."""
    ca = ThrowAwayCA.make(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(ca.cert, ca.key)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.0 200 OK\r\n\r\nthe body")
        await writer.drain()
        if close_notify:
            writer.close()  # TLS shutdown: the close_notify, then the TCP close
        else:
            writer.transport.abort()  # the TCP connection closes; no close_notify is sent

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    async with server:
        client = UpstreamClient("127.0.0.1", port, "h", upstream_ssl_context(str(ca.ca)),
                                connect_timeout=5)
        response = await get(client)
        if close_notify:
            assert await response.read() == b"the body"
        else:
            with pytest.raises(BodyCut):
                await response.read()


async def test_a_chunked_upload_the_client_cut_off_never_reaches_the_upstream_as_whole() -> None:
    """The caller closes mid-upload: the upstream sees the connection end without the last
    chunk (never a complete, shorter request it would act on)."""
    received = bytearray()
    upstream_done = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.extend(await reader.readuntil(b"\r\n\r\n"))
        while chunk := await reader.read(65536):  # until the proxy closes it
            received.extend(chunk)
        upstream_done.set()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    upstream = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    async with server, running_proxy(Settings(upstream=upstream, upstream_timeout=5)) as proxy:
        host, port = proxy.url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"POST /api/v1/x HTTP/1.1\r\nHost: p\r\nX-API-Key: k\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        await writer.drain()
        await until(lambda: b"hello" in received)
        writer.transport.abort()  # the caller goes away mid-upload
        await upstream_done.wait()
    assert b"Transfer-Encoding: chunked" in received
    assert not received.endswith(b"0\r\n\r\n")


async def test_a_body_of_tiny_chunks_stays_within_the_buffer_bound_in_memory() -> None:
    """HIGH_WATER bounds the bytes buffered, but each 2-byte chunk was a bytes object and a
    list slot (~45 bytes): a paused response held ~24x the bound (6 MB for 256 KiB)."""
    tiny = b"2\r\nab\r\n" * (512 * 1024)
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    async with raw_server(head + tiny + b"0\r\n\r\n") as raw:
        response = await get(client_of(raw))
        conn = response._conn
        assert isinstance(conn, Connection)
        await until(lambda: conn.paused)  # nothing more is read until the buffer is
        held = sum(map(sys.getsizeof, response._chunks)) + sys.getsizeof(response._chunks)
        assert held < 2 * HIGH_WATER
        total = 0
        while chunk := await response.readany():
            assert isinstance(chunk, bytes)
            total += len(chunk)
    assert total == 2 * 512 * 1024


async def test_an_answer_while_a_sent_body_still_waits_in_the_buffer_never_pools_it() -> None:
    """A body given whole (read before forwarding) still sits in the write buffer when the
    upstream answers without reading it: that connection is not trusted for the next request."""
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(ok(b"early"))  # nothing of the 16 MiB body read yet
        await reader.read()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    async with server:
        client = client_of(server.sockets[0].getsockname()[1])
        response = await client.request("POST", "/p", CIMultiDict(), b"x" * (16 << 20))
        assert await response.read() == b"early"
        assert not client.idle


def dribbling(head: bytes) -> Callable[
        [asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    """A slowloris upstream: `head`, then one more byte every 50 ms, never done."""
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(head)
        try:
            while True:
                await asyncio.sleep(0.05)
                writer.write(b"a")
                await writer.drain()
        except ConnectionError:
            writer.close()

    return serve


@pytest.mark.parametrize("head", [
    b"HTTP/1.1 200 OK\r\nX-Slow: ",
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n",
], ids=["head", "filtered-body"])
async def test_a_slowloris_upstream_is_cut_at_the_upstream_timeout(head: bytes) -> None:
    """Bytes that keep coming, too slowly, never reset the bound on the head or on a body read
    whole for filtering: 504, whatever the trickle."""
    server = await asyncio.start_server(dribbling(head), "127.0.0.1", 0)
    upstream = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    async with (
        server, running_proxy(Settings(upstream=upstream, upstream_timeout=0.5)) as proxy,
        aiohttp.ClientSession() as session,
        session.get(f"{proxy.url}/api/v1/x", headers={"X-API-Key": "k"}) as got,
    ):
        assert got.status == 504


async def test_the_idle_pool_keeps_at_most_max_idle_connections() -> None:
    arrived: list[int] = []
    both_in = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        arrived.append(1)
        if len(arrived) == 2:
            both_in.set()
        await both_in.wait()  # each request is in flight on a connection of its own
        writer.write(ok(b"x"))
        await reader.read()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    async with server:
        client = client_of(server.sockets[0].getsockname()[1])
        client.max_idle = 1
        for response in await asyncio.gather(get(client), get(client)):
            assert await response.read() == b"x"
        assert len(arrived) == 2 and len(client.idle) == 1


async def test_a_status_below_100_is_malformed_not_an_interim_answer() -> None:
    async with raw_server(b"HTTP/1.1 099 Odd\r\nContent-Length: 2\r\n\r\nhi" + ok(b"real")) as raw:
        with pytest.raises(Malformed):
            await get(client_of(raw))


async def test_expect_100_continue_from_the_caller_gets_one_interim_and_the_body_goes_up() -> None:
    """The caller waits for a 100 before its body: the proxy sends it; the upstream's own 100
    is skipped by the client, never a second interim or the final answer's stand-in."""
    received = bytearray()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.extend(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        received.extend(await reader.readexactly(5))
        writer.write(b"HTTP/1.1 200 OK\r\n" + JSON + b"Content-Length: 2\r\n\r\n{}")
        await reader.read()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    upstream = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    async with server, running_proxy(Settings(upstream=upstream)) as proxy:
        host, port = proxy.url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"POST /api/v1/x HTTP/1.1\r\nHost: p\r\nX-API-Key: k\r\n"
                     b"Expect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(b"hello")
        final = await reader.readuntil(b"\r\n\r\n")
        writer.close()
    assert final.startswith(b"HTTP/1.1 200 OK\r\n")
    assert received.endswith(b"\r\n\r\nhello")


async def test_a_trailer_of_one_tenants_answer_never_reaches_the_next_through_the_proxy() -> None:
    """Tenant A's answer ends with trailers; tenant B's answer, on the same pooled connection,
    reaches B with its own headers only (A's trailers came first in B's headers before)."""
    trailed = (b"HTTP/1.1 200 OK\r\n" + JSON + b"Transfer-Encoding: chunked\r\n\r\n"
               b"2\r\n{}\r\n0\r\nSet-Cookie: session=tenant-a\r\nX-Owner: tenant-a\r\n\r\n")
    async with raw_server(trailed, ok(b"[]", b"Content-Type: application/json")) as raw, \
            running_proxy(Settings(upstream=f"http://127.0.0.1:{raw.port}")) as proxy, \
            aiohttp.ClientSession() as session:
        async with session.get(f"{proxy.url}/api/v1/x", headers={"X-API-Key": "a"}) as first:
            assert await first.read() == b"{}"
        async with session.get(f"{proxy.url}/api/v1/x", headers={"X-API-Key": "b"}) as second:
            assert await second.read() == b"[]"
    assert raw.connections == 1  # B's answer came on A's connection
    assert "Set-Cookie" not in second.headers and "X-Owner" not in second.headers


async def test_a_pooled_connection_is_not_handed_out_once_its_upstream_closed_it() -> None:
    """Between the upstream's close (eof_received) and connection_lost lies one loop turn: a
    request taking the connection then was written to a closing socket (a 502, never sent)."""
    handed: list[Connection | None] = []

    class Watched(Connection):
        def eof_received(self) -> None:
            super().eof_received()
            client.probing = True
            try:  # what a request started in this very turn would get
                client.connection().send(None)
            except StopIteration as done:  # handed out at once: the pooled connection
                handed.append(done.value)
            except ConnectFailed:  # it would connect anew: nothing stale handed out
                handed.append(None)
            client.probing = False

    class Client(UpstreamClient):
        probing = False

        async def connect(self) -> Connection:
            if self.probing:
                raise ConnectFailed()
            loop = asyncio.get_running_loop()
            _, conn = await loop.create_connection(lambda: Watched(self), self.host, self.port)
            return conn

    async with raw_server((ok(b"then closed"), True)) as raw:
        client = Client("127.0.0.1", raw.port, "h", None, connect_timeout=5)
        assert await (await get(client)).read() == b"then closed"
        await until(lambda: bool(handed))
    assert handed == [None]
