"""Issue #10 at the HTTP edge, through the running proxy against a real Redis.

Scope from the forwarded auth headers, Range, exempt segments, bad headers, cache headers,
statuses of unreadable bodies, every gzip member, duplicate keys, response headers.
"""

from __future__ import annotations

import asyncio
import gzip
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import orjson
import pytest
from aiohttp import web
from yarl import URL

from proxy.settings import Settings
from rules.model import RuleType, tenant_of
from tests.fake_openmart import FakeOpenmart
from tests.harness import Running, fake_upstream, running_proxy
from tests.test_logs import denyproxy_serve
from tests.test_suppression import add

DENIED = "jane.doe@acme.com"
ALLOWED = "karl.marx@acme.com"


@dataclass
class EdgeFake(FakeOpenmart):
    """The fake upstream plus canned answers under /edge/<name>: (status, headers, body)."""

    canned: dict[str, tuple[int, dict[str, str], bytes]] = field(default_factory=dict)

    def app(self) -> web.Application:
        app = super().app()
        app.router.add_route("*", "/edge/{name:.*}", self.edge)
        return app

    async def edge(self, request: web.Request) -> web.Response:
        status, headers, body = self.canned[request.match_info["name"]]
        return web.Response(status=status, headers=headers, body=body)


def key() -> str:
    return f"om_{uuid.uuid4().hex}"


def json_answer(doc: object, **headers: str) -> tuple[int, dict[str, str], bytes]:
    return 200, {"Content-Type": "application/json", **headers}, orjson.dumps(doc)


Env = tuple[EdgeFake, Running, aiohttp.ClientSession]
"""The fake upstream, the proxy in front of it, and a client that keeps bodies as sent."""


@pytest.fixture
async def env(redis_url: str) -> AsyncIterator[Env]:
    fake = EdgeFake()
    async with fake_upstream(fake) as (_, upstream):
        settings = Settings(upstream=upstream, redis=redis_url,
                            exempt_paths=("/edge/trusted",))
        async with running_proxy(settings) as proxy, aiohttp.ClientSession(
            auto_decompress=False
        ) as client:
            yield fake, proxy, client


async def raw_request(proxy_url: str, head: bytes) -> tuple[int, bytes]:
    """One request written by hand (headers no client library would send)."""
    host, port = proxy_url[7:].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(head)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


async def denied_key(redis_url: str) -> str:
    api_key = key()
    await add(redis_url, tenant_of(api_key), RuleType.EMAIL, DENIED)
    return api_key


# 1. The client cannot choose its scope


async def test_key_named_in_connection_is_refused_not_swapped(env: Env, redis_url: str) -> None:
    fake, proxy, client = env
    real = await denied_key(redis_url)
    before = len(fake.requests)
    head = (f"GET /edge/people HTTP/1.1\r\nHost: x\r\nX-API-Key: bogus\r\n"
            f"Authorization: Bearer {real}\r\nConnection: close, X-API-Key\r\n\r\n").encode()
    status, body = await raw_request(proxy.url, head)
    assert status == 400 and "Connection" in orjson.loads(body)["detail"]
    assert len(fake.requests) == before


@pytest.mark.parametrize(
    "headers",
    [
        [("X-API-Key", "one"), ("Authorization", "Bearer two")],
        [("X-API-Key", "one"), ("X-API-Key", "two")],
        [("Authorization", "Bearer one"), ("Authorization", "Bearer two")],
        [("Authorization", "Token one")],
        [("Authorization", "Basic b25lOnR3bw==")],
        [("Authorization", "Bearer")],
        [("Authorization", "Bearer one two")],
        [("X-API-Key", "")],
    ],
)
async def test_ambiguous_or_foreign_credentials_are_400_and_never_forwarded(
    env: Env, headers: list[tuple[str, str]]
) -> None:
    fake, proxy, _ = env
    before = len(fake.requests)
    lines = "".join(f"{name}: {value}\r\n" for name, value in headers)
    head = f"GET /edge/people HTTP/1.1\r\nHost: x\r\n{lines}Connection: close\r\n\r\n".encode()
    status, body = await raw_request(proxy.url, head)
    assert status == 400 and orjson.loads(body)["detail"]
    assert len(fake.requests) == before


async def test_same_key_in_both_headers_filters_for_that_key(env: Env, redis_url: str) -> None:
    fake, proxy, client = env
    real = await denied_key(redis_url)
    fake.canned["people"] = json_answer({"emails": [DENIED, ALLOWED]})
    auth = {"X-API-Key": real, "Authorization": f"Bearer {real}"}
    async with client.get(f"{proxy.url}/edge/people", headers=auth) as r:
        assert (await r.json())["emails"] == [ALLOWED]


# 2. Range never yields an unfiltered slice


async def test_range_is_not_forwarded_on_a_filtered_route(env: Env, redis_url: str) -> None:
    fake, proxy, client = env
    api_key = await denied_key(redis_url)
    fake.canned["people"] = json_answer({"emails": [DENIED, ALLOWED]})
    async with client.get(f"{proxy.url}/edge/people", headers={
            "X-API-Key": api_key, "Range": "bytes=0-20", "If-Range": '"v1"'}) as r:
        assert r.status == 200 and (await r.json())["emails"] == [ALLOWED]
    seen = {k.lower() for k in fake.last().headers}
    assert "range" not in seen and "if-range" not in seen


async def test_range_is_forwarded_on_an_exempt_route(env: Env) -> None:
    fake, proxy, client = env
    fake.canned["trusted/file"] = (200, {"Content-Type": "application/octet-stream"}, b"x")
    async with client.get(f"{proxy.url}/edge/trusted/file", headers={
            "X-API-Key": key(), "Range": "bytes=0-0"}) as r:
        assert r.status == 200
    assert fake.last().headers["Range"] == "bytes=0-0"


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", "application/x-new"])
async def test_a_206_of_a_filterable_or_unknown_type_is_502(env: Env, content_type: str) -> None:
    fake, proxy, client = env
    headers = {"Content-Range": "bytes 0-19/100", "Content-Type": content_type}
    fake.canned["slice"] = (206, headers, b'{"email": "jane.doe@')
    async with client.get(f"{proxy.url}/edge/slice", headers={"X-API-Key": key()}) as r:
        assert r.status == 502
        body = await r.read()
    assert b"jane" not in body and orjson.loads(body)["detail"]


async def test_a_206_of_a_binary_type_passes(env: Env) -> None:
    fake, proxy, client = env
    headers = {"Content-Type": "image/png", "Content-Range": "bytes 0-3/9"}
    fake.canned["img"] = (206, headers, b"\x89PNG")
    async with client.get(f"{proxy.url}/edge/img", headers={"X-API-Key": key()}) as r:
        assert r.status == 206 and await r.read() == b"\x89PNG"


# 3. Exempt paths match whole segments


@pytest.mark.parametrize(
    ("path", "exempt"),
    [
        ("/edge/trusted", True),
        ("/edge/trusted/rows", True),
        ("/edge/trustedx", False),
        ("/edge/trusted%2Frows", False),  # one segment to a server that keeps %2F
        ("/edge/%74rusted/rows", False),  # not under the prefix as sent
    ],
)
async def test_exempt_paths_match_whole_segments(
    env: Env, redis_url: str, path: str, exempt: bool
) -> None:
    fake, proxy, client = env
    api_key = await denied_key(redis_url)
    answer = json_answer({"emails": [DENIED, ALLOWED]})
    for name in ("trusted", "trusted/rows", "trustedx", "trusted%2Frows"):
        fake.canned[name] = answer
    url = URL(f"{proxy.url}{path}", encoded=True)  # sent exactly as written
    async with client.get(url, headers={"X-API-Key": api_key}) as r:
        assert r.status == 200, await r.text()
        got = (await r.json())["emails"]
    assert got == ([DENIED, ALLOWED] if exempt else [ALLOWED])


async def test_dot_segments_under_an_exempt_prefix_are_400(env: Env) -> None:
    fake, proxy, _ = env
    before = len(fake.requests)
    head = b"GET /edge/trusted/%2e%2e/people HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    status, _ = await raw_request(proxy.url, head)
    assert status == 400 and len(fake.requests) == before


# 4. Bad request headers


@pytest.mark.parametrize("line", ["X-Custom: caf\u00e9", "X-API-Key: k\u00e9y"])
async def test_non_ascii_header_value_is_400_json_before_upstream(env: Env, line: str) -> None:
    fake, proxy, _ = env
    before = len(fake.requests)
    head = f"GET /edge/people HTTP/1.1\r\nHost: x\r\n{line}\r\nConnection: close\r\n\r\n"
    status, body = await raw_request(proxy.url, head.encode())
    assert status == 400 and "ASCII" in orjson.loads(body)["detail"]
    assert len(fake.requests) == before


# 5. Cache safety


async def test_filtered_responses_are_private_and_vary_on_the_key(env: Env, redis_url: str) -> None:
    fake, proxy, client = env
    api_key = await denied_key(redis_url)
    cache = {"Cache-Control": "public, max-age=60, s-maxage=600", "Vary": "Accept-Encoding"}
    fake.canned["rewritten"] = json_answer({"emails": [DENIED]}, **cache)
    fake.canned["unchanged"] = json_answer({"emails": [ALLOWED]}, **cache)
    for name in ("rewritten", "unchanged"):
        async with client.get(f"{proxy.url}/edge/{name}", headers={"X-API-Key": api_key}) as r:
            directives = [d.strip() for d in r.headers["Cache-Control"].split(",")]
            vary = {v.strip().lower() for v in r.headers["Vary"].split(",")}
        assert directives == ["private", "max-age=60"]
        assert vary == {"accept-encoding", "x-api-key", "authorization"}


# 6. Statuses and bodies that must not slip through


@pytest.mark.parametrize(
    "body",
    [
        b'{"a":' * 400 + b'"jane.doe@acme.com"' + b"}" * 400,  # deeper than the walk allows
        b"[" * 2000 + b"]" * 2000,  # deeper than orjson parses
        b'{"\xff\xfe": "jane.doe@acme.com"}',  # a key that is not UTF-8
        b'{"\\ud800": "jane.doe@acme.com"}',  # a lone surrogate key
    ],
)
async def test_unreadable_json_is_502_json(env: Env, redis_url: str, body: bytes) -> None:
    fake, proxy, client = env
    api_key = await denied_key(redis_url)
    fake.canned["odd"] = (200, {"Content-Type": "application/json"}, body)
    async with client.get(f"{proxy.url}/edge/odd", headers={"X-API-Key": api_key}) as r:
        assert r.status == 502
        out = await r.read()
    assert DENIED.encode() not in out and orjson.loads(out)["detail"]


async def test_every_gzip_member_is_filtered(env: Env, redis_url: str) -> None:
    fake, proxy, client = env
    api_key = await denied_key(redis_url)
    body = gzip.compress(b'{"emails": ["' + ALLOWED.encode() + b'", ') + gzip.compress(
        b'"' + DENIED.encode() + b'"]}')
    fake.canned["members"] = (200, {"Content-Type": "application/json",
                                    "Content-Encoding": "gzip"}, body)
    async with client.get(f"{proxy.url}/edge/members", headers={"X-API-Key": api_key}) as r:
        assert r.status == 200 and "Content-Encoding" not in r.headers
        assert orjson.loads(await r.read()) == {"emails": [ALLOWED]}


async def test_duplicate_keys_never_go_out_as_raw_bytes(env: Env, redis_url: str) -> None:
    fake, proxy, client = env
    api_key = await denied_key(redis_url)
    body = (b'{"contact": {"name": "Jane", "email": "' + DENIED.encode() + b'", "email": null},'
            b' "n": 1}')
    fake.canned["dup"] = (200, {"Content-Type": "application/json"}, body)
    async with client.get(f"{proxy.url}/edge/dup", headers={"X-API-Key": api_key}) as r:
        assert r.status == 200
        out = await r.read()
    assert DENIED.encode() not in out
    assert orjson.loads(out) == {"contact": {"name": "Jane", "email": None}, "n": 1}


# 8. Response headers


async def test_response_headers_holding_denied_identifiers_are_removed(
    env: Env, redis_url: str
) -> None:
    fake, proxy, client = env
    api_key = await denied_key(redis_url)
    await add(redis_url, tenant_of(api_key), RuleType.LINKEDIN, "linkedin.com/in/adalovelace")
    await add(redis_url, tenant_of(api_key), RuleType.PHONE, "+1 512 555 0142")
    headers = {
        "Location": "mailto:jane.doe%40acme.com?subject=hi",
        "Link": '<https://www.linkedin.com/in/AdaLovelace/>; rel="profile"',
        "X-Owner-Phone": "call (512) 555-0142",
        "X-Other": f"mailto:{ALLOWED}",
    }
    fake.canned["json"] = json_answer({"ok": True}, **headers)
    fake.canned["bin"] = (200, {"Content-Type": "application/octet-stream", **headers}, b"\0")
    for name in ("json", "bin"):
        async with client.get(f"{proxy.url}/edge/{name}", headers={"X-API-Key": api_key}) as r:
            assert r.status == 200
            got = {k.lower(): v for k, v in r.headers.items()}
        assert not {"location", "link", "x-owner-phone"} & got.keys(), name
        assert got["x-other"] == f"mailto:{ALLOWED}"


async def test_headers_of_another_key_are_kept(env: Env, redis_url: str) -> None:
    fake, proxy, client = env
    await denied_key(redis_url)
    fake.canned["bin"] = (200, {"Content-Type": "application/octet-stream",
                                "Location": f"mailto:{DENIED}"}, b"\0")
    async with client.get(f"{proxy.url}/edge/bin", headers={"X-API-Key": key()}) as r:
        assert r.headers["Location"] == f"mailto:{DENIED}"


# 7. No key in any log line, aiohttp's own included


async def test_no_api_key_in_any_log_line(tmp_path: Path, redis_url: str) -> None:
    planted = f"planted-{uuid.uuid4().hex}"
    heads = [  # every one closes the connection after its answer
        f"X-API-Key: {planted}\x01x",  # refused by aiohttp's parser, which logs the line
        f"Authorization: Bearer {planted}\r\nBad Name: y",
        f"X-API-Key: {planted}\r\nX-API-Key: 2\r\nConnection: close",
        f"X-API-Key: {planted}\r\nConnection: close",
    ]
    heads = [f"GET /edge/people HTTP/1.1\r\nHost: a\r\n{lines}\r\n\r\n" for lines in heads]
    fake = EdgeFake()
    fake.canned["people"] = json_answer({"emails": [ALLOWED]})
    async with fake_upstream(fake) as (_, upstream), denyproxy_serve(
        tmp_path, "--upstream", upstream, "--redis", redis_url, "--log-level", "debug"
    ) as proc:
        statuses = [(await raw_request(proc.url, head.encode()))[0] for head in heads]
    assert statuses == [400, 400, 400, 200]
    text = proc.stderr.read_text()
    assert "Error handling request" in text  # aiohttp did log the bad requests
    assert planted not in text
