"""One pipelined connection to a single Redis node, for the lookup's hot path.

A round trip through redis-py's asyncio client costs ~100 µs of CPU (a pooled connection checked
out and in, its stream reader, its retry wrapper); a lookup makes one on every request. The link
keeps one connection, writes each call's commands in one write as soon as it is made (calls
from many tasks back to back) and hands the replies, parsed by hiredis, to the callers in the
order they were sent. Its errors are redis-py's exception classes, so RedisStore maps them as
it maps the client's (503). Not for a Cluster: that stays on redis-py's routing.

With a `Tracker` the link also asks Redis to track what it reads (RESP3, `CLIENT TRACKING ON`):
invalidation pushes arrive on the same socket, in order with the replies, and go to the
tracker; a call's `hook` sees its replies at that same point of the stream (tracked_lookup.py).
"""

from __future__ import annotations

import asyncio
import socket
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, cast

import hiredis
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from rules.store.endpoint import Endpoint
from rules.store.resp import Command, Reply, pack, raise_errors

Hook = Callable[[list[Reply]], None]
"""Sees a call's replies where they stand in the stream, before its caller resumes."""
PUSH: type | None = getattr(hiredis, "PushNotification", None)
"""hiredis >= 3.2 parses a RESP3 push into this list subclass; older ones cannot tell it apart."""
TRACKING: tuple[tuple[str, ...], ...] = (("HELLO", "3"), ("CLIENT", "TRACKING", "ON"))


class Tracker(Protocol):
    """Told what the link's tracking knows: set up (or refused), invalidated, lost."""

    def opened(self, link: _LinkProtocol | None, refused: str | None) -> None: ...

    def invalidated(self, keys: list[bytes] | None) -> None: ...

    def lost(self) -> None: ...


@dataclass(slots=True)
class _Pending:
    """One call: its future, how many replies it waits for, when it was written."""

    future: asyncio.Future[list[Reply]]
    count: int
    sent: float
    hook: Hook | None = None
    replies: list[Reply] = field(default_factory=list)


class _LinkProtocol(asyncio.Protocol):
    """Replies matched to calls in FIFO order; one watchdog timer for the oldest call."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, timeout: float | None, name: str,
        tracker: Tracker | None = None,
    ) -> None:
        self._loop = loop
        self._tracker = tracker
        self.tracking = False  # CLIENT TRACKING is on: replies and pushes share this stream
        self.heard = loop.time()  # when Redis last sent anything
        self._timeout = timeout
        self._name = name
        self._reader = hiredis.Reader()
        self._pending: deque[_Pending] = deque()
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._out: list[bytes] = []  # calls to write at the end of this turn of the loop
        self._answered = 0  # calls the last data_received answered
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass of it
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)

    @property
    def pending(self) -> int:
        return len(self._pending)

    def heard_within(self, seconds: float) -> bool:
        return self._loop.time() - self.heard < seconds

    def send(
        self, packed: bytes, count: int, hook: Hook | None = None
    ) -> asyncio.Future[list[Reply]]:
        """Write one call's commands; its future holds their `count` replies."""
        if self.closed or self._transport is None:
            error = RedisConnectionError(f"Connection to {self._name} is closed.")
            self.fail(error)  # closed: the next call connects again
            raise error
        future: asyncio.Future[list[Reply]] = self._loop.create_future()
        if self._out:
            self._out.append(packed)
        elif self._pending or self._answered > 1:  # more calls are likely in this turn
            self._out.append(packed)
            self._loop.call_soon(self._flush)
        else:
            self._transport.write(packed)
        self._pending.append(_Pending(future, count, self._loop.time(), hook))
        if self._timer is None and self._timeout is not None:
            self._arm()
        return future

    def _flush(self) -> None:
        """One write for the calls made in one turn of the loop while others were in flight."""
        out, self._out, self._answered = self._out, [], 0
        if self._transport is not None and not self.closed:
            self._transport.write(b"".join(out))

    def data_received(self, data: bytes) -> None:
        """The replies of the calls `data` completes; several answered at once wake callers
        whose next calls (made in the next turn) go out in one write, not a first one alone."""
        self._reader.feed(data)
        self._answered, self.heard = 0, self._loop.time()
        try:
            while (reply := self._reader.gets()) is not False:
                if PUSH is not None and type(reply) is PUSH:
                    self._pushed(cast(list[Reply], reply))
                else:
                    self._deliver(reply)
        except (hiredis.ProtocolError, IndexError) as exc:  # garbage, or a reply nobody asked
            self.fail(RedisConnectionError(f"Protocol error from {self._name}: {exc!r}"))
        if self._answered > 1:  # after the callers' turn (their wake-ups are queued first)
            self._loop.call_soon(self._settle)

    def _settle(self) -> None:
        """The callers woken together have had their turn: a later lone call goes at once."""
        self._answered = 0

    def _pushed(self, push: list[Reply]) -> None:
        """An invalidation (its keys, or None: everything) for the tracker; other pushes ignored."""
        if self._tracker is not None and len(push) == 2 and push[0] == b"invalidate":
            if self._pending and self._pending[0].replies:  # a call half answered: its first
                self._pending[0].hook = None  # replies may predate the write, never cached
            self._tracker.invalidated(cast(list[bytes] | None, push[1]))

    def _deliver(self, reply: Reply) -> None:
        head = self._pending[0]
        head.replies.append(reply)
        if len(head.replies) == head.count:
            self._pending.popleft()
            self._answered += 1
            if head.hook is not None:  # in stream order: before any later push is read
                head.hook(head.replies)
            if not head.future.done():  # a cancelled caller's replies are read and dropped
                head.future.set_result(head.replies)

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(RedisConnectionError(f"Connection to {self._name} lost: {exc!r}"))

    def _arm(self) -> None:
        assert self._timeout is not None
        self._timer = self._loop.call_at(self._pending[0].sent + self._timeout, self._check)

    def _check(self) -> None:
        """The watchdog: the oldest call unanswered past the timeout fails every call (a late
        reply would break the FIFO); else it waits for the call that is now the oldest."""
        self._timer = None
        if not self._pending or self._timeout is None:
            return
        if self._loop.time() - self._pending[0].sent >= self._timeout:
            self.fail(RedisTimeoutError(f"Timeout reading from {self._name}"))
        else:
            self._arm()

    def fail(self, error: RedisError) -> None:
        """Close the connection and fail every pending call with (a copy of) `error`."""
        if self.closed:
            return
        self.closed = True
        if self._tracker is not None:
            self._tracker.lost()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        pending, self._pending = self._pending, deque()
        for call in pending:
            if not call.future.done():
                call.future.set_exception(type(error)(*error.args))
        if self._transport is not None:
            self._transport.abort()


class RedisLink:
    """One connection to one Redis node; `call` sends a few commands and awaits their replies.

    A lost connection or a timeout fails the calls pending on it; the next call reconnects
    (one connect at a time)."""

    def __init__(self, endpoint: Endpoint, tracker: Tracker | None = None) -> None:
        self.endpoint = endpoint
        self.tracker = tracker
        self._protocol: _LinkProtocol | None = None
        self._lock = asyncio.Lock()

    @classmethod
    def of(cls, client: aioredis.Redis, tracker: Tracker | None = None) -> RedisLink:
        """A link to the node `client` (a single-node redis-py client) talks to."""
        return cls(Endpoint.of(client.connection_pool), tracker)

    @property
    def pending(self) -> int:
        """Calls written and not yet answered."""
        return 0 if self._protocol is None else self._protocol.pending

    async def call(self, commands: Sequence[Command]) -> list[Reply]:
        """The replies of `commands`, written in one write; an error reply is raised."""
        return await self.call_packed(pack(commands), len(commands))

    async def call_packed(self, packed: bytes, count: int, hook: Hook | None = None) -> list[Reply]:
        """The `count` replies of the commands `packed` holds (pack(), Parts.command()); `hook`
        sees them where they stand in the stream (pushes before them were handled)."""
        protocol = self._protocol
        if protocol is None or protocol.closed:
            protocol = await self._connected()
        return raise_errors(await protocol.send(packed, count, hook))

    async def aclose(self) -> None:
        async with self._lock:
            if self._protocol is not None:
                self._protocol.fail(RedisConnectionError("The link was closed."))
                self._protocol = None

    async def _connected(self) -> _LinkProtocol:
        async with self._lock:
            if self._protocol is None or self._protocol.closed:
                self._protocol = await self._connect()
            return self._protocol

    async def _connect(self) -> _LinkProtocol:
        """A new connection, authenticated and on its database, within the connect timeout."""
        try:
            async with asyncio.timeout(self.endpoint.connect_timeout):
                protocol = await self._open()
                try:
                    await self._hello(protocol)
                except BaseException:
                    protocol.fail(RedisConnectionError("The link could not be set up."))
                    raise
                return protocol
        except TimeoutError as exc:
            raise RedisTimeoutError(f"Timeout connecting to {self.endpoint.describe()}") from exc
        except OSError as exc:
            raise RedisConnectionError(
                f"Error connecting to {self.endpoint.describe()}: {type(exc).__name__}"
            ) from exc

    async def _open(self) -> _LinkProtocol:
        loop, e = asyncio.get_running_loop(), self.endpoint
        name = e.describe()

        def factory() -> _LinkProtocol:
            return _LinkProtocol(loop, e.timeout, name, self.tracker)

        if e.path is not None:
            _, protocol = await loop.create_unix_connection(factory, e.path)
        else:
            _, protocol = await loop.create_connection(factory, e.host, e.port, ssl=e.ssl)
        return protocol

    async def _hello(self, protocol: _LinkProtocol) -> None:
        """AUTH, CLIENT SETNAME and SELECT as redis-py's connection sends them, in one write."""
        commands: list[Command] = []
        if self.endpoint.credentials is not None:
            credentials = await self.endpoint.credentials.get_credentials_async()
            commands.append(("AUTH", *credentials))
        if self.endpoint.client_name:
            commands.append(("CLIENT", "SETNAME", self.endpoint.client_name))
        if self.endpoint.db:
            commands.append(("SELECT", self.endpoint.db))
        if commands:
            raise_errors(await protocol.send(pack(commands), len(commands)))
        if self.tracker is not None:
            await self._track(protocol, self.tracker)

    async def _track(self, protocol: _LinkProtocol, tracker: Tracker) -> None:
        """RESP3 and CLIENT TRACKING ON; a refusal (old Redis or hiredis, an ACL without them)
        leaves the link as it was and tells the tracker why (its cache stays off)."""
        if PUSH is None:
            tracker.opened(None, "hiredis < 3.2 cannot tell a push from a reply")
            return
        for command in TRACKING:  # one by one: no TRACKING on a connection that stayed RESP2
            reply = (await protocol.send(pack([command]), 1))[0]
            if isinstance(reply, hiredis.ReplyError):
                tracker.opened(None, f"{command[0]} refused: {str(reply).split(' ')[0]}")
                return
        protocol.tracking = True
        tracker.opened(protocol, None)
