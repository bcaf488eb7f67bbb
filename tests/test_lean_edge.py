"""The lean edge (#11): work a request does not need is done once, not per request, and the
event loop is a setting. The behaviour itself is covered by test_edge/test_forward/…"""

from __future__ import annotations

import asyncio
import hashlib
import uuid

import aiohttp
import pytest
from multidict import CIMultiDict
from prometheus_client import CollectorRegistry, Histogram

from proxy import metrics, paths
from proxy.candidates import HeaderIds, header_identifiers
from proxy.errors import BadRequestError
from proxy.server import loop_factory
from proxy.settings import Settings, SettingsError
from proxy.tallies import Counts, Timings
from proxy.tenant import forwarded_key
from rules.model import RuleChange, RuleType, tenant_of
from rules.store import RedisStore
from tests.harness import fake_upstream, running_proxy
from tests.test_cli import Proxy


def test_request_counters_are_looked_up_once_and_unknown_methods_share_one_label() -> None:
    assert metrics.requests_counter("GET", 200) is metrics.requests_counter("GET", 200)
    assert metrics.requests_counter("BREW", 200) is metrics.requests_counter("WHEN", 200)
    assert metrics.requests_counter("BREW", 200) is metrics.REQUESTS.labels("OTHER", "200")


def test_a_header_is_scanned_once_and_its_identifiers_kept() -> None:
    email = f"jane.{uuid.uuid4().hex[:6]}@acme.com"
    first = header_identifiers("Link", f"<mailto:{email}>", "US")
    assert (RuleType.EMAIL, email) in first
    assert header_identifiers("Link", f"<mailto:{email}>", "US") is first
    assert header_identifiers("Server", "nginx", "US") == ()
    found = HeaderIds.of(CIMultiDict(Link=f"<mailto:{email}>", Server="nginx"), "US")
    assert [name for name, _, _ in found.by_header] == ["Link"]


@pytest.mark.parametrize("path", ["/api/v1/task/abc", "/a/./b", "/a/../b", "/", "/a//b"])
def test_a_path_with_nothing_to_decode_reads_as_the_full_decoding_would(path: str) -> None:
    assert paths.readings(path) == [path.split("/")]
    assert any(seg in (".", "..") for seg in path.split("/")) == _refused(path)
    assert _refused(path.replace(".", "%2e")) == _refused(path)  # the decoding path agrees


def _refused(path: str) -> bool:
    try:
        paths.check(path)
    except Exception:
        return True
    return False


def test_event_loop_choices() -> None:
    assert loop_factory("asyncio") is None
    uvloop = pytest.importorskip("uvloop")
    factory = loop_factory("uvloop")
    assert factory is not None and loop_factory("auto") is factory
    loop = factory()
    try:
        assert isinstance(loop, uvloop.Loop)
    finally:
        loop.close()


def test_uvloop_asked_for_but_missing_is_a_settings_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "uvloop", None)  # `import uvloop` raises ImportError
    assert loop_factory("auto") is None
    with pytest.raises(SettingsError, match="uvloop is not installed"):
        loop_factory("uvloop")


async def test_serve_on_uvloop_filters_and_drains(redis_url: str) -> None:
    pytest.importorskip("uvloop")
    api_key = f"om_{uuid.uuid4().hex}"
    store = RedisStore.from_url(redis_url, timeout=2)
    rule = RuleChange("add", tenant_of(api_key), RuleType.EMAIL, ("jane.doe@acme.com",))
    await store.apply([rule])
    await store.mark_initialised()
    await store.aclose()
    async with fake_upstream() as (_, upstream), aiohttp.ClientSession() as client:
        proxy = Proxy("--upstream", upstream, "--redis", redis_url, "--event-loop", "uvloop")
        try:
            await proxy.ready(client)
            async with client.get(f"{proxy.url}/slow/0", headers={"X-API-Key": api_key}) as r:
                assert r.status == 200
                assert (await r.json())["data"][0]["email"] is None
            assert await asyncio.to_thread(proxy.stop) == 0
        finally:
            proxy.stop()


_AUTO = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")


async def test_the_upstream_gets_the_clients_headers_and_none_aiohttp_would_add() -> None:
    """proxy/upstream_client.py adds none of the headers aiohttp's client would (Accept,
    Accept-Encoding, User-Agent, Content-Type): a client without them must not get them added
    on the way."""
    async with (
        fake_upstream() as (fake, upstream),
        running_proxy(Settings(upstream=upstream)) as proxy,
        aiohttp.ClientSession(skip_auto_headers=_AUTO) as client,
    ):
        async with client.post(f"{proxy.url}/api/v1/x", data=b"raw",
                               headers={"X-API-Key": "k-auto"}) as r:
            assert r.status == 404  # the fake's answer to an unknown path: it was forwarded
        bare = {name.lower() for name in fake.last().headers}
        async with client.post(f"{proxy.url}/api/v1/x", data=b"raw", headers={
                "X-API-Key": "k-auto", "Accept": "text/csv", "User-Agent": "crm/2",
                "Content-Type": "text/plain", "Accept-Encoding": "identity"}) as r:
            assert r.status == 404
        given = fake.last().headers
    assert fake.last().body == b"raw"
    assert not bare & {name.lower() for name in _AUTO}
    assert {k.lower(): v for k, v in given.items() if k in _AUTO} == {
        "accept": "text/csv", "user-agent": "crm/2", "content-type": "text/plain",
        "accept-encoding": "identity"}


def test_tenant_of_is_remembered_and_still_refuses_an_empty_key() -> None:
    key = f"om_{uuid.uuid4().hex}"
    assert tenant_of(key) == hashlib.sha256(key.encode()).hexdigest()
    assert tenant_of(f" {key}\n") == tenant_of(key)
    assert tenant_of.cache_info().maxsize is not None  # bounded: a key flood cannot grow it
    for _ in range(2):  # an error is not remembered as a scope
        with pytest.raises(ValueError, match="must not be empty"):
            tenant_of("  ")


@pytest.mark.parametrize(
    "amounts", [[0.0, 0.0005, 0.0007, 0.001, 0.3, 7.0, float("inf")], [], [2.5]]
)
def test_plain_python_timings_export_what_prometheus_histogram_would(amounts: list[float]) -> None:
    buckets = (0.0005, 0.001, 0.25, 0.5, 1.0)
    ours = Timings("t_seconds", "doc", buckets)
    registry = CollectorRegistry()
    theirs = Histogram("t_seconds", "doc", buckets=buckets, registry=registry)
    for amount in amounts:
        ours.observe(amount)
        theirs.observe(amount)
    expected = [(s.name, s.labels, s.value) for s in next(iter(registry.collect())).samples
                if not s.name.endswith("_created")]
    assert [(s.name, s.labels, s.value) for s in next(iter(ours.collect())).samples] == expected


def test_plain_python_counts_keep_one_child_per_label_values() -> None:
    counts = Counts("c_total", "doc", ["method", "status"])
    counts.labels("GET", 200).inc()
    counts.labels("GET", "200").inc(2)
    counts.labels("POST", 500).inc()
    assert counts.labels("GET", 200) is counts.labels("GET", "200")
    samples = {tuple(s.labels.values()): s.value for s in next(iter(counts.collect())).samples}
    assert samples == {("GET", "200"): 3.0, ("POST", "500"): 1.0}
    with pytest.raises(ValueError, match="label values"):
        counts.labels("GET")


@pytest.mark.parametrize(
    ("headers", "outcome"),
    [
        ([], None),
        ([("X-API-Key", "one")], "one"),
        ([("Authorization", "Bearer one")], "one"),
        ([("X-API-Key", "one"), ("Authorization", "bearer  one")], "one"),
        ([("X-API-Key", "one"), ("Authorization", "Bearer two")], "different keys"),
        ([("X-API-Key", "")], "empty API key"),
        ([("X-API-Key", ""), ("Authorization", "Bearer one")], "empty API key"),
        ([("X-API-Key", ""), ("Authorization", "Basic b25l")], "must be 'Bearer"),
        ([("X-API-Key", "one"), ("Authorization", "Token one")], "must be 'Bearer"),
        ([("X-API-Key", "a"), ("X-API-Key", "a")], "more than one"),
        ([("Authorization", "Bearer"), ("Authorization", "Bearer")], "more than one"),
    ],
)
def test_the_forwarded_key_or_the_first_refusal_that_applies(
    headers: list[tuple[str, str]], outcome: str | None
) -> None:
    forwarded = CIMultiDict(headers)
    if outcome is None or " " not in outcome:
        assert forwarded_key(forwarded) == outcome
        return
    with pytest.raises(BadRequestError, match=outcome):
        forwarded_key(forwarded)
