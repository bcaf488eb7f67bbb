"""A response from the upstream as the client hands it over, and the client's errors.

The body is buffered as it arrives, at most `HIGH_WATER` bytes before the connection stops
reading (flow control: a slow client slows the upstream, memory stays flat).
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from multidict import CIMultiDictProxy

HIGH_WATER = 256 * 1024
"""Body bytes buffered before the socket is paused (a slow client slows the upstream)."""
SMALL = 1024
"""Pieces shorter are appended to one bytearray: an object per 2-byte chunk cost ~24x the
bytes it held."""


class Source(Protocol):
    """The connection a response arrives on."""

    def pause(self) -> None: ...
    def resume(self) -> None: ...
    def abort(self) -> None: ...


class UpstreamError(Exception):
    """A failure talking to the upstream; `detail` is the client's 502 text (no PII)."""

    detail = "upstream failed"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail or self.detail)
        if detail is not None:
            self.detail = detail


class ConnectFailed(UpstreamError):
    detail = "upstream unreachable"


class TlsFailed(UpstreamError):
    detail = "upstream TLS handshake failed"


class Disconnected(UpstreamError):
    """Closed before the response's headers."""

    detail = "upstream closed the connection before answering"


class BodyCut(UpstreamError):
    detail = "upstream body ended before it was complete"


class Malformed(UpstreamError):
    detail = "upstream sent a malformed response"


class Response:
    """Status, headers and a body that is buffered as it arrives, within `HIGH_WATER`."""

    __slots__ = ("_chunks", "_conn", "_error", "_size", "_waiter", "at_eof", "content_length",
                 "headers", "status")

    def __init__(self, conn: Source, status: int, headers: CIMultiDictProxy[str]) -> None:
        self.status, self.headers, self._conn = status, headers, conn
        length = headers.get("Content-Length")
        self.content_length = int(length) if length is not None else None  # llhttp checked it
        self._chunks: list[bytes | bytearray] = []
        self._size = 0
        self._error: UpstreamError | None = None
        self._waiter: asyncio.Future[None] | None = None
        self.at_eof = False
        """The whole body has arrived (it may still sit in the buffer)."""

    async def __aenter__(self) -> Response:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.release()

    def read_nowait(self) -> bytes:
        """What is buffered, at once."""
        out = bytes(self._chunks[0]) if len(self._chunks) == 1 else b"".join(self._chunks)
        self._chunks, self._size = [], 0
        if not self.at_eof:
            self._conn.resume()
        return out

    async def readany(self) -> bytes:
        """The next buffered bytes, waiting for some; b"" once the body is over."""
        while not self._chunks and not self.at_eof:
            if self._error is not None:
                raise self._error
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self.read_nowait()

    async def read(self) -> bytes:
        """The whole body (the caller bounds it: by Content-Length or chunk by chunk)."""
        chunks = []
        while chunk := await self.readany():
            chunks.append(chunk)
        return b"".join(chunks)

    def release(self) -> None:
        """Done with it: a connection whose body was not read whole is closed, not reused."""
        self._chunks = []
        if not self.at_eof:
            self._conn.abort()

    def feed(self, data: bytes) -> None:
        last = self._chunks[-1] if self._chunks else None
        if len(data) >= SMALL:
            self._chunks.append(data)
        elif isinstance(last, bytearray):
            last += data
        else:
            self._chunks.append(bytearray(data))
        self._size += len(data)
        if self._size > HIGH_WATER:
            self._conn.pause()
        self._wake()

    def finish(self, error: UpstreamError | None = None) -> None:
        if error is None:
            self.at_eof = True
        self._error = error
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

