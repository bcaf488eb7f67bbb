"""Attacks on the proxy listener's front (proxy/front.py): framing it shares with aiohttp's
server behind it, paths and tenants, responses in every framing, memory and shutdown.

Through the running proxy (its real listener) against the fake upstream and a real Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from proxy.settings import Settings
from rules.model import RuleType, tenant_of
from tests.fake_openmart import FakeOpenmart
from tests.harness import Running, eventually, fake_upstream, running_proxy
from tests.test_front import DENIED, KEY, exchange, get, responses
from tests.test_suppression import add


class OddFake(FakeOpenmart):
    """The fake upstream plus responses that are awkward to frame."""

    def app(self) -> web.Application:
        app = super().app()
        app.router.add_get("/status/{code}", self.status_only)
        app.router.add_get("/header-denied", self.header_denied)
        app.router.add_get("/cut/{size}", self.cut)
        return app

    async def status_only(self, request: web.Request) -> web.Response:
        return web.Response(status=int(request.match_info["code"]))

    async def header_denied(self, request: web.Request) -> web.Response:
        return web.Response(body=b"\x00" * 100, content_type="application/octet-stream",
                            headers={"X-Contact": DENIED})

    async def cut(self, request: web.Request) -> web.StreamResponse:
        """Announces `size` bytes, sends a third, then drops the connection."""
        size = int(request.match_info["size"])
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        response.content_length = size
        await response.prepare(request)
        await response.write(b"x" * (size // 3))
        await asyncio.sleep(0.05)
        assert request.transport is not None
        request.transport.abort()
        return response


@pytest.fixture
async def proxied(redis_url: str) -> AsyncIterator[tuple[OddFake, Running]]:
    await add(redis_url, tenant_of(KEY), RuleType.EMAIL, DENIED)  # GLOBAL would outlive the file
    fake = OddFake()
    async with fake_upstream(fake) as (_, upstream), running_proxy(
        Settings(upstream=upstream, redis=redis_url)
    ) as proxy:
        yield fake, proxy



def post(path: str, body: bytes, *extra: str) -> bytes:
    lines = "".join(f"{line}\r\n" for line in (f"X-API-Key: {KEY}", *extra))
    return (f"POST {path} HTTP/1.1\r\nHost: a\r\n{lines}Content-Length: {len(body)}\r\n\r\n"
            .encode() + body)


def handed(request: bytes) -> bytes:
    """The same request made not plain (over 100 header lines), so aiohttp's server reads it."""
    return request.replace(b"Host: a\r\n", b"Host: a\r\n" + b"X-Pad: 1\r\n" * 101, 1)


def comparable(answer: bytes) -> bytes:
    """An answer without what differs between two identical requests (date, request id)."""
    return re.sub(rb"(Date|X-Request-Id): [^\r]*\r\n", b"", answer)


# 1. Framing: every split of the bytes, every end of them, plain and handed-over mixed


async def test_a_head_and_body_split_at_every_byte_are_read_the_same(
    proxied: tuple[OddFake, Running],
) -> None:
    fake, proxy = proxied
    raw = post("/echo/1", b"hello") + get("/text", "Connection: close")
    for cut in range(1, len(raw)):
        got = responses(await exchange(proxy, raw[:cut], raw[cut:], pause=0.002))
        assert [status for status, _ in got] == [200, 200], cut
        assert fake.requests[-2].body == b"hello"


async def test_an_end_of_input_anywhere_answers_the_whole_requests_then_closes(
    proxied: tuple[OddFake, Running],
) -> None:
    _, proxy = proxied
    first = post("/echo/1", b"hello")
    raw = first + get("/text")
    host, port = proxy.url[7:].split(":")
    for cut in range(len(raw) + 1):
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(raw[:cut])
        writer.write_eof()
        answer = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        expected = [200] * ((cut >= len(first)) + (cut == len(raw)))
        assert [status for status, _ in responses(answer)] == expected, cut


ODD = [  # (request, responses to it and what follows it: aiohttp closes after a 400)
    (get("/text").replace(b"Host: a\r\n", b"Host: a\r\nX: a\r\n b\r\n"), 1),  # obs-fold: 400
    (get("/text", "Content-Length:  0 "), 4),  # llhttp keeps the trailing space
    (b"POST /echo HTTP/1.1\r\nHost: a\r\nX-API-Key: " + KEY.encode()
     + b"\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 4),
    (get("/text").replace(b"HTTP/1.1", b"HTTP/1.0").replace(
        b"Host: a\r\n", b"Host: a\r\nConnection: keep-alive\r\n"), 4),
    (get("/text").replace(b"GET", b"HEAD"), 4),
    (b"\r\n\r\n" + get("/text"), 4),
    (get("/text", "Content-Length: 3", "Content-Length: 3") + b"abc", 1),  # 400
]


@pytest.mark.parametrize(("odd", "answered"), ODD)
async def test_plain_and_handed_over_requests_pipelined_are_all_answered_in_order(
    proxied: tuple[OddFake, Running], odd: bytes, answered: int,
) -> None:
    _, proxy = proxied
    raw = get("/text") + odd + get("/text") + odd + get("/text", "Connection: close")
    answer = await exchange(proxy, raw)
    assert DENIED.encode() not in answer
    assert answer.count(b"HTTP/1.") == 1 + answered
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")


async def test_a_content_length_of_thousands_of_digits_is_answered_as_aiohttp_answers_it(
    proxied: tuple[OddFake, Running],
) -> None:
    """llhttp takes leading zeros without limit; Python's int() refuses over 4,300 digits. The
    front must not fail on it (an exception out of data_received: no answer at all, a
    traceback logged per request): aiohttp's server answers it (a 500 of its own, today)."""
    _, proxy = proxied
    digits = b"Content-Length: " + b"0" * 5000 + b"3"
    raw = post("/echo", b"abc").replace(b"Content-Length: 3", digits)
    front = await exchange(proxy, raw + get("/text", "Connection: close"))
    behind = await exchange(proxy, handed(raw) + get("/text", "Connection: close"))
    assert comparable(front) == comparable(behind)
    assert [status for status, _ in responses(front)][1:] == [200]

# 2. The same answer as aiohttp's server gives (status, headers, body, what reaches upstream)


@pytest.mark.parametrize("request_", [
    get("/text"), get("/status/204"), get("/status/304"), get("/status/404"),
    get("/status/500"), get("/header-denied"),
    get("/download/300000"), get("/download/10"), get("/download/0"), get("/bad-json"),
    get("/gzip-json"), get("/text", f"X-API-Key: {KEY}"), get("/text", "Authorization: Basic x"),
    get("/text", "Connection: keep-alive"), get("/text", "X-Request-Id: a b"),
    post("/echo", b"x" * 5000), post("/api/v1/search", b'{"q": 1}'), post("/echo", b""),
    get("/text", "Content-Length: 0"), get("/held-json"),
    get("/api/v2/deny-rules"), get("/api/v2/deny-rules/"), get("/api/v2/deny-rules;x"),
    get("/api/v2/deny-rules?x"), get("/api/v2/deny-lists"), get("/api/v2/deny-rules/export"),
    get("/api/v2/deny-rules/x/../y"), get("/api/v2/./deny-rules"), get("/api/v2/deny-rules%3F"),
    get("/API/v2/deny-rules"), get("/admin/v1/lists"), get("/metrics"), get("/?a=/../x"),
])
async def test_a_plain_request_is_answered_as_aiohttps_server_answers_it(
    proxied: tuple[OddFake, Running], request_: bytes,
) -> None:
    fake, proxy = proxied
    fake.release.set()
    seen = len(fake.requests)
    front = await exchange(proxy, request_ + get("/text", "Connection: close"))
    upstream = [(r.method, r.path_qs, r.body) for r in fake.requests[seen:]]
    seen = len(fake.requests)
    behind = await exchange(proxy, handed(request_) + get("/text", "Connection: close"))
    assert comparable(front) == comparable(behind)
    assert upstream == [(r.method, r.path_qs, r.body) for r in fake.requests[seen:]]
    if b" /api/v2/deny-" not in request_:  # the rules API lists the tenant's own rules
        assert DENIED.encode() not in front


async def test_a_stream_cut_by_the_upstream_is_cut_for_the_client(
    proxied: tuple[OddFake, Running],
) -> None:
    """Never a complete-looking response, nor a next one after it on the connection."""
    _, proxy = proxied
    answer = await exchange(proxy, get("/cut/300000") + get("/text"))
    assert answer.count(b"HTTP/1.1") == 1
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and len(answer) < 300000


# 3. Cost


async def test_a_body_in_many_pieces_reads_its_head_once(
    proxied: tuple[OddFake, Running], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A body trickled in small pieces must not have its head parsed again for each piece: a
    16 KB head costs ~70 µs to read, so a 1 MB body sent a byte at a time would hold a core
    for over a minute (aiohttp's parser reads on from where it stopped)."""
    import proxy.front

    fake, running = proxied
    reads = 0
    real = proxy.front.read_head

    def counted(*args: Any) -> Any:
        nonlocal reads
        reads += 1
        return real(*args)

    monkeypatch.setattr(proxy.front, "read_head", counted)
    body = b"y" * 40
    head = post("/echo", body, "Connection: close")[: -len(body)]
    pieces = [head, *[body[i:i + 2] for i in range(0, len(body), 2)]]
    got = responses(await exchange(running, *pieces, pause=0.01))
    assert [status for status, _ in got] == [200]
    assert fake.last().body == body
    assert reads <= 2, reads


# 4. Shutdown


async def test_shutdown_drains_the_front_and_aiohttp_together_then_cancels(
    redis_url: str,
) -> None:
    """Requests in flight on the front and on a handed-over connection share one drain window
    (the front's grace is not added to aiohttp's), and a request still running past it is
    cancelled, as aiohttp cancels its handlers: nothing of it outlives the listener."""
    fake = FakeOpenmart()
    async with fake_upstream(fake) as (_, upstream):
        settings = Settings(upstream=upstream, redis=redis_url, shutdown_timeout=1.0)
        listener = running_proxy(settings)
        proxy = await listener.__aenter__()
        host, port = proxy.url[7:].split(":")
        clients = []
        for raw in (get("/slow/5"), handed(get("/slow/5"))):
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(raw)
            clients.append(writer)
        await eventually(lambda: len(fake.requests) == 2, "both requests upstream")
        started = time.monotonic()
        await listener.__aexit__(None, None, None)
        took = time.monotonic() - started
        left = [task for task in asyncio.all_tasks() if "Connection._answer" in repr(task)]
        for writer in clients:
            writer.close()
    assert not left
    assert took < 2.6  # aiohttp's own: its grace, then as long again for cancelled handlers


# 5. Response headers that are not UTF-8


@contextlib.asynccontextmanager
async def raw_upstream(reply: bytes) -> AsyncIterator[str]:
    """An upstream that answers every request with `reply`, byte for byte (aiohttp's server
    cannot send a header that is not UTF-8)."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while await reader.readuntil(b"\r\n\r\n"):
                writer.write(reply)
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()


@pytest.mark.parametrize("value", [
    b"mailto:jane.doe@acme\xff.com", b"jane.doe\xff@acme.com", b"<jane.doe@acme.com\xe9>",
])
@pytest.mark.parametrize("kind", [b"application/json", b"application/octet-stream"])
async def test_a_header_that_is_not_utf8_never_carries_a_denied_identifier_out(
    redis_url: str, value: bytes, kind: bytes,
) -> None:
    """The check reads the header as text; what is written must be that text. aiohttp's writer
    dropped the undecodable byte (surrogate) the check had seen as a separator, and
    `jane.doe@acme.com` went out; the front's refused to encode it and sent nothing."""
    await add(redis_url, tenant_of(KEY), RuleType.EMAIL, DENIED)
    reply = (b"HTTP/1.1 200 OK\r\nContent-Type: " + kind + b"\r\nX-Contact: " + value
             + b"\r\nX-Name: caf\xe9\r\nContent-Length: 2\r\n\r\n{}")
    async with raw_upstream(reply) as upstream, running_proxy(
        Settings(upstream=upstream, redis=redis_url)
    ) as proxy:
        for request in (handed(get("/x", "Connection: close")), get("/x", "Connection: close")):
            answer = await exchange(proxy, request)
            assert answer.startswith(b"HTTP/1.1 200 OK\r\n"), answer
            assert DENIED.encode() not in answer
