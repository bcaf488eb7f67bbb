"""Upstream bodies: read whole (within limits) for filtering, or streamed as they come."""

from __future__ import annotations

import asyncio

from aiohttp import web
from multidict import CIMultiDict

from proxy.errors import UpstreamBodyError
from proxy.front_reply import FrontStream
from proxy.incoming import FrontRequest, Incoming
from proxy.settings import Settings
from proxy.upstream import CHUNK, upstream_errors
from proxy.upstream_response import Response

REQUEST_ID = web.RequestKey("request_id", str)
STREAMING = web.RequestKey("streaming", bool)  # headers sent: an error now can only abort


async def read_body(response: Response, settings: Settings) -> bytes:
    """The whole (still encoded) body, within the filter limit and the upstream timeout."""
    limit, length = settings.max_filter_body, response.content_length  # parsed once
    if length is not None and length > limit:
        raise UpstreamBodyError(f"upstream body is larger than {limit} bytes")
    if response.at_eof:  # it came with the headers: no wait, so no timer and no await
        body = response.read_nowait()  # chunked too: at most one read past HIGH_WATER
        if len(body) > limit:
            raise UpstreamBodyError(f"upstream body is larger than {limit} bytes")
        return body
    with upstream_errors(settings.upstream_timeout):
        async with asyncio.timeout(settings.upstream_timeout):
            chunks, size = [], 0
            while chunk := await response.readany():
                size += len(chunk)
                if size > limit:
                    raise UpstreamBodyError(f"upstream body is larger than {limit} bytes")
                chunks.append(chunk)
    return b"".join(chunks)


async def stream(
    request: Incoming, response: Response, out_headers: CIMultiDict[str],
    idle_timeout: float,
) -> web.StreamResponse:
    """Bytes as they come, encoding untouched: a 1 GB download never sits in memory.

    A small body of known length goes out in one write instead. The upstream's reason phrase
    is not passed on: it is text the filter never reads (`200 jane@acme.com`); aiohttp
    writes the standard one.
    """
    length = response.content_length
    if request.method != "HEAD" and length is not None and length <= CHUNK:
        return web.Response(
            status=response.status, body=await _small(response, idle_timeout), headers=out_headers
        )
    out_headers["X-Request-Id"] = request[REQUEST_ID]
    out = await _started(request, response.status, out_headers)
    request[STREAMING] = True
    while request.method != "HEAD":
        # idle, not total (a long download is fine), on both sides: a caller that stops
        # reading would otherwise hold this request and its upstream connection for good
        async with asyncio.timeout(idle_timeout):
            if not (chunk := await response.readany()):
                break
            await out.write(chunk)
    await out.write_eof()
    return out


async def _started(
    request: Incoming, status: int, out_headers: CIMultiDict[str]
) -> web.StreamResponse:
    """A streamed response whose head is out: aiohttp's, or the front's on its connection."""
    if isinstance(request, FrontRequest):
        return FrontStream(request.sink, status, out_headers, request.keep_alive)
    assert isinstance(request, web.BaseRequest)
    out = web.StreamResponse(status=status, headers=out_headers)
    await out.prepare(request)
    return out


async def _small(response: Response, idle_timeout: float) -> bytes:
    """A body of known length ≤ CHUNK; no timer when it came with the headers (the usual)."""
    if response.at_eof:
        return response.read_nowait()
    with upstream_errors(idle_timeout):
        async with asyncio.timeout(idle_timeout):
            return await response.read()
