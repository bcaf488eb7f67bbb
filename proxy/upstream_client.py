"""The proxy's HTTP/1.1 client to its one upstream: a keep-alive pool on asyncio.Protocol,
responses parsed by llhttp (httptools).

aiohttp's ClientSession cost ~100 µs of every forwarded request (request objects, a stream
reader, timers) for features a proxy to one fixed origin never uses. A request is never
retried: a batch POST may already have cost credits. A request written on a pooled
connection the upstream closed at that very instant fails with `Disconnected` (a 502), as it
did with aiohttp; a connection the upstream closed while idle is dropped as soon as the loop
sees it (`connection_lost`), one idle longer than `KEEP_IDLE` is never used. Connections are
capped (proxy/upstream_slots.py).
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import cast

import httptools
from multidict import CIMultiDict, CIMultiDictProxy

from proxy.upstream_connect import opened
from proxy.upstream_request import request_head
from proxy.upstream_response import BodyCut, Disconnected, Malformed, Response, UpstreamError
from proxy.upstream_slots import MAX_CONNECTIONS, Slots

MAX_HEAD = 64 * 1024
"""Bytes of status line and headers a response may have before it is refused (a 502)."""
MAX_FIELD = 8190
"""Bytes of one header line (name and value), aiohttp's limit."""
MAX_IDLE = 64
KEEP_IDLE = 15.0
"""Seconds an idle connection is kept (aiohttp's keep-alive timeout): older ones are closed."""


class Connection(asyncio.Protocol):
    """One socket to the upstream: one request at a time, its response parsed as it comes."""

    def __init__(self, pool: UpstreamClient) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[Response] | None = None  # the sender, until the headers
        self.response: Response | None = None  # its body still arriving
        self.fields: CIMultiDict[str] = CIMultiDict()  # the head's, decoded as they come
        self.head_size = 0  # bytes read while the head is incomplete (one never ending)
        self.field_bytes = 0  # bytes of the header fields parsed
        self.to_head = False  # llhttp cannot be told: the body of a HEAD answer is skipped here
        self.until_close = self.sending = self.paused = False
        self.ended = False  # a clean end of stream came: a FIN, over TLS the close_notify
        self.reusable = True
        self.drained: asyncio.Future[None] | None = None
        self.idle_since = 0.0
        self.requests = 0  # begun on it: tells whether it still serves the one that began
        self.slot = True  # holds one of the pool's slots, until it closes or fails to open

    def begin(self, method: str) -> asyncio.Future[Response]:
        self.waiter = self.pool.loop().create_future()  # the pool's: no getpid per request
        self.requests += 1
        self.to_head, self.head_size, self.field_bytes = method == "HEAD", 0, 0
        return self.waiter

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # a stream (uvloop's: no subclass)

    def data_received(self, data: bytes) -> None:
        if self.waiter is None and self.response is None:
            self.abort()  # bytes nobody asked for (an idle connection): never reused
        elif not self._parsed(data):
            self.fail(Malformed())
        elif self.waiter is not None:  # still no headers: their bytes are bounded (one read
            self.head_size += len(data)  # past the bound at most is parsed)
            if self.head_size > MAX_HEAD:
                self.fail(Malformed())

    def _parsed(self, data: bytes) -> bool:
        try:
            self.parser.feed_data(data)
        except Exception:  # llhttp's errors, an upgrade, or a limit a callback raised
            return False
        return True

    def on_message_begin(self) -> None:
        """A message starts clean (the last one's trailers are no header of it); one begun
        with no request waiting (bytes past an answer in the same read) is refused."""
        if self.waiter is None:
            raise Malformed()
        self.fields = CIMultiDict()

    def on_header(self, name: bytes, value: bytes) -> None:
        """UTF-8, a byte that is not becomes U+FFFD: the text the header check reads is the text
        sent (a surrogate-escaped byte split a value for the check, then aiohttp dropped it)."""
        size = len(name) + len(value)
        self.field_bytes += size + 4
        if size > MAX_FIELD or self.field_bytes > MAX_HEAD:  # also when all came in one read
            raise Malformed()
        self.fields.add(name.decode("utf-8", "replace"), value.decode("utf-8", "replace"))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if status < 100:  # llhttp reads any three digits
            raise Malformed()
        if status < 200:  # an interim answer (100 Continue): the real one follows
            self.fields = CIMultiDict()
            return
        response = Response(self, status, CIMultiDictProxy(self.fields))
        self.fields = CIMultiDict()
        if self.sending or (self.transport and self.transport.get_write_buffer_size()):
            self.reusable = False  # answered before all was sent: the rest is no next request
        self.until_close = response.content_length is None and "chunked" not in (
            response.headers.get("Transfer-Encoding", "").lower())
        self.response, waiter, self.waiter = response, self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(response)
        if self.to_head:  # no body, whatever its headers say; llhttp would wait for one
            self.reusable = False
            self.completed()

    def on_body(self, body: bytes) -> None:
        if self.response is not None and not self.to_head:
            self.response.feed(body)

    def on_message_complete(self) -> None:
        if self.response is not None:
            self.reusable = self.reusable and self.parser.should_keep_alive()
            self.completed()

    def completed(self) -> None:
        """The body is all here: the connection goes back to the pool if both sides allow."""
        assert self.response is not None
        self.response.finish()
        self.response = None
        self.resume()
        if self.reusable and not self.sending:
            self.pool.put(self)
        else:
            self.abort()

    def eof_received(self) -> None:
        """A clean end: a FIN; over TLS only the close_notify. asyncio calls this after a bare
        TCP close too (anyone on the path can forge one): then TLS still wants to read."""
        self.reusable = False  # no next request (connection_lost comes a loop turn later)
        tls = self.transport.get_extra_info("ssl_object") if self.transport else None
        try:
            self.ended = tls is None or tls.read(1) == b""  # b"": the close_notify was read
        except ssl.SSLError:  # SSLWantReadError: the stream ended without it
            self.ended = False

    def connection_lost(self, exc: Exception | None) -> None:
        self.reusable = False
        self.pool.forget(self)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(Disconnected())
        if self.response is not None:
            self.response.finish(None if self.until_close and self.ended else BodyCut())
        if self.drained is not None and not self.drained.done():
            self.drained.set_exception(Disconnected())

    def fail(self, error: UpstreamError) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(error)
        if self.response is not None:
            self.response.finish(error)
        self.waiter = self.response = None
        self.abort()

    def abort(self) -> None:
        self.reusable = False
        if self.transport is not None:
            self.transport.abort()

    def pause(self) -> None:
        if not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()

    def pause_writing(self) -> None:
        self.drained = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self.drained is not None and not self.drained.done():
            self.drained.set_result(None)
        self.drained = None

    async def write_stream(self, body: AsyncIterator[bytes], chunked: bool) -> None:
        """A streamed request body, waiting whenever the socket's buffer is full."""
        assert self.transport is not None
        self.sending = True
        async for chunk in body:
            if self.transport.is_closing():
                break  # it answered (or failed) already: the rest is not sent
            if chunk:
                self.transport.write(b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk)
            if self.drained is not None:
                await self.drained
        if chunked and not self.transport.is_closing():
            self.transport.write(b"0\r\n\r\n")
        self.sending = False
        if self.waiter is None and self.response is None:  # it answered before we finished
            self.abort()


@dataclass(slots=True)
class UpstreamClient:
    """The pool: connections to one scheme://host:port, reused most-recent first."""

    host: str
    port: int
    host_header: str
    ssl: ssl.SSLContext | None
    connect_timeout: float
    max_idle: int = MAX_IDLE
    slots: Slots[Connection] = field(default_factory=lambda: Slots(MAX_CONNECTIONS))
    idle: deque[Connection] = field(default_factory=deque)
    _loop: asyncio.AbstractEventLoop | None = field(default=None, init=False)

    def loop(self) -> asyncio.AbstractEventLoop:
        """Its first request's, kept: `asyncio.get_running_loop` makes a getpid syscall."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    async def request(
        self, method: str, target: str, headers: CIMultiDict[str],
        body: bytes | AsyncIterator[bytes] | None = None,
    ) -> Response:
        """Send once; the response once its headers are in (its body may be in too)."""
        conn = await self.connection()
        waiter, ticket = conn.begin(method), conn.requests  # begin counts it first
        assert conn.transport is not None
        try:
            if isinstance(body, bytes | None):
                conn.transport.write(request_head(method, target, self.host_header, headers,
                                                  body) + (body or b""))
            else:
                chunked = "Content-Length" not in headers
                conn.transport.write(request_head(method, target, self.host_header, headers,
                                                  None, chunked))
                await conn.write_stream(body, chunked)
            return await waiter
        except BaseException:
            if conn.requests == ticket:  # answered whole, it may carry another request now
                conn.abort()
            raise

    async def connection(self) -> Connection:
        """An idle one still fresh, else a new one under the cap, else its turn (FIFO)."""
        now = self.loop().time()
        while self.idle:
            conn = self.idle.pop()
            if now - conn.idle_since < KEEP_IDLE and conn.reusable:
                return conn
            conn.abort()
        if self.slots.take():
            return await self.connect()
        handed = await self.slots.wait(self.loop(), self.put)
        if handed is not None and handed.reusable:  # a released one, still open
            return handed  # else the slot of one closed, or one closing since (its slot went on)
        return await (self.connect() if handed is None else self.connection())

    async def connect(self) -> Connection:
        """A new connection in the slot taken for it, given back if it does not open."""
        conn = Connection(self)
        try:
            await opened(self.loop(), conn, self.host, self.port, self.ssl, self.connect_timeout)
        except BaseException:
            self.forget(conn)
            raise
        return conn

    def put(self, conn: Connection) -> None:
        """A released connection: to the first waiter, else idle (within `max_idle`)."""
        if self.slots.waiters and self.slots.hand(conn):
            return
        if len(self.idle) >= self.max_idle:
            conn.abort()
            return
        conn.idle_since = self.loop().time()
        self.idle.append(conn)

    def forget(self, conn: Connection) -> None:
        """Closed (or never opened): out of the idle ones, its slot freed once."""
        if conn in self.idle:
            self.idle.remove(conn)
        if conn.slot:
            conn.slot = False
            self.slots.free()

    def close(self) -> None:
        while self.idle:
            self.idle.pop().abort()

