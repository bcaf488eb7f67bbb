"""Issue #10, class 8 (media types) through the running proxy against a real Redis.

Every textual body is filtered whatever its label (or none, or two); only a body labelled
with one of `--binary-types` streams untouched. The upstream here writes its responses by
hand, so headers no server library would send (no Content-Type, two of them) reach the
proxy as written. Leaks are judged by tests/leak_detector.py, not by the product's scanner.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import orjson
import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from proxy import respond
from proxy.media import BodyKind, Label
from proxy.settings import Settings
from rules.model import RuleType, tenant_of
from tests.harness import running_proxy
from tests.leak_detector import leaks
from tests.test_suppression import add

DENIED = "jane.doe@acme.com"
ALLOWED = "karl.marx@acme.com"
DENIED_PHONE = "+15125550100"
Canned = dict[str, tuple[int, list[tuple[str, str]], bytes]]


@contextlib.asynccontextmanager
async def hand_written_upstream(canned: Canned) -> AsyncIterator[str]:
    """An upstream that answers GET /<name> with exactly the canned status, headers, body."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        name = head.split(b" ", 2)[1].decode().lstrip("/")
        status, headers, body = canned[name]
        lines = [f"HTTP/1.1 {status} X", *(f"{k}: {v}" for k, v in headers),
                 f"Content-Length: {len(body)}", "Connection: close"]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


@dataclass(frozen=True)
class Answer:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes  # as sent: the client does not decompress


async def get(redis_url: str, name: str, canned: Canned, **settings: object) -> Answer:
    """GET /<name> through a running proxy (a key with denied rules) in front of `canned`."""
    api_key = await denied_key(redis_url)
    async with hand_written_upstream(canned) as upstream:
        config = Settings(upstream=upstream, redis=redis_url).with_(**settings)
        async with running_proxy(config) as proxy, aiohttp.ClientSession(
            auto_decompress=False
        ) as client, client.get(f"{proxy.url}/{name}", headers={"X-API-Key": api_key}) as r:
            return Answer(r.status, r.headers, await r.read())


async def denied_key(redis_url: str) -> str:
    api_key = f"om_{uuid.uuid4().hex}"
    await add(redis_url, tenant_of(api_key), RuleType.EMAIL, DENIED)
    await add(redis_url, tenant_of(api_key), RuleType.PHONE, DENIED_PHONE)
    return api_key


def text_of(body: bytes) -> str:
    return body.decode("utf-8", errors="replace")


def assert_no_leak_and_kept(body: bytes) -> None:
    text = text_of(body)
    assert leaks(text, emails=[DENIED], phones=[DENIED_PHONE]) == []
    assert ALLOWED in text


JSON_DOC = orjson.dumps({"people": [{"email": DENIED}, {"email": ALLOWED}]})
CASES: dict[str, tuple[list[tuple[str, str]], bytes]] = {
    "text-json": ([("Content-Type", "text/plain")], JSON_DOC),
    "ndjson": ([("Content-Type", "application/x-ndjson")],
               b'{"email": "%s"}\n{"email": "%s"}\n' % (DENIED.encode(), ALLOWED.encode())),
    "sse": ([("Content-Type", "text/event-stream")],
            b'data: {"email": "%s"}\n\ndata: call 512-555-0100 or %s\n\n'
            % (DENIED.encode(), ALLOWED.encode())),
    "csv": ([("Content-Type", "text/csv")],
            b"name,email\nJane,%s\nKarl,%s\n" % (DENIED.encode(), ALLOWED.encode())),
    "html": ([("Content-Type", "text/html")],
             b'<p><a href="mailto:%s?subject=hi">Jane</a> <b>%s</b></p>'
             % (DENIED.encode(), ALLOWED.encode())),
    "xml": ([("Content-Type", "application/xml")],
            b"<people><p>%s</p><p>%s</p><tel>(512) 555-0100</tel></people>"
            % (DENIED.encode(), ALLOWED.encode())),
    "no-type": ([], b"Jane <%s>, Karl <%s>" % (DENIED.encode(), ALLOWED.encode())),
    "two-types": ([("Content-Type", "image/png"), ("Content-Type", "text/plain")],
                  b"Jane %s; Karl %s" % (DENIED.encode(), ALLOWED.encode())),
    "comma-list": ([("Content-Type", "image/png, text/plain")],
                   b"Jane %s; Karl %s" % (DENIED.encode(), ALLOWED.encode())),
    "utf-16": ([("Content-Type", "text/plain; charset=utf-16")],
               f"Jane {DENIED}; Karl {ALLOWED}".encode("utf-16")),
    # two Content-Encoding lines are one list (RFC 9110 §8.4): every coding is undone
    "no-type-identity-gzip": ([("Content-Encoding", "identity"), ("Content-Encoding", "gzip")],
                              gzip.compress(b"Jane <%s>, Karl <%s>" % (DENIED.encode(),
                                                                       ALLOWED.encode()))),
    "no-type-gzip-gzip": ([("Content-Encoding", "gzip"), ("Content-Encoding", "gzip")],
                          gzip.compress(gzip.compress(b"Jane <%s>, Karl <%s>" % (
                              DENIED.encode(), ALLOWED.encode())))),
}


@pytest.mark.parametrize("name", sorted(CASES))
async def test_every_textual_body_is_filtered(redis_url: str, name: str) -> None:
    headers, body = CASES[name]
    answer = await get(redis_url, name, {name: (200, headers, body)})
    assert answer.status == 200
    assert int(answer.headers["X-Denyproxy-Suppressed"]) >= 1
    out = answer.body.decode("utf-16").encode() if name == "utf-16" else answer.body
    assert_no_leak_and_kept(out)


async def test_text_carrying_json_stays_json_with_the_denied_value_removed(
    redis_url: str,
) -> None:
    canned = {"doc": (200, [("Content-Type", "text/plain")], JSON_DOC)}
    answer = await get(redis_url, "doc", canned)
    assert answer.headers["Content-Type"] == "text/plain"  # the label is kept, the body is JSON
    # the JSON path: a person object that only wraps the denied address goes as a whole
    assert orjson.loads(answer.body) == {"people": [{"email": ALLOWED}]}


@pytest.mark.parametrize(
    ("content_type", "body", "kept"),
    [
        ("text/csv", b"name,email\r\nJane,%s\r\nKarl,%s\r\n", b"name,email\r\nKarl,%s\r\n"),
        ("text/csv", b'name,note\n"Jane","line one\n%s"\nKarl,%s\n', b"name,note\nKarl,%s\n"),
        ("application/x-ndjson", b'{"e": "%s"}\n{"e": "%s"}\n', b'{"e": "%s"}\n'),
        ("text/event-stream", b"id: 1\ndata: %s\n\nid: 2\ndata: %s\n\n", b"id: 2\ndata: %s\n\n"),
        ("text/plain", b"a %s\nb %s\n", b"b %s\n"),
    ],
)
async def test_drop_removes_the_record_that_holds_a_denied_identifier(
    redis_url: str, content_type: str, body: bytes, kept: bytes
) -> None:
    canned = {"rows": (200, [("Content-Type", content_type)],
                       body % (DENIED.encode(), ALLOWED.encode()))}
    answer = await get(redis_url, "rows", canned, policy="drop")
    assert answer.status == 200
    assert answer.body == kept % ALLOWED.encode()


async def test_nothing_denied_goes_out_byte_for_byte_compression_kept(redis_url: str) -> None:
    encoded = gzip.compress(b"name,email\nKarl,%s\n" % ALLOWED.encode(), mtime=0)
    canned = {"csv": (200, [("Content-Type", "text/csv"), ("Content-Encoding", "gzip")], encoded)}
    answer = await get(redis_url, "csv", canned)
    assert answer.headers["Content-Encoding"] == "gzip"
    assert answer.headers["X-Denyproxy-Suppressed"] == "0"
    assert answer.body == encoded


async def test_a_rewritten_body_goes_out_uncompressed(redis_url: str) -> None:
    encoded = gzip.compress(b"Jane %s; Karl %s" % (DENIED.encode(), ALLOWED.encode()))
    canned = {"t": (200, [("Content-Type", "text/plain"), ("Content-Encoding", "gzip")], encoded)}
    answer = await get(redis_url, "t", canned)
    assert "Content-Encoding" not in answer.headers
    assert int(answer.headers["Content-Length"]) == len(answer.body)
    assert answer.body == b"Jane [suppressed]; Karl %s" % ALLOWED.encode()


PNG = b"\x89PNG\r\n\x1a\n tEXt author %s" % DENIED.encode()


async def test_a_binary_type_streams_untouched(redis_url: str) -> None:
    answer = await get(redis_url, "img", {"img": (200, [("Content-Type", "image/png")], PNG)})
    assert answer.status == 200
    assert "X-Denyproxy-Suppressed" not in answer.headers  # the label is the contract
    assert answer.body == PNG


async def test_empty_binary_types_filters_every_body(redis_url: str) -> None:
    canned = {"img": (200, [("Content-Type", "image/png")], PNG + b" %s" % ALLOWED.encode())}
    answer = await get(redis_url, "img", canned, binary_types=())
    assert answer.status == 200
    assert answer.headers["X-Denyproxy-Suppressed"] == "1"
    assert_no_leak_and_kept(answer.body)


async def test_a_206_of_a_text_type_is_502_under_a_custom_binary_list(redis_url: str) -> None:
    canned = {"s": (206, [("Content-Type", "image/png"), ("Content-Range", "bytes 0-3/9")],
                    DENIED.encode()[:4])}
    answer = await get(redis_url, "s", canned, binary_types=("application/x-custom",))
    assert answer.status == 502
    assert orjson.loads(answer.body)["detail"]


def test_the_verifier_reads_a_rewritten_body_in_its_charset() -> None:
    """A UTF-16 body scanned as bytes would hold no identifier: verify reads it decoded."""
    label = Label.of(CIMultiDict({"Content-Type": "text/plain; charset=utf-16"}))
    body = f"Jane {DENIED}".encode("utf-16")
    plan = respond.plan_for(BodyKind.TEXT, body, label, "US")
    assert plan.readable(body) == f"Jane {DENIED}".encode()
