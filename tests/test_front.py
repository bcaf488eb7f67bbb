"""The proxy listener's front (proxy/front.py): which requests it serves itself, and that a
connection it hands to aiohttp's server mid-way keeps every request, in order.

Through the running proxy (its real listener) against the fake upstream and a real Redis; the
head reader's decisions are checked on their own too.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from multidict import CIMultiDict

from proxy import front
from proxy.front_head import HAND_OVER, MAX_HEAD, Head, read_head
from proxy.settings import Settings
from rules.model import RuleType, tenant_of
from tests.fake_openmart import FakeOpenmart
from tests.harness import Running, fake_upstream, running_proxy
from tests.test_suppression import add

DENIED = "jane.doe@acme.com"
API = ("/api/v2/deny-rules", "/api/v2/deny-lists")
KEY = "om_front_key"


def head_of(raw: bytes, max_body: int = 1024) -> Head | object:
    return read_head(bytearray(raw), API, max_body)


# 1. Which requests are plain


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE"])
def test_a_plain_request_is_read_with_its_length_and_keep_alive(method: str) -> None:
    raw = f"{method} /api/v1/task/1?x=%40 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
    found = head_of(raw.encode())
    assert isinstance(found, Head)
    assert (found.method, found.raw_path, found.content_length, found.keep_alive) == (
        method, "/api/v1/task/1?x=%40", 3, True)
    assert found.size == len(raw) - 3
    assert found.headers == CIMultiDict([("Host", "a"), ("Content-Length", "3")])


def test_connection_close_is_read() -> None:
    found = head_of(b"GET /a HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert isinstance(found, Head) and not found.keep_alive


def test_reading_a_head_leaves_nothing_for_the_cycle_collector() -> None:
    """A cycle per request (reader and parser holding each other) made young collections of
    ~80 ms under load; reference counting alone must free what reading a head makes."""
    gc.collect()
    gc.disable()
    try:
        for _ in range(100):
            assert isinstance(head_of(b"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx"),
                              Head)
        assert gc.collect() == 0
    finally:
        gc.enable()


@pytest.mark.parametrize("raw", [
    b"GET /a HTTP/1.1\r\nHost: a",  # no end of head yet
    b"",
])
def test_an_unfinished_head_is_waited_for(raw: bytes) -> None:
    assert head_of(raw) is None


@pytest.mark.parametrize("raw", [
    b"HEAD /a HTTP/1.1\r\nHost: a\r\n\r\n",
    b"OPTIONS /a HTTP/1.1\r\nHost: a\r\n\r\n",
    b"CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /a HTTP/1.0\r\nHost: a\r\n\r\n",
    b"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"POST /a HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
    b"GET /a HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    b"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n",
    b"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 2048\r\n\r\n",  # over the front's limit
    b"GET /a HTTP/1.1\r\nHost: a\r\nX-Name: caf\xc3\xa9\r\n\r\n",
    b"GET /api/v2/deny-rules HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /api/v2/deny-rules/r1?x=1 HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /api/v2/deny%2Drules HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /x/../api/v2/deny-rules HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET //api/v2/deny-rules HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /a\\b HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /caf\xc3\xa9?q=\xff HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET http://a/api/v2/deny-rules HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /a HTTP/1.1\nHost: a\n\nGET /api/v2/deny-rules HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /a HTTP/1.1\r\nHost: a\r\n\nGET /b HTTP/1.1\r\n\r\n",
    b"GET /a HTTP/1.1\r\nBad Name: a\r\n\r\n",
    b"GET /a HTTP/1.1\r\nHost: a\x01\r\n\r\n",
    b"GET /a HTTP/1.1\r\n" + b"X: " + b"y" * MAX_HEAD,  # no end of head within the limit
])
def test_anything_not_plain_is_handed_to_aiohttp(raw: bytes) -> None:
    assert head_of(raw) is HAND_OVER


# 2. Through the running proxy


class ChunkedFake(FakeOpenmart):
    """The fake upstream plus a download of no announced length (aiohttp chunks it)."""

    def app(self) -> web.Application:
        app = super().app()
        app.router.add_get("/chunked/{size}", self.chunked)
        return app

    async def chunked(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        await response.prepare(request)
        for _ in range(int(request.match_info["size"]) // 1000):
            await response.write(b"x" * 1000)
        await response.write_eof()
        return response


@pytest.fixture
async def proxied(redis_url: str) -> AsyncIterator[tuple[FakeOpenmart, Running]]:
    await add(redis_url, tenant_of(KEY), RuleType.EMAIL, DENIED)  # not GLOBAL: the session's
    # Redis is shared, and other files expect the address kept for other keys
    fake = ChunkedFake()
    async with fake_upstream(fake) as (_, upstream), running_proxy(
        Settings(upstream=upstream, redis=redis_url)
    ) as proxy:
        yield fake, proxy


async def exchange(proxy: Running, *writes: bytes, pause: float = 0.0) -> bytes:
    """Writes each piece (pausing between them), then reads until the proxy closes."""
    host, port = proxy.url[7:].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    for piece in writes:
        writer.write(piece)
        await writer.drain()
        await asyncio.sleep(pause)
    answer = await asyncio.wait_for(reader.read(), 30)
    writer.close()
    return answer


def responses(data: bytes) -> list[tuple[int, bytes]]:
    """(status, body) of each response in `data` (Content-Length or chunked framing)."""
    out = []
    while data:
        head, _, data = data.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        fields = {k.strip().lower(): v.strip()
                  for k, _, v in (line.partition(b":") for line in lines[1:])}
        if b"content-length" in fields:
            size = int(fields[b"content-length"])
            body, data = data[:size], data[size:]
        else:
            assert fields.get(b"transfer-encoding") == b"chunked", head
            body = b""
            while True:
                size_line, _, data = data.partition(b"\r\n")
                size = int(size_line, 16)
                body, data = body + data[:size], data[size + 2:]
                if not size:
                    break
        out.append((int(lines[0].split()[1]), body))
    return out


def get(path: str, *extra: str) -> bytes:
    lines = "".join(f"{line}\r\n" for line in (f"X-API-Key: {KEY}", *extra))
    return f"GET {path} HTTP/1.1\r\nHost: a\r\n{lines}\r\n".encode()


async def test_pipelined_requests_are_answered_in_order_across_a_hand_over(
    proxied: tuple[FakeOpenmart, Running],
) -> None:
    fake, proxy = proxied
    pipelined = (get("/slow/0.2") + get("/api/v2/deny-rules?limit=1") + get("/text")
                 + get("/text", "Connection: close"))
    got = responses(await exchange(proxy, pipelined))
    assert [status for status, _ in got] == [200, 200, 200, 200]
    slow, rules, text, last = (body for _, body in got)
    assert b"karl.marx@acme.com" in slow and DENIED.encode() not in slow
    assert b'"items"' in rules or b'"data"' in rules  # the proxy's own API answered
    assert text == last and DENIED.encode() not in text
    assert "/api/v2/deny-rules?limit=1" not in [seen.path_qs for seen in fake.requests]


async def test_a_chunked_upload_after_a_plain_request_keeps_its_body(
    proxied: tuple[FakeOpenmart, Running],
) -> None:
    fake, proxy = proxied
    chunked = (f"POST /echo HTTP/1.1\r\nHost: a\r\nX-API-Key: {KEY}\r\n"
               "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
               "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n").encode()
    got = responses(await exchange(proxy, get("/text"), chunked, pause=0.05))
    assert [status for status, _ in got] == [200, 200]
    assert fake.last().body == b"hello world"


async def test_a_head_and_body_in_pieces_arrive_whole(
    proxied: tuple[FakeOpenmart, Running],
) -> None:
    fake, proxy = proxied
    body = b"x" * 200_000  # past the socket's reads and the buffer's high water
    head = (f"POST /echo HTTP/1.1\r\nHost: a\r\nX-API-Key: {KEY}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    pieces = [head[:10], head[10:30], head[30:],
              *[body[i:i + 65536] for i in range(0, len(body), 65536)]]
    got = responses(await exchange(proxy, *pieces, pause=0.02))
    assert [status for status, _ in got] == [200]
    assert fake.last().body == body


async def test_encoded_and_dotted_api_paths_never_reach_the_upstream(
    proxied: tuple[FakeOpenmart, Running],
) -> None:
    """As aiohttp's router reads them: the escaped one is the API's, dot segments are 400."""
    fake, proxy = proxied
    for path, expected in (("/api/v2/deny%2Drules?limit=1", 200),
                           ("/x/../api/v2/deny-rules?limit=1", 400)):
        (status, _), = responses(await exchange(proxy, get(path, "Connection: close")))
        assert status == expected, path
    assert not [seen for seen in fake.requests if "deny" in seen.path_qs]


async def test_http_10_and_head_requests_are_served(
    proxied: tuple[FakeOpenmart, Running],
) -> None:
    _, proxy = proxied
    old = f"GET /text HTTP/1.0\r\nHost: a\r\nX-API-Key: {KEY}\r\n\r\n".encode()
    answer = await exchange(proxy, old)
    assert answer.split(b"\r\n")[0].split()[1] == b"200"
    assert DENIED.encode() not in answer
    bare_lf = f"GET /text HTTP/1.1\nHost: a\nX-API-Key: {KEY}\nConnection: close\n\n".encode()
    answer = await exchange(proxy, bare_lf)  # answered (or refused) by aiohttp, never hung
    assert answer.startswith(b"HTTP/1.")
    assert DENIED.encode() not in answer


async def test_requests_sent_before_a_half_close_are_all_answered(
    proxied: tuple[FakeOpenmart, Running],
) -> None:
    _, proxy = proxied
    host, port = proxy.url[7:].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(get("/text") + get("/slow/0.1") + get("/text"))
    writer.write_eof()  # the client is done sending; the proxy closes once it has answered
    got = responses(await asyncio.wait_for(reader.read(), 30))
    writer.close()
    assert [status for status, _ in got] == [200, 200, 200]
    assert all(DENIED.encode() not in body for _, body in got)


@pytest.mark.parametrize("path", ["/download/300000", "/chunked/300000"])
async def test_a_streamed_download_goes_out_whole(
    proxied: tuple[FakeOpenmart, Running], path: str
) -> None:
    """With the upstream's length, or chunked when it gave none."""
    _, proxy = proxied
    (status, body), = responses(await exchange(proxy, get(path, "Connection: close")))
    assert status == 200 and body == b"x" * 300000


async def test_a_client_that_pipelines_without_reading_is_not_served_ahead(
    proxied: tuple[FakeOpenmart, Running],
) -> None:
    """Responses the client does not read are not piled up: the next request waits for the
    last response to drain, and the proxy stops reading (memory stays bounded)."""
    fake, proxy = proxied
    host, port = proxy.url[7:].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    before = len(fake.requests)
    writer.write(get("/download/1000000") * 2000)  # 2 GB of answers asked for, none read
    await asyncio.sleep(1.0)
    served = len(fake.requests) - before
    writer.transport.abort()
    assert 1 <= served < 20


async def test_idle_connections_close_and_a_slow_body_is_not_idle(
    redis_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """KEEPALIVE (75 s) at 0.5 s: a connection that sends nothing is closed, one whose head is
    still incomplete too; one whose body keeps arriving, slower than that in all, is answered."""
    monkeypatch.setattr(front, "KEEPALIVE", 0.5)
    fake = FakeOpenmart()
    async with fake_upstream(fake) as (_, upstream), running_proxy(
        Settings(upstream=upstream, redis=redis_url)
    ) as proxy:
        host, port = proxy.url[7:].split(":")
        silent = await asyncio.open_connection(host, int(port))
        trickled_head = await asyncio.open_connection(host, int(port))
        trickled_head[1].write(b"GET /text HTTP/1.1\r\n")
        body = b"0123456789"
        head = (f"POST /echo HTTP/1.1\r\nHost: a\r\nX-API-Key: {KEY}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
        slow = await asyncio.open_connection(host, int(port))
        slow[1].write(head)
        for byte in body:  # 10 bytes over ~2 s: four times the idle limit in all
            await asyncio.sleep(0.2)
            slow[1].write(bytes([byte]))
        assert await asyncio.wait_for(silent[0].read(), 5) == b""  # closed, nothing sent
        assert await asyncio.wait_for(trickled_head[0].read(), 5) == b""
        (status, _), = responses(await asyncio.wait_for(slow[0].read(), 5))
        assert status == 200 and fake.last().body == body
        for _, writer in (silent, trickled_head, slow):
            writer.close()
