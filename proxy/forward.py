"""The response path, one straight line: forward → collect → one lookup → strip → send."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import orjson
from aiohttp import web

from proxy import headers, metrics
from proxy.errors import PayloadTooLargeError, StoreError, UpstreamBodyError
from proxy.settings import Settings
from proxy.upstream import CHUNK, Upstream, decode, upstream_errors
from rules.match import collect, redact
from rules.model import GLOBAL, Lookup, RuleType, tenant_of
from rules.store import RuleStore, StoreUnavailableError

SUPPRESSED_HEADER = "X-Denyproxy-Suppressed"
SUPPRESSED = web.RequestKey("suppressed", int)
REQUEST_ID = web.RequestKey("request_id", str)
TENANT = web.RequestKey("tenant", str)
STREAMING = web.RequestKey("streaming", bool)  # headers sent: an error now can only abort
_BODY_TOO_LARGE = web.RequestKey("body_too_large", bool)
_JSON_TYPES = ("application/json", "text/json")


def api_key(request: web.Request) -> str | None:
    """The caller's key, from X-API-Key or a Bearer token (the same key either way)."""
    key = request.headers.get("X-API-Key")
    if key:
        return key
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def tenant(request: web.Request) -> str:
    """A request without a key is checked against the global rules only (hashed once)."""
    scope = request.get(TENANT)
    if scope is None:
        key = api_key(request)
        request[TENANT] = scope = tenant_of(key) if key else GLOBAL
    return scope


def claims_json(response: aiohttp.ClientResponse) -> bool:
    media = response.headers.get("Content-Type", "").partition(";")[0].strip().lower()
    return media in _JSON_TYPES or media.endswith("+json")


@dataclass(slots=True)
class Forwarder:
    settings: Settings
    upstream: Upstream
    session: aiohttp.ClientSession
    store: RuleStore

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        url = self.upstream.url_for(request.raw_path)
        response = await self.send(request, url)
        try:
            if self._streams(request, response):
                return await stream(request, response, self.settings.upstream_timeout)
            return await self.filtered(request, response)
        finally:
            response.release()

    async def send(
        self, request: web.Request, url: object, body: bytes | None = None
    ) -> aiohttp.ClientResponse:
        """Forward once (never retried: a batch POST may already have cost credits).

        The body streams from the client unless the caller has already read it.
        """
        length = request.content_length
        if length is not None and length > self.settings.max_request_body:
            raise _too_large(self.settings.max_request_body)
        if body is None and request.body_exists:
            body = _limited(request, self.settings.max_request_body)
        out_headers = headers.upstream_request(
            request.headers, peer=request.remote, scheme=request.scheme, length=length
        )
        out_headers["X-Request-Id"] = request[REQUEST_ID]
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
        exempt = self.settings.exempt_paths
        return bool(exempt and request.path.startswith(exempt)) or not claims_json(response)

    async def filtered(
        self, request: web.Request, response: aiohttp.ClientResponse
    ) -> web.Response:
        raw = await read_body(response, self.settings)
        encoding = response.headers.get("Content-Encoding", "")
        body = decode(raw, encoding, self.settings.max_filter_body)
        if not body or body.isspace():
            return _unchanged(response, raw)
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise UpstreamBodyError("upstream sent a JSON body that does not parse") from exc
        found = collect(doc, self.settings.phone_region)
        denied = {}
        if found.by_raw:
            denied = found.denied(await self.lookup(tenant(request), found.query()))
        if not denied:
            return _unchanged(response, raw, suppressed="0")
        doc, counts = redact(doc, denied, self.settings.policy)
        for rule_type, count in counts.items():
            metrics.SUPPRESSED.labels(rule_type.value).inc(count)
        request[SUPPRESSED] = sum(counts.values())
        out_headers = headers.client_response(response.headers, rewritten=True)
        out_headers[SUPPRESSED_HEADER] = str(request[SUPPRESSED])
        return web.Response(status=response.status, body=orjson.dumps(doc), headers=out_headers)

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
    request: web.Request, response: aiohttp.ClientResponse, idle_timeout: float
) -> web.StreamResponse:
    """Bytes as they come, encoding untouched: a 1 GB download never sits in memory.

    A small body of known length goes out in one write instead.
    """
    out_headers = headers.client_response(response.headers, rewritten=False)
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


def _unchanged(
    response: aiohttp.ClientResponse, raw: bytes, suppressed: str | None = None
) -> web.Response:
    """The upstream's own bytes and headers (encoding included): nothing was denied."""
    out_headers = headers.client_response(response.headers, rewritten=False)
    if suppressed is not None:
        out_headers[SUPPRESSED_HEADER] = suppressed
    return web.Response(status=response.status, body=raw, headers=out_headers)


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
