"""The response path, one straight line: forward → collect → one lookup → strip → send."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from multidict import CIMultiDict

from proxy import headers, metrics, paths
from proxy.candidates import HeaderIds
from proxy.errors import PayloadTooLargeError, StoreError, UpstreamBodyError
from proxy.settings import Settings
from proxy.tenant import forwarded_key, scope_of
from proxy.upstream import CHUNK, Upstream, decode, request_target, upstream_errors
from rules.catalogue.hits import HitBatch
from rules.match import Found, Identifier, Raw, collect, query_for, redact
from rules.model import GLOBAL, Lookup, RuleType, tenant_of
from rules.store import RuleStore, StoreUnavailableError

SUPPRESSED_HEADER = "X-Denyproxy-Suppressed"
SUPPRESSED = web.RequestKey("suppressed", int)
REQUEST_ID = web.RequestKey("request_id", str)
TENANT = web.RequestKey("tenant", str)
STREAMING = web.RequestKey("streaming", bool)  # headers sent: an error now can only abort
_BODY_TOO_LARGE = web.RequestKey("body_too_large", bool)
_JSON_TYPES = ("application/json", "text/json")
_BINARY_PREFIXES = ("image/", "audio/", "video/", "font/")
_BINARY_TYPES = frozenset({"application/octet-stream", "application/pdf", "application/zip",
                           "application/gzip", "application/x-tar", "application/x-7z-compressed"})


def api_key(request: web.Request) -> str | None:
    """The caller's key as the upstream would get it (X-API-Key or Bearer); 400 if ambiguous."""
    out = headers.upstream_request(request.headers, peer=None, scheme="", length=None)
    key = forwarded_key(out)
    request[TENANT] = tenant_of(key) if key else GLOBAL
    return key


def logged_tenant(request: web.Request) -> str:
    """For the access line: the scope if one was derived (a refused request has none)."""
    return request.get(TENANT, "-")


def media_type(response: aiohttp.ClientResponse) -> str:
    return response.headers.get("Content-Type", "").partition(";")[0].strip().lower()


def claims_json(response: aiohttp.ClientResponse) -> bool:
    media = media_type(response)
    return media in _JSON_TYPES or media.endswith("+json")


def is_binary(response: aiohttp.ClientResponse) -> bool:
    """Clearly not text: the only kind of 206 that may pass a filtered route."""
    media = media_type(response)
    return media.startswith(_BINARY_PREFIXES) or media in _BINARY_TYPES


@dataclass(slots=True)
class Forwarder:
    settings: Settings
    upstream: Upstream
    session: aiohttp.ClientSession
    store: RuleStore
    hits: HitBatch | None = None
    """Suppression counts of the catalogue, batched: never a store round trip here."""

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        target = request_target(request.raw_path)
        exempt = paths.is_exempt(target, self.settings.exempt_paths)
        url = self.upstream.url_for(target)
        response = await self.send(request, url, filtered=not exempt)
        try:
            if exempt or self._streams(request, response):
                return await self.streamed(request, response)
            if response.status == 206:
                raise UpstreamBodyError("upstream sent a partial body that cannot be filtered")
            return await self.filtered(request, response)
        finally:
            response.release()

    async def send(
        self, request: web.Request, url: object, body: bytes | None = None, filtered: bool = True
    ) -> aiohttp.ClientResponse:
        """Forward once (never retried: a batch POST may already have cost credits).

        The tenant is derived from the very headers sent. The body streams from the client
        unless the caller has already read it.
        """
        length = request.content_length
        out_headers = headers.upstream_request(
            request.headers, peer=request.remote, scheme=request.scheme, length=length,
            filtered=filtered,
        )
        request[TENANT] = scope_of(out_headers)
        out_headers["X-Request-Id"] = request[REQUEST_ID]
        if length is not None and length > self.settings.max_request_body:
            raise _too_large(self.settings.max_request_body)
        if body is None and request.body_exists:
            body = _limited(request, self.settings.max_request_body)
        started = time.perf_counter()
        with upstream_errors(self.settings.upstream_timeout):
            try:
                async with asyncio.timeout(self.settings.upstream_timeout):
                    response = await self.session.request(
                        request.method, url, headers=out_headers, data=body,
                        allow_redirects=False,
                    )
            except aiohttp.ClientError as exc:
                if request.get(_BODY_TOO_LARGE):
                    raise _too_large(self.settings.max_request_body) from exc
                raise
        metrics.UPSTREAM_LATENCY.observe(time.perf_counter() - started)
        return response

    def _streams(self, request: web.Request, response: aiohttp.ClientResponse) -> bool:
        if request.method == "HEAD" or response.status in (204, 304):
            return True
        if response.status == 206:  # a slice: only a binary one may pass untouched
            return is_binary(response)
        return not claims_json(response)

    async def streamed(
        self, request: web.Request, response: aiohttp.ClientResponse
    ) -> web.StreamResponse:
        """Body untouched; headers still checked (a store round trip only if one holds a
        candidate)."""
        out_headers = headers.client_response(response.headers, rewritten=False)
        found = HeaderIds.of(out_headers, self.settings.phone_region)
        if found.by_header:
            answer = await self.lookup(request[TENANT], query_for(found.identifiers()))
            found.strip(out_headers, answer)
        return await stream(request, response, out_headers, self.settings.upstream_timeout)

    async def filtered(
        self, request: web.Request, response: aiohttp.ClientResponse
    ) -> web.Response:
        raw = await read_body(response, self.settings)
        encoding = response.headers.get("Content-Encoding", "")
        body = decode(raw, encoding, self.settings.max_filter_body)
        out_headers = headers.client_response(response.headers, rewritten=False)
        headers.private(out_headers)
        in_headers = HeaderIds.of(out_headers, self.settings.phone_region)
        doc, found, duplicates = None, Found(), False
        if body and not body.isspace():
            doc, found, duplicates = _inspect(body, self.settings.phone_region)
        query = _query(found, in_headers.identifiers())
        answer = await self.lookup(request[TENANT], query) if query else {}
        in_headers.strip(out_headers, answer)
        denied = found.denied(answer)
        if answer and self.hits is not None:
            self.hits.record(request[TENANT], answer)
        if not denied and not duplicates:
            out_headers[SUPPRESSED_HEADER] = "0"
            return web.Response(status=response.status, body=raw, headers=out_headers)
        return self._rewritten(request, response, doc, denied, out_headers)

    def _rewritten(
        self, request: web.Request, response: aiohttp.ClientResponse, doc: Any,
        denied: dict[Raw, RuleType], out_headers: CIMultiDict[str],
    ) -> web.Response:
        try:
            doc, counts = redact(doc, denied, self.settings.policy)
            body = orjson.dumps(doc)
        except (RecursionError, orjson.JSONEncodeError) as exc:
            raise UpstreamBodyError("upstream JSON is nested too deeply to filter") from exc
        for rule_type, count in counts.items():
            metrics.SUPPRESSED.labels(rule_type.value).inc(count)
        request[SUPPRESSED] = sum(counts.values())
        for name in headers.REWRITTEN_BODY:
            out_headers.popall(name, None)
        out_headers[SUPPRESSED_HEADER] = str(request[SUPPRESSED])
        return web.Response(status=response.status, body=body, headers=out_headers)

    async def lookup(self, scope: str, query: Lookup) -> dict[RuleType, set[str]]:
        """The one store round trip, bounded (retries included); failures answer 503."""
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.settings.store_timeout):
                answer = await self.store.lookup(scope, query)
        except (StoreUnavailableError, TimeoutError) as exc:
            metrics.STORE_ERRORS.inc()
            raise StoreError("suppression store unavailable") from exc
        metrics.STORE_LATENCY.observe(time.perf_counter() - started)
        return answer


async def read_body(response: aiohttp.ClientResponse, settings: Settings) -> bytes:
    """The whole (still encoded) body, within the filter limit and the upstream timeout."""
    limit = settings.max_filter_body
    too_large = f"upstream JSON body is larger than {limit} bytes"
    if (response.content_length or 0) > limit:
        raise UpstreamBodyError(too_large)
    with upstream_errors(settings.upstream_timeout):
        async with asyncio.timeout(settings.upstream_timeout):
            if response.content_length is not None:
                return await response.read()
            chunks, size = [], 0
            async for chunk in response.content.iter_chunked(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise UpstreamBodyError(too_large)
                chunks.append(chunk)
    return b"".join(chunks)


async def stream(
    request: web.Request, response: aiohttp.ClientResponse, out_headers: CIMultiDict[str],
    idle_timeout: float,
) -> web.StreamResponse:
    """Bytes as they come, encoding untouched: a 1 GB download never sits in memory.

    A small body of known length goes out in one write instead.
    """
    length = response.content_length
    if request.method != "HEAD" and length is not None and length <= CHUNK:
        with upstream_errors(idle_timeout):
            async with asyncio.timeout(idle_timeout):
                body = await response.read()
        return web.Response(status=response.status, reason=response.reason, body=body,
                            headers=out_headers)
    out_headers["X-Request-Id"] = request[REQUEST_ID]
    out = web.StreamResponse(status=response.status, reason=response.reason, headers=out_headers)
    await out.prepare(request)
    request[STREAMING] = True
    while request.method != "HEAD":
        async with asyncio.timeout(idle_timeout):  # idle, not total: a long download is fine
            chunk = await response.content.readany()
        if not chunk:
            break
        await out.write(chunk)
    await out.write_eof()
    return out


def _inspect(body: bytes, region: str) -> tuple[Any, Found, bool]:
    """Parsed, its candidates, and whether it hid members; 502 for what cannot be read."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise UpstreamBodyError("upstream sent a JSON body that does not parse") from exc
    try:
        return doc, collect(doc, region), has_duplicate_keys(body, doc)
    except (RecursionError, orjson.JSONEncodeError) as exc:
        raise UpstreamBodyError("upstream JSON is nested too deeply to filter") from exc


def _query(found: Found, extra: set[Identifier]) -> dict[RuleType, set[str]]:
    return query_for([*(i for ids in found.by_raw.values() for i in ids), *extra])


def has_duplicate_keys(body: bytes, doc: Any) -> bool:
    """Does the raw text hold object members the parsed document lost?

    orjson keeps the last of duplicate keys while the raw bytes still hold the first, so such
    a body is never sent as its raw bytes. Every member has one literal `:`; orjson never
    escapes one, the raw text may (`\\u003a`). Without duplicates the colons balance exactly;
    with one, the raw text has at least the lost member's. A miscount can only err towards
    re-encoding. (Stopgap until the span-preserving matcher lands; replace this function.)
    """
    if type(doc) is not dict and type(doc) is not list:
        return False
    escaped = body.count(b"\\u003a") + body.count(b"\\u003A")
    return body.count(b":") + escaped != orjson.dumps(doc).count(b":")


def _too_large(limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(f"request body is larger than {limit} bytes")


async def _limited(request: web.Request, limit: int) -> AsyncIterator[bytes]:
    """The request body as it arrives, cut off past the limit (chunked uploads)."""
    seen = 0
    async for chunk in request.content.iter_chunked(CHUNK):
        seen += len(chunk)
        if seen > limit:
            request[_BODY_TOO_LARGE] = True
            raise _too_large(limit)
        yield chunk
