"""proxy/upstream_client.py against an upstream that misbehaves, over real sockets: what one
response leaves on a pooled connection must never reach the next request (another tenant's),
and a body that did not come whole is never handed over as whole."""

from __future__ import annotations

import pytest

from proxy.upstream_response import BodyCut, Malformed
from tests.test_upstream_client import client_of, get, ok, raw_server


async def test_trailers_of_one_response_never_reach_the_next_ones_headers() -> None:
    """Trailers are parsed as header fields after the head: left in the connection's list,
    they became the NEXT response's first headers (a binary Content-Type first: unfiltered)."""
    trailed = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n"
               b"X-Leak: tenant-a\r\nContent-Type: application/octet-stream\r\n"
               b"X-Last: z\r\n\r\n")
    async with raw_server(trailed, ok(b"two", b"Content-Type: application/json")) as raw:
        client = client_of(raw)
        assert await (await get(client)).read() == b"abc"
        second = await get(client)
        assert await second.read() == b"two"
    assert "X-Leak" not in second.headers and "X-Last" not in second.headers
    assert second.headers.getall("Content-Type") == ["application/json"]


STRAY = b"HTTP/1.1 418 Stolen\r\nX-Stray: "
"""The start of an answer nobody asked for: the next answer's bytes would complete its head."""


@pytest.mark.parametrize("first", [ok(b"asked"), b"HTTP/1.1 204 No Content\r\n\r\n"],
                         ids=["after-a-200", "after-a-204"])
async def test_a_stray_partial_answer_after_a_response_is_never_read_by_the_next_request(
    first: bytes,
) -> None:
    """Bytes past the end of a response in the same read (pipelined junk, a 204's body)
    begin a message nobody asked for: that connection is dropped, not pooled half-parsed."""
    async with raw_server(first + STRAY, ok(b"right")) as raw:
        client = client_of(raw)
        await (await get(client)).read()
        second = await get(client)
        assert await second.read() == b"right"
    assert second.status == 200 and "X-Stray" not in second.headers
    assert raw.connections == 2


CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"


@pytest.mark.parametrize("head", [
    CHUNKED + b"Content-Length: 5\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
], ids=["te-and-cl", "conflicting-cl", "listed-cl", "signed-cl", "chunked-not-last"])
async def test_ambiguous_framing_is_refused(head: bytes) -> None:
    """Malformed, or (chunked not last: read until close) never whole: a 502 either way."""
    async with raw_server(head + b"5\r\nhello\r\n0\r\n\r\n") as raw:
        with pytest.raises(Malformed if b"identity" not in head else BodyCut):
            await (await get(client_of(raw))).read()


async def test_a_chunked_body_without_its_last_chunk_is_a_body_error() -> None:
    async with raw_server((CHUNKED + b"\r\n5\r\nhello\r\n", True)) as raw:
        with pytest.raises(BodyCut):
            await (await get(client_of(raw))).read()


async def test_interim_answers_then_junk_is_malformed() -> None:
    interim = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early\r\n\r\n"
    async with raw_server(interim + b"JUNK\r\n\r\n") as raw:
        with pytest.raises(Malformed):
            await get(client_of(raw))
