"""A request as the response path reads it: aiohttp's `web.Request`, or the front's own.

The front (proxy/front.py) serves plain requests without aiohttp's request machinery; the
response path (forward.py, body.py, the edge in app.py) reads either through `Incoming`.
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar, overload

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

T = TypeVar("T")


class Incoming(Protocol):
    """What the response path reads of a request (a `web.Request` is one)."""

    @property
    def method(self) -> str: ...
    @property
    def raw_path(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def headers(self) -> CIMultiDictProxy[str]: ...
    @property
    def remote(self) -> str | None: ...
    @property
    def scheme(self) -> str: ...
    @property
    def content_length(self) -> int | None: ...
    @property
    def body_exists(self) -> bool: ...
    def __getitem__(self, key: web.RequestKey[T]) -> T: ...
    def __setitem__(self, key: web.RequestKey[T], value: T) -> None: ...
    @overload
    def get(self, key: web.RequestKey[T]) -> T | None: ...
    @overload
    def get(self, key: web.RequestKey[T], default: T) -> T: ...
    def get(self, key: Any, default: Any = None) -> Any: ...


class Sink(Protocol):
    """The front's connection, as a streamed response writes to it."""

    def write(self, data: bytes) -> None: ...
    async def drain(self) -> None: ...


class FrontRequest:
    """A plain request the front read whole (head and body) off its connection."""

    __slots__ = ("_state", "body", "content_length", "headers", "keep_alive", "method",
                 "path", "raw_path", "remote", "sink")

    scheme = "http"  # the listener speaks plain HTTP (a sidecar's loopback, or behind TLS)

    def __init__(
        self, method: str, raw_path: str, headers: CIMultiDict[str], body: bytes,
        content_length: int | None, *, remote: str | None, keep_alive: bool, sink: Sink,
    ) -> None:
        self.method, self.raw_path, self.remote = method, raw_path, remote
        self.path = raw_path.partition("?")[0]
        self.headers = CIMultiDictProxy(headers)
        self.body, self.content_length = body, content_length
        self.keep_alive, self.sink = keep_alive, sink
        self._state: dict[web.RequestKey[Any], Any] = {}

    @property
    def body_exists(self) -> bool:
        return bool(self.body)

    def __getitem__(self, key: web.RequestKey[T]) -> T:
        value: T = self._state[key]
        return value

    def __setitem__(self, key: web.RequestKey[T], value: T) -> None:
        self._state[key] = value

    @overload
    def get(self, key: web.RequestKey[T]) -> T | None: ...
    @overload
    def get(self, key: web.RequestKey[T], default: T) -> T: ...
    def get(self, key: Any, default: Any = None) -> Any:
        return self._state.get(key, default)
