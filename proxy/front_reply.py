"""The front's responses on the wire, framed as aiohttp's server frames them.

A whole response (`web.Response`: filtered bodies, small streamed ones, errors) goes out in one
write; a streamed one (`FrontStream`) writes its head, then chunks as they come. The head gets
what aiohttp would add (Date, Server, Content-Length or chunked, Connection: close), so a client
sees the same response whichever server answered it.
"""

from __future__ import annotations

import time
from email.utils import formatdate

from aiohttp import web
from aiohttp.http import SERVER_SOFTWARE
from multidict import CIMultiDict

from proxy.incoming import Sink

_dates: tuple[int, str] = (0, "")


def _date() -> str:
    """The Date header, formatted once a second."""
    global _dates
    now = int(time.time())
    if _dates[0] != now:
        _dates = (now, formatdate(now, usegmt=True))
    return _dates[1]


def _framed(status: int, headers: CIMultiDict[str], length: int | None) -> bool:
    """Length or chunked framing as aiohttp sets it; False: the status carries no body.
    `length` None: not known yet (chunked, unless the upstream's Content-Length gives it)."""
    if status < 200 or status in (204, 304):
        headers.popall("Content-Length", None)
        headers.popall("Transfer-Encoding", None)
        return False
    if length is not None:
        headers["Content-Length"] = str(length)
    elif "Content-Length" not in headers:
        headers["Transfer-Encoding"] = "chunked"
    if headers.get("Content-Length") != "0":
        headers.setdefault("Content-Type", "application/octet-stream")
    return True


def head(status: int, reason: str, headers: CIMultiDict[str], keep_alive: bool) -> bytes:
    """Status line and headers; a CR or LF inside one is refused (ValueError), never sent."""
    if "Date" not in headers:
        headers["Date"] = _date()
    headers.setdefault("Server", SERVER_SOFTWARE)
    if not keep_alive and "Connection" not in headers:
        headers["Connection"] = "close"
    lines = "\r\n".join(map(": ".join, headers.items()))  # never empty (Server); in C: an
    text = f"HTTP/1.1 {status} {reason}\r\n{lines}\r\n\r\n"  # f-string per header cost ~0.8 µs
    if text.count("\n") != len(headers) + 2 or text.count("\r") != len(headers) + 2:
        raise ValueError("a response header holds a line break")
    return text.encode("utf-8")


def whole(response: web.Response, keep_alive: bool) -> bytes:
    """A whole response: head and body in one piece."""
    body = response.body
    if not isinstance(body, bytes):  # the response path only builds bytes bodies
        raise TypeError(f"cannot send a {type(body).__name__} body")
    if not _framed(response.status, response.headers, len(body)):
        body = b""
    return head(response.status, response.reason, response.headers, keep_alive) + body


class FrontStream(web.StreamResponse):
    """A streamed response written to the front's connection as it comes: chunked unless the
    upstream gave its length."""

    def __init__(
        self, sink: Sink, status: int, headers: CIMultiDict[str], keep_alive: bool
    ) -> None:
        super().__init__(status=status, headers=headers)
        self._sink = sink
        self._chunks = _framed(status, headers, None) and "Content-Length" not in headers
        sink.write(head(status, self.reason, headers, keep_alive))

    @property
    def prepared(self) -> bool:
        return True  # its head went out when it was made

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if self._chunks:
            self._sink.write(b"%x\r\n%s\r\n" % (len(data), data))
        else:
            self._sink.write(bytes(data))
        await self._sink.drain()

    async def write_eof(self, data: bytes = b"") -> None:
        if data:
            await self.write(data)
        if self._chunks:
            self._sink.write(b"0\r\n\r\n")
