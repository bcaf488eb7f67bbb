"""The one pooled client to the configured upstream, and the mapping of its failures."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import urlsplit

import brotli
from yarl import URL

from proxy import paths
from proxy.errors import (
    BadRequestError,
    ProxyError,
    UpstreamBodyError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from proxy.settings import Settings
from proxy.tls import upstream_ssl_context
from proxy.upstream_client import UpstreamClient
from proxy.upstream_response import UpstreamError
from proxy.upstream_slots import Slots
from rules.detect import finder

CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class Upstream:
    """Where every request goes, whatever its target says."""

    base: URL
    text: str
    """`base` as text, and its scheme, host and port below: worked out once, not per request."""
    authority: tuple[str, str | None, int | None]

    @classmethod
    def parse(cls, url: str) -> Upstream:
        base = URL(url.rstrip("/"), encoded=True)
        return cls(base, str(base), (base.scheme, base.host, base.port))

    def url_for(self, target: str) -> URL:
        """The upstream URL for a request target (see `request_target`)."""
        return self.join(request_target(target))

    def join(self, checked: str) -> URL:
        """The upstream URL for a target `request_target` has already returned."""
        url = URL(f"{self.text}{checked}", encoded=True)
        if (url.scheme, url.host, url.port) != self.authority:
            raise BadRequestError("request target must stay on the upstream")
        return url


def request_target(target: str) -> str:
    """The path and query the upstream gets; 400 for anything that could leave it.

    Absolute-form targets keep only their path and query; dot segments (plain or
    percent-encoded) are refused, since the upstream's base path must stay a prefix.
    """
    if not target.startswith("/"):
        parts = urlsplit(target)
        if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
            raise BadRequestError("request target must be a path")
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    paths.check(target.partition("?")[0])
    return target


def upstream_client(settings: Settings, upstream: Upstream) -> UpstreamClient:
    """One pool for the process, to the upstream's scheme://host:port, of at most
    `upstream_max_connections`; bodies stay encoded so untouched ones stream byte for byte.
    Read timeouts are set per step by the caller (a wait for a connection counts in them)."""
    base = upstream.base
    secure = base.scheme == "https"
    host = base.raw_host or ""
    port = base.port or (443 if secure else 80)
    shown = f"[{host}]" if ":" in host else host
    return UpstreamClient(
        host=host, port=port,
        host_header=shown if base.is_default_port() else f"{shown}:{port}",
        ssl=upstream_ssl_context(settings.upstream_ca_file) if secure else None,
        connect_timeout=settings.connect_timeout,
        slots=Slots(settings.upstream_max_connections),
    )


class upstream_errors:  # lowercase: used as a context manager, named like one
    """The client's failures become 502/504 values at this one boundary.

    A plain (sync) context manager: it only catches, so it wraps awaits in async code too; a
    class, not a generator, since it wraps every request (a generator costs ~3x as much).
    """

    __slots__ = ("timeout",)

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is not None and (error := _mapped(exc, self.timeout)) is not None:
            raise error from exc


def _mapped(exc: BaseException, timeout: float) -> ProxyError | None:
    if isinstance(exc, TimeoutError):
        return UpstreamTimeoutError(f"upstream did not answer within {timeout:g} s")
    if isinstance(exc, UpstreamError):
        return UpstreamUnavailableError(exc.detail)
    return None


GZIP_MAGIC = b"\x1f\x8b"
_GZIP_TEXT_FIELDS = 0x1C  # FEXTRA | FNAME | FCOMMENT (RFC 1952 §2.3.1): skipped by zlib


@dataclass(frozen=True, slots=True)
class Decoded:
    """A content-decoded body, and whether its encoded bytes carry text no decoder returns
    (a gzip member's FEXTRA, FNAME or FCOMMENT): then they never go out as they came."""

    body: bytes
    hidden_fields: bool = False


def codings(encoding: str) -> list[str]:
    """Every content coding of a Content-Encoding list (its lines joined by commas), in the
    order they were applied; identity and empty elements dropped; 502 for one it cannot undo.
    The detail never names the upstream's value: it is text the filter has not read."""
    out = [c.strip().lower() for c in encoding.split(",")]
    out = [c for c in out if c not in ("", "identity")]
    if any(c not in _DECODERS for c in out):
        raise UpstreamBodyError("upstream content-encoding cannot be filtered (not gzip, "
                                "deflate or br)")
    return out


def decoded(body: bytes, encoding: str, limit: int) -> Decoded:
    """Every coding undone, last applied first (RFC 9110 §8.4), each capped at `limit`."""
    if not encoding:  # none (the usual): nothing to split or undo
        return Decoded(body)
    hidden = False
    for coding in reversed(codings(encoding)):
        try:
            body, fields = _DECODERS[coding](body, coding, limit)
        except (zlib.error, brotli.error) as exc:
            raise UpstreamBodyError(f"upstream {coding} body does not decode") from exc
        if len(body) > limit:
            raise UpstreamBodyError(f"upstream body is larger than {limit} bytes decoded")
        hidden = hidden or fields
    return Decoded(body, hidden)


def decode(body: bytes, encoding: str, limit: int) -> bytes:
    """The decoded body, capped at `limit` bytes however well it compresses."""
    return decoded(body, encoding, limit).body


def _inflate(body: bytes, encoding: str, limit: int) -> tuple[bytes, bool]:
    """Every gzip member, as clients decode them (a second member must not escape the filter),
    and whether a member header holds a text field.

    A truncated stream, or bytes after a deflate stream, is an error: fail closed.
    """
    wbits = 15 if encoding == "deflate" else 47  # 47: gzip or zlib header, auto-detected
    out, rest, fields = bytearray(), body, False
    while rest and len(out) <= limit:
        fields = fields or (rest[:2] == GZIP_MAGIC and len(rest) > 3
                            and bool(rest[3] & _GZIP_TEXT_FIELDS))
        inflater = zlib.decompressobj(wbits)
        out += inflater.decompress(rest, limit + 1 - len(out))
        if not inflater.eof and len(out) <= limit:
            raise zlib.error("truncated stream")
        rest = inflater.unused_data
        if wbits == 15 and rest:
            raise zlib.error("data after the deflate stream")
        if not rest.strip(b"\0"):  # trailing zero padding, as gzip(1) allows
            break
    return bytes(out), fields


def _brotli(body: bytes, encoding: str, limit: int) -> tuple[bytes, bool]:
    """Brotli with its output bounded at each step (brotli >= 1.2); a truncated stream is an
    error, as for gzip. Metadata meta-blocks (RFC 7932 §9.2) are raw bytes every decoder
    skips and Python's brotli cannot list: encoded bytes in which the text finder reads any
    candidate count as hidden fields (compressed data rarely reads as one)."""
    decompressor = brotli.Decompressor()  # brotli ships no type hints: name what it returns
    out: bytes = decompressor.process(body, output_buffer_limit=limit + 1)
    if body and len(out) <= limit and not decompressor.is_finished():
        raise brotli.error("truncated stream")
    return out, bool(finder.find_bytes(body))


_DECODERS: dict[str, Callable[[bytes, str, int], tuple[bytes, bool]]] = {
    "gzip": _inflate, "x-gzip": _inflate, "deflate": _inflate, "br": _brotli,
}
