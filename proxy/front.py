"""The proxy listener's front: plain requests read and answered straight off the socket.

aiohttp's server costs a request ~30-40 CPU µs of its own (its request, router, response and
writer objects around the handler: bench/listener_cost.py), a tenth of a filtered 8-contact
request. The front reads a plain request whole (proxy/front_head.py says which are), runs it
through the same edge and Forwarder as aiohttp's route, and writes the response
(proxy/front_reply.py). Any other request, and the rest of its connection, goes to aiohttp's
server for the application, as if that server had accepted the connection: every odd case
keeps aiohttp's handling.

Requests on a connection are answered one at a time, in order (pipelined ones wait in the
buffer, which stops reading past `HIGH_WATER`); an idle connection is closed after
`KEEPALIVE` seconds, as aiohttp's server does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import cast

from aiohttp import web

from proxy.front_head import HAND_OVER, Head, read_head
from proxy.front_reply import whole
from proxy.incoming import FrontRequest

log = logging.getLogger("denyproxy.front")
HIGH_WATER = 256 * 1024
KEEPALIVE = 75.0
Serve = Callable[[FrontRequest], Awaitable[web.StreamResponse]]


@dataclass(slots=True)
class Front:
    """The connections of one listener, and what serves their requests."""

    serve: Serve  # the edge around the Forwarder
    fallback: web.Server  # aiohttp's server for the application: takes connections over
    api_prefixes: tuple[str, ...]
    max_body: int
    connections: set[Connection] = field(default_factory=set)
    sweeper: asyncio.Task[None] | None = None
    answers: set[asyncio.Task[None]] = field(default_factory=set)  # requests in progress
    quiet: asyncio.Event = field(default_factory=asyncio.Event)  # set while none are

    def __call__(self) -> Connection:
        if self.sweeper is None:
            self.sweeper = asyncio.get_running_loop().create_task(self._sweep())
        return Connection(self)

    async def _sweep(self) -> None:
        """Closes connections idle for `KEEPALIVE`: no request in progress, no body arriving
        (a head trickled byte by byte must still be whole within it)."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(KEEPALIVE / 5)
            since = loop.time() - KEEPALIVE
            for conn in [c for c in self.connections if not c.busy and c.idle_since < since]:
                conn.close()

    def started(self, answer: asyncio.Task[None]) -> None:
        self.answers.add(answer)
        self.quiet.clear()

    def finished(self, answer: asyncio.Task[None]) -> None:
        self.answers.discard(answer)
        if not self.answers:
            self.quiet.set()

    async def shutdown(self, grace: float) -> None:
        """Idle connections closed now; busy ones once their response is out, within `grace`
        seconds; then the rest, their requests cancelled and waited for up to `grace` again
        (as aiohttp's server does its handlers), so none outlives the application."""
        if self.sweeper is not None:
            self.sweeper.cancel()
        for conn in list(self.connections):
            conn.closing = True
            if not conn.busy:
                conn.close()
        if self.answers:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.quiet.wait(), grace)
        for conn in list(self.connections):
            conn.close()
        late = list(self.answers)  # a client gone mid-request leaves `connections` before
        for answer in late:
            answer.cancel()
        if late:
            await asyncio.wait(late, timeout=grace)


class Connection(asyncio.Protocol):
    """One client connection, until it is closed or handed to aiohttp's server."""

    def __init__(self, front: Front) -> None:
        self.front = front
        self.buffer = bytearray()
        self.head: Head | None = None  # the head at the buffer's start, its body still coming
        self.busy = False  # a request is being answered
        self.closing = False  # close after the response in progress (shutting down)
        self.eof = False  # the client sent all it will: close once the buffer is answered
        self.task: asyncio.Task[None] | None = None
        self.paused = False  # reading paused: the buffer is past HIGH_WATER
        self.transport: asyncio.Transport | None = None
        self.remote: str | None = None
        self.idle_since = asyncio.get_running_loop().time()
        self._drained: asyncio.Future[None] | None = None
        self._writable = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a stream transport (uvloop's is one without subclassing asyncio.Transport)
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.remote = peer[0] if isinstance(peer, tuple) else None
        self.front.connections.add(self)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.head is not None:  # a body on its way is not idleness (a head must come whole)
            self.idle_since = asyncio.get_running_loop().time()
        if self.busy:
            if len(self.buffer) > HIGH_WATER and self.transport is not None:
                self.transport.pause_reading()
                self.paused = True
            return
        self._next()

    def eof_received(self) -> bool | None:
        """The client is done sending: what it sent is still answered, then the connection
        closes."""
        self.eof = True
        if not self.busy:
            self._next()
        return True  # the transport stays open: `_next` or `_answer` closes it

    def connection_lost(self, exc: Exception | None) -> None:
        self.front.connections.discard(self)
        self.transport = None
        if self._drained is not None and not self._drained.done():
            self._drained.set_exception(ConnectionResetError("client closed the connection"))

    def pause_writing(self) -> None:
        self._writable = False

    def resume_writing(self) -> None:
        self._writable = True
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def write(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)

    async def drain(self) -> None:
        """Waits while the client reads slower than the response comes."""
        if self.transport is None:
            raise ConnectionResetError("client closed the connection")
        if self._writable:
            return
        self._drained = asyncio.get_running_loop().create_future()
        await self._drained

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def _next(self) -> None:
        """The next request in the buffer: served, handed over, or waited for."""
        if self.closing or self.transport is None:
            return
        front = self.front
        # a head read once: a body trickled in pieces must not cost a parse of it per piece
        found = self.head or read_head(self.buffer, front.api_prefixes, front.max_body)
        if found is HAND_OVER:
            self._hand_over()
            return
        self.head = found
        end = None if found is None else found.size + (found.content_length or 0)
        if found is None or end is None or len(self.buffer) < end:
            if self.eof:  # it will never be whole
                self.close()
            elif self.paused:  # the rest is still to come
                self.transport.resume_reading()
                self.paused = False
            return
        body = bytes(self.buffer[found.size:end])
        del self.buffer[:end]
        self.head = None
        request = FrontRequest(
            found.method, found.raw_path, found.headers, body, found.content_length,
            remote=self.remote, keep_alive=found.keep_alive, sink=self,
        )
        self.busy = True
        self.task = asyncio.get_running_loop().create_task(self._answer(request))
        front.started(self.task)

    async def _answer(self, request: FrontRequest) -> None:
        keep_alive = request.keep_alive and not self.closing
        try:
            response = await self.front.serve(request)
            if not response.prepared:
                assert isinstance(response, web.Response)
                self.write(whole(response, keep_alive))
            if not self._writable and self.transport is not None:  # before the next request
                async with asyncio.timeout(KEEPALIVE):  # is read, as aiohttp; a client that
                    await self.drain()  # stops reading is let go
        except Exception as exc:  # mid-stream, unsendable, or not read: only closing is left
            log.warning("response aborted", extra={"fields": {"error": type(exc).__name__}})
            if self.transport is not None:
                self.transport.abort()
            return
        finally:
            self.busy = False
            if self.task is not None:
                self.front.finished(self.task)
            self.idle_since = asyncio.get_running_loop().time()
        if not keep_alive or self.closing:
            self.close()
            return
        if self.paused and self.transport is not None:
            self.transport.resume_reading()
            self.paused = False
        if self.buffer or self.eof:
            self._next()

    def _hand_over(self) -> None:
        """aiohttp's server gets the connection, from the first byte of this request on."""
        transport = self.transport
        assert transport is not None
        self.front.connections.discard(self)
        handler = self.front.fallback()
        transport.set_protocol(handler)
        handler.connection_made(transport)
        if self.paused:
            transport.resume_reading()
        data, self.buffer, self.transport = bytes(self.buffer), bytearray(), None
        handler.data_received(data)
        if self.eof:
            handler.eof_received()  # the transport stays open: aiohttp's keep-alive closes it
