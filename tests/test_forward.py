"""Transport: the proxy forwards faithfully, streams what it does not inspect, and stays put."""

from __future__ import annotations

import asyncio
import hashlib
import os

import aiohttp
import pytest

from proxy.app import create_app
from proxy.server import start_site
from proxy.settings import Settings
from rules.model import RuleType
from rules.store import MemoryStore
from tests.harness import fake_upstream, running_proxy
from tests.services import free_ports
from tests.test_suppression import task_result

KEY = {"X-API-Key": "test-key-forward"}


@pytest.fixture
async def setup():
    async with (
        fake_upstream() as (fake, upstream),
        running_proxy(Settings(upstream=upstream, upstream_timeout=2.0)) as proxy,
        aiohttp.ClientSession(auto_decompress=False) as client,
    ):
        yield fake, proxy, client


async def test_get_with_json_body_reaches_upstream_unchanged(setup):
    fake, proxy, client = setup
    body = b'["om_123", "om_456"]'
    url = f"{proxy.url}/api/v1/business_records/list/openmart_id?limit=5&x=%20y"
    async with client.get(url, data=body, headers={**KEY, "Content-Type": "application/json"}) as r:
        rows = await r.json()
    assert r.status == 200
    assert [row["openmart_id"] for row in rows] == ["om_123", "om_456"]
    seen = fake.last()
    path_qs = "/api/v1/business_records/list/openmart_id?limit=5&x=%20y"
    assert (seen.method, seen.path_qs, seen.body) == ("GET", path_qs, body)


async def test_delete_with_body_is_forwarded(setup):
    fake, proxy, client = setup
    body = b'{"type": "email", "values": ["a@b.co"]}'
    async with client.delete(f"{proxy.url}/echo/deny", data=body, headers=KEY) as r:
        assert r.status == 200
    assert (fake.last().method, fake.last().body) == ("DELETE", body)


async def test_post_of_10_mb_arrives_byte_for_byte(setup):
    fake, proxy, client = setup
    body = os.urandom(10 * 1024 * 1024)
    async with client.post(f"{proxy.url}/echo/upload?q=1", data=body, headers=KEY) as r:
        assert r.status == 200
    seen = fake.last()
    assert seen.path_qs == "/echo/upload?q=1"
    assert hashlib.sha256(seen.body).digest() == hashlib.sha256(body).digest()


async def test_headers_hop_by_hop_removed_auth_kept_forwarded_added(setup):
    fake, proxy, client = setup
    sent = {
        "Authorization": "Bearer same-key",
        "X-API-Key": "same-key",
        "Connection": "keep-alive, X-Private-Hop",
        "X-Private-Hop": "drop me",
        "Keep-Alive": "timeout=5",
        "TE": "trailers",
        "Proxy-Authorization": "Basic eA==",
        "X-Custom": "kept",
        "X-Forwarded-For": "203.0.113.9",
    }
    async with client.get(f"{proxy.url}/echo/h", headers=sent) as r:
        assert r.status == 200
        assert r.headers["X-Request-Id"]
    seen = {k.lower(): v for k, v in fake.last().headers.items()}
    assert seen["authorization"] == "Bearer same-key"
    assert seen["x-api-key"] == "same-key"
    assert seen["x-custom"] == "kept"
    for gone in ("x-private-hop", "keep-alive", "te", "proxy-authorization"):
        assert gone not in seen
    assert seen["host"] == proxy.settings.upstream.split("//")[1]
    assert seen["x-forwarded-for"] == "203.0.113.9, 127.0.0.1"
    assert seen["x-forwarded-proto"] == "http"


async def test_request_body_over_limit_is_413_json():
    async with fake_upstream() as (fake, upstream):
        settings = Settings(upstream=upstream, max_request_body=1024)
        async with running_proxy(settings) as proxy, aiohttp.ClientSession() as client:
            async with client.post(f"{proxy.url}/echo/big", data=b"x" * 2048, headers=KEY) as r:
                assert r.status == 413
                assert "detail" in await r.json()

            async def chunked():
                for _ in range(4):
                    yield b"y" * 1000

            async with client.post(f"{proxy.url}/echo/big", data=chunked(), headers=KEY) as r:
                assert r.status == 413
                assert "larger than 1024" in (await r.json())["detail"]
        assert all(len(seen.body) <= 1024 for seen in fake.requests)


async def test_upstream_down_is_502_json():
    (dead,) = free_ports(1)
    async with (
        running_proxy(Settings(upstream=f"http://127.0.0.1:{dead}")) as proxy,
        aiohttp.ClientSession() as client,
        client.get(f"{proxy.url}/x") as r,
    ):
        assert r.status == 502
        assert (await r.json())["detail"] == "upstream unreachable"


async def test_upstream_slower_than_timeout_is_504_json(setup):
    fake, proxy, client = setup
    async with client.get(f"{proxy.url}/slow/5", headers=KEY) as r:
        assert r.status == 504
        assert "within 2 s" in (await r.json())["detail"]


@pytest.mark.parametrize(
    "target",
    [
        "http://evil.example/api/v1/task/1",
        "//evil.example/api/v1/task/1",
        "/echo/../../evil",
        "/echo/%2e%2e/evil",
        "/echo/%252e%252e/evil",
        "/echo/.%2E/evil",
        "/echo\\..\\evil",
    ],
)
async def test_request_target_never_leaves_the_upstream(setup, target):
    fake, proxy, _ = setup
    before = len(fake.requests)
    host, port = proxy.url.rsplit("/", 1)[1].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    request = f"GET {target} HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n"
    writer.write(request.encode())
    await writer.drain()
    status_line = (await reader.readline()).decode()
    writer.close()
    if int(status_line.split()[1]) == 400:
        assert len(fake.requests) == before
    else:  # forwarded: then only to our upstream (the only server here), as a plain path
        assert len(fake.requests) == before + 1
        seen = fake.last()
        assert seen.headers["Host"] == proxy.settings.upstream.split("//")[1]
        assert seen.path_qs.startswith("/") and ".." not in seen.path_qs
        assert seen.path_qs.endswith("/api/v1/task/1")


async def test_large_download_streams_through(setup):
    fake, proxy, client = setup
    size = 64 * 1024 * 1024
    digest = hashlib.sha256()
    async with client.get(f"{proxy.url}/download/{size}", headers=KEY) as r:
        assert r.headers["Content-Length"] == str(size)
        async for chunk in r.content.iter_chunked(1 << 20):
            digest.update(chunk)
    assert digest.digest() == hashlib.sha256(b"x" * size).digest()


async def test_download_streams_without_buffering(setup):
    """The client gets the first bytes while the upstream still holds the rest back."""
    fake, proxy, client = setup
    size = 4 * 1024 * 1024
    try:
        async with client.get(f"{proxy.url}/held/{size}", headers=KEY) as r:
            assert r.status == 200 and r.headers["Content-Length"] == str(size)
            # Only the test sets `release`: a buffering proxy would block here until the timeout.
            first = await asyncio.wait_for(r.content.readexactly(1024), timeout=30)
            assert first == b"a" * 1024
            assert fake.held_sent_first.is_set() and not fake.release.is_set()
            fake.release.set()
            rest = await r.content.read()
    finally:
        fake.release.set()  # never leave the fake's handler waiting
    assert rest == b"b" * (size - 1024)


async def test_gzip_body_of_unfiltered_type_passes_encoded(setup):
    fake, proxy, client = setup
    headers = {**KEY, "Accept-Encoding": "gzip"}
    async with client.get(f"{proxy.url}/gzip-text", headers=headers) as r:
        assert r.status == 200
        assert r.headers["Content-Encoding"] == "gzip"
        assert r.headers["X-Denyproxy-Suppressed"] == "0"  # text: inspected, nothing denied
        body = await r.read()
    assert body == fake.gzip_text_body()


async def test_admin_endpoints(setup):
    fake, proxy, client = setup
    async with client.get(f"{proxy.url}/echo/x", headers=KEY):
        pass
    async with client.get(f"{proxy.admin}/healthz") as r:
        assert r.status == 200
    async with client.get(f"{proxy.admin}/readyz") as r:
        assert r.status == 200
    async with client.get(f"{proxy.admin}/metrics") as r:
        text = await r.text()
    assert 'denyproxy_http_requests_total{method="GET",status="200"}' in text
    assert "denyproxy_upstream_latency_seconds_bucket" in text
    async with client.get(f"{proxy.url}/healthz", headers=KEY) as r:
        assert r.status == 404  # the proxy listener forwards it: admin never shadows upstream


class HangingStore(MemoryStore):
    """A store that takes a lookup and never answers (a wedged connection): not Redis, just
    what the proxy's own bound must catch."""

    async def lookup(self, *args: object, **kwargs: object) -> dict[RuleType, set[str]]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def test_a_store_that_never_answers_is_503_and_the_next_lookup_is_bounded_too() -> None:
    async with fake_upstream() as (_, upstream), aiohttp.ClientSession() as client:
        (port,) = free_ports(1)
        settings = Settings(upstream=upstream, listen=f"127.0.0.1:{port}", store_timeout=0.3)
        proxy = await start_site(create_app(settings, HangingStore()), settings.listen, settings)
        try:
            for _ in range(2):  # the bound's timer is re-armed for a later wait
                r, doc = await task_result(client, f"http://127.0.0.1:{port}", "om_hang")
                assert (r.status, doc) == (503, {"detail": "suppression store unavailable"})
        finally:
            await proxy.cleanup()


async def test_a_caller_that_stops_reading_a_download_is_cut_at_the_idle_timeout():
    """A streamed download whose caller stalls is ended after `upstream_timeout` without
    progress, on the caller's side as on the upstream's: it does not hold the request (and its
    upstream connection) for good. The stall is the stimulus, three times the idle timeout."""
    size = 256 * 1024 * 1024
    async with (
        fake_upstream() as (fake, upstream),
        running_proxy(Settings(upstream=upstream, upstream_timeout=0.5)) as proxy,
    ):
        host, port = proxy.url.split("//")[1].split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(f"GET /download/{size} HTTP/1.1\r\nHost: x\r\nX-API-Key: k\r\n\r\n".encode())
        got = len(await reader.readexactly(64 * 1024))
        await asyncio.sleep(1.5)  # stop reading: the proxy's writes block on a full socket
        while chunk := await asyncio.wait_for(reader.read(1 << 20), timeout=10):
            got += len(chunk)
        writer.close()
    assert got < size, "the proxy waited for the stalled caller instead of ending the download"
