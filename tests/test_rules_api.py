"""The Openmart-compatible deny-rules API served by the proxy (real Redis; Kafka at the end)."""

from __future__ import annotations

import asyncio
import subprocess
import uuid

import aiohttp
import orjson
import pytest
import redis.asyncio as aioredis

from proxy import server
from proxy.settings import Settings
from rules.model import GLOBAL, RuleChange, RuleType, tenant_of
from rules.store import RedisStore, rule_key
from tests.harness import eventually, fake_upstream, running_proxy, until_ready
from tests.services import RedisServer
from tests.test_suppression import emails, task_result

PATH = "/api/v2/deny-rules"


def key() -> str:
    return f"om_{uuid.uuid4().hex}"


@pytest.fixture
async def two_proxies(redis_url):
    """Two proxy instances sharing one Redis, like two replicas of a deployment; a 5 s store
    timeout: a 10,000-value write takes over the default 1 s on a loaded CI box (504)."""
    async with fake_upstream() as (fake, upstream):
        settings = Settings(upstream=upstream, redis=redis_url, store_timeout=5.0)
        async with (
            running_proxy(settings) as a,
            running_proxy(settings) as b,
            aiohttp.ClientSession() as client,
        ):
            yield fake, a, b, client


async def call(client, method: str, url: str, api_key: str | None, body) -> tuple[int, dict]:
    headers = {"X-API-Key": api_key} if api_key else {}
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    async with client.request(method, url, data=data, headers={**headers,
                              "Content-Type": "application/json"}) as r:
        return r.status, await r.json()


async def test_create_is_enforced_by_the_other_instance_and_delete_restores(two_proxies):
    fake, a, b, client = two_proxies
    api_key = key()
    _, before = await task_result(client, b.url, api_key)
    assert emails(before)[0] == "jane.doe@acme.com"
    status, body = await call(client, "POST", a.url + PATH, api_key,
                              {"type": "email", "values": ["Jane.Doe@ACME.com"]})
    assert (status, body) == (200, {"status": "success"})
    _, after = await task_result(client, b.url, api_key)  # the very next response, other proxy
    assert emails(after)[0] is None
    status, body = await call(client, "DELETE", a.url + PATH, api_key,
                              {"type": "email", "values": ["jane.doe@acme.com", "never@added.io"]})
    assert (status, body) == (200, {"status": "success"})
    _, again = await task_result(client, b.url, api_key)
    assert emails(again)[0] == "jane.doe@acme.com"


async def test_check_answers_with_the_values_as_sent(two_proxies):
    fake, a, b, client = two_proxies
    api_key = key()
    await call(client, "POST", a.url + PATH, api_key, {"type": "phone", "values": ["+15125551000"]})
    await call(client, "POST", a.url + PATH, api_key, {"type": "domain", "values": ["globex.com"]})
    status, body = await call(client, "POST", b.url + PATH + "/check", api_key,
                              {"type": "phone", "values": ["(512) 555-1000", "+1 512 555 1001"]})
    assert (status, body) == (200, {"denied": {"(512) 555-1000": True, "+1 512 555 1001": False}})
    status, body = await call(client, "POST", b.url + PATH + "/check", api_key,
                              {"type": "email", "values": ["Boss@Sales.Globex.com", "a@acme.com"]})
    assert body == {"denied": {"Boss@Sales.Globex.com": True, "a@acme.com": False}}


async def test_tenants_never_see_or_change_each_others_rules(two_proxies, redis_url):
    fake, a, b, client = two_proxies
    key_a, key_b = key(), key()
    await call(client, "POST", a.url + PATH, key_a, {"type": "email", "values": ["x@acme.com"]})
    _, body = await call(client, "POST", a.url + PATH + "/check", key_b,
                         {"type": "email", "values": ["x@acme.com"]})
    assert body == {"denied": {"x@acme.com": False}}
    await call(client, "DELETE", a.url + PATH, key_b, {"type": "email", "values": ["x@acme.com"]})
    _, body = await call(client, "POST", a.url + PATH + "/check", key_a,
                         {"type": "email", "values": ["x@acme.com"]})
    assert body == {"denied": {"x@acme.com": True}}
    # Bearer is the same tenant as X-API-Key
    query = {"type": "email", "values": ["x@acme.com"]}
    async with client.post(a.url + PATH + "/check", json=query,
                           headers={"Authorization": f"Bearer {key_a}"}) as r:
        assert await r.json() == {"denied": {"x@acme.com": True}}


async def test_replay_is_idempotent_and_10000_values_fit_in_one_call(two_proxies, redis_url):
    fake, a, b, client = two_proxies
    api_key = key()
    values = [f"user{i}@bulk.example" for i in range(10_000)]
    for _ in range(2):
        status, body = await call(client, "POST", a.url + PATH, api_key,
                                  {"type": "email", "values": values})
        assert (status, body) == (200, {"status": "success"})
    redis = aioredis.from_url(redis_url)
    try:
        assert await redis.scard(rule_key(tenant_of(api_key), RuleType.EMAIL)) == 10_000
    finally:
        await redis.aclose()


BAD_TYPE = "Type must be one of [email phone domain linkedin company]"


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ({"type": "fax", "values": ["1"]}, 400, BAD_TYPE),
        ({"values": ["a@b.co"]}, 400, BAD_TYPE),
        ({"type": "email"}, 400, "values must be a non-empty array of strings"),
        ({"type": "email", "values": []}, 400, "values must be a non-empty array of strings"),
        ({"type": "email", "values": "a@b.co"}, 400, "values must be a non-empty array of strings"),
        ({"type": "email", "values": ["a@b.co"] * 10_001}, 400,
         "values has 10001 entries; at most 10000 per call"),
        ({"type": "email", "values": ["ok@acme.com", "not-an-email", 7]}, 400,
         '2 values are not a valid email: ["not-an-email",7]'),
        ({"type": "phone", "values": ["12"]}, 400, '1 values are not a valid phone: ["12"]'),
        (b'{"type": "email", "values": [', 400, "body is not valid JSON"),
        (b'["email"]', 400, "body must be a JSON object with type and values"),
    ],
)
async def test_bad_requests_are_400_and_change_nothing(
    two_proxies, redis_url, body, status, detail
):
    fake, a, b, client = two_proxies
    api_key = key()
    for method, path in (("POST", PATH), ("DELETE", PATH), ("POST", PATH + "/check")):
        got = await call(client, method, a.url + path, api_key, body)
        assert got == (status, {"detail": detail})
    redis = aioredis.from_url(redis_url)
    try:
        assert not await redis.keys(f"denyproxy:{{{tenant_of(api_key)}}}:*")
    finally:
        await redis.aclose()


async def test_no_key_is_401(two_proxies):
    fake, a, b, client = two_proxies
    got = await call(client, "POST", a.url + PATH, None, {"type": "email", "values": ["a@b.co"]})
    assert got == (401, {"detail": "Invalid API Key"})


async def test_seed_curl_calls_work_with_only_the_base_url_changed(two_proxies):
    """The calls of Openmart's own documentation (seed 003), run with curl."""
    fake, a, b, client = two_proxies
    api_key = key()

    def curl(*args: str) -> dict:
        out = subprocess.run(["curl", "-sS", *args], check=True, capture_output=True, text=True)
        return orjson.loads(out.stdout)

    created = await asyncio.to_thread(
        curl, "--request", "POST", "--url", f"{a.url}/api/v2/deny-rules",
        "--header", "Accept: application/json", "--header", f"X-API-Key: {api_key}",
        "--header", "Content-Type: application/json",
        "--data",
        '{\n    "type": "email",\n'
        '    "values": ["blocked@example.com", "spam@example.com"]\n  }',
    )
    assert created == {"status": "success"}
    checked = await asyncio.to_thread(
        curl, "-X", "POST", f"{a.url}/api/v2/deny-rules/check", "-H", "Accept: application/json",
        "-H", f"Authorization: Bearer {api_key}", "-H", "Content-Type: application/json",
        "-d", '{"type": "email", "values": ["blocked@example.com", "ok@example.com"]}',
    )
    assert checked == {"denied": {"blocked@example.com": True, "ok@example.com": False}}


async def test_forward_deny_rules_sends_the_call_upstream_and_reports_its_errors(redis_url):
    async with fake_upstream() as (fake, upstream):
        settings = Settings(upstream=upstream, redis=redis_url, forward_deny_rules=True)
        async with running_proxy(settings) as proxy, aiohttp.ClientSession() as client:
            api_key = key()
            body = {"type": "email", "values": ["fwd@acme.com"]}
            assert await call(client, "POST", proxy.url + PATH, api_key, body) == (
                200, {"status": "success"})
            seen = fake.last()
            assert (seen.method, seen.path_qs, orjson.loads(seen.body)) == ("POST", PATH, body)
            assert seen.headers["X-API-Key"] == api_key
            fake.deny_rules_status = 500
            status, got = await call(client, "DELETE", proxy.url + PATH, api_key, body)
            assert status == 502 and "upstream answered 500" in got["detail"]
            assert "persistence failure" not in got["detail"]  # the upstream's text: unread


async def test_validate_keys_checks_the_key_upstream(redis_url):
    async with fake_upstream() as (fake, upstream):
        settings = Settings(upstream=upstream, redis=redis_url, validate_keys=True)
        async with running_proxy(settings) as proxy, aiohttp.ClientSession() as client:
            fake.valid_keys = {"good-key"}
            body = {"type": "email", "values": ["v@acme.com"]}
            assert (await call(client, "POST", proxy.url + PATH, "good-key", body))[0] == 200
            assert await call(client, "POST", proxy.url + PATH, "bad-key", body) == (
                401, {"detail": "Invalid API Key"})
            balance_calls = [r for r in fake.requests if r.path_qs == "/api/v2/credit-balance"]
            await call(client, "POST", proxy.url + PATH, "good-key", body)
            again = [r for r in fake.requests if r.path_qs == "/api/v2/credit-balance"]
            assert len(again) == len(balance_calls)  # cached


async def test_with_kafka_a_200_means_every_proxy_already_enforces_it(redis_url, kafka_bootstrap):
    topic = f"rules-{uuid.uuid4().hex[:8]}"
    async with fake_upstream() as (fake, upstream):
        base = Settings(upstream=upstream, redis=redis_url, kafka=kafka_bootstrap, topic=topic,
                        group=f"g-{topic}")
        async with (
            running_proxy(base) as a,
            running_proxy(base.with_(consumer=False)) as b,
            aiohttp.ClientSession() as client,
        ):
            await until_ready(client, a)
            api_key = key()
            for value in ("jane.doe@acme.com", "karl.marx@acme.com", "ada.lovelace@acme.com"):
                status, body = await call(client, "POST", b.url + PATH, api_key,
                                          {"type": "email", "values": [value]})
                assert (status, body) == (200, {"status": "success"})
                _, doc = await task_result(client, b.url, api_key)
                assert value not in emails(doc)
            status, _ = await call(client, "DELETE", a.url + PATH, api_key,
                                   {"type": "email", "values": ["jane.doe@acme.com"]})
            _, doc = await task_result(client, b.url, api_key)
            assert status == 200 and emails(doc)[0] == "jane.doe@acme.com"


async def test_with_kafka_but_no_consumer_anywhere_the_api_says_not_yet_enforced(
    redis_url, kafka_bootstrap
):
    topic = f"rules-{uuid.uuid4().hex[:8]}"
    async with fake_upstream() as (fake, upstream):
        settings = Settings(upstream=upstream, redis=redis_url, kafka=kafka_bootstrap, topic=topic,
                            consumer=False, rule_wait_timeout=1.0)
        async with running_proxy(settings) as proxy, aiohttp.ClientSession() as client:
            status, body = await call(client, "POST", proxy.url + PATH, key(),
                                      {"type": "email", "values": ["late@acme.com"]})
    assert status == 504 and "published but not yet enforced" in body["detail"]
    assert "outcome unknown; retry is safe" in body["detail"]


async def readyz(client, proxy) -> int:
    async with client.get(f"{proxy.admin}/readyz") as r:
        return r.status


async def test_without_kafka_a_flushed_redis_fails_closed_until_an_operator_initialises(
    flushable_redis_url,
):
    redis_url = flushable_redis_url  # FLUSHALL: never $REDIS_URL
    async with fake_upstream() as (_, upstream):
        settings = Settings(upstream=upstream, redis=redis_url)
        async with running_proxy(settings) as proxy, aiohttp.ClientSession() as client:
            api_key = key()
            body = {"type": "email", "values": ["jane.doe@acme.com"]}
            assert (await call(client, "POST", proxy.url + PATH, api_key, body))[0] == 200
            assert await readyz(client, proxy) == 200
            redis = aioredis.from_url(redis_url)
            await redis.flushall()
            await redis.aclose()
            response, doc = await task_result(client, proxy.url, api_key)
            assert response.status == 503 and doc["detail"], "never the unfiltered body"
            assert "jane.doe@acme.com" not in str(doc)
            assert await readyz(client, proxy) == 503
            status, got = await call(client, "POST", proxy.url + PATH, api_key, body)
            assert status == 503 and "denyproxy store init" in got["detail"]
            assert "nothing was changed" in got["detail"]
            assert await server.store_init(settings) == 0  # `denyproxy store init --redis URL`
            assert await readyz(client, proxy) == 200
            _, doc = await task_result(client, proxy.url, api_key)
            lost = "the lost rule is gone: nothing rebuilds it"
            assert emails(doc)[0] == "jane.doe@acme.com", lost


async def test_init_store_waits_for_a_redis_that_starts_after_the_proxy(tmp_path):
    """A sidecar's Redis may come up after the proxy: --init-store tries again until it
    answers; until then lookups fail closed (readyz 503), then the proxy filters."""
    redis = RedisServer(workdir=tmp_path)  # its port, nothing listening on it yet
    async with fake_upstream() as (_, upstream), aiohttp.ClientSession() as client:
        settings = Settings(upstream=upstream, redis=redis.url, init_store=True, store_timeout=2.0)
        async with running_proxy(settings, init_store=False) as proxy:
            assert await readyz(client, proxy) == 503, "no Redis yet: not ready"
            redis.start()
            try:
                async def ready() -> bool:
                    return await readyz(client, proxy) == 200

                await eventually(ready, "readyz 200 once the Redis started later is marked")
            finally:
                redis.stop()


async def test_init_store_at_start_marks_only_a_brand_new_redis(flushable_redis_url, capsys):
    redis_url = flushable_redis_url  # FLUSHALL: never $REDIS_URL
    redis = aioredis.from_url(redis_url)
    async with fake_upstream() as (_, upstream), aiohttp.ClientSession() as client:
        # --init-store makes one attempt at start-up: a store slower than the default 1 s on a
        # loaded CI box would skip it (logged "store init failed"), which is not this test's path
        settings = Settings(upstream=upstream, redis=redis_url, init_store=True, store_timeout=5.0)
        try:
            await redis.flushall()
            async with running_proxy(settings, init_store=False) as proxy:
                async def ready() -> bool:
                    return await readyz(client, proxy) == 200

                await eventually(ready, "readyz 200: empty Redis, --init-store marks it new")
            store = RedisStore.from_url(redis_url, timeout=2.0)
            await store.apply([RuleChange("add", tenant_of(key()), RuleType.EMAIL, ("a@b.co",))])
            await store.aclose()
            await redis.flushall()
            await redis.sadd(rule_key(tenant_of(key()), RuleType.EMAIL), "left@over.io")
            async with running_proxy(settings, init_store=False) as proxy:
                assert await readyz(client, proxy) == 503, "rules without a marker: refused"
            async with running_proxy(settings.with_(init_store=False), init_store=False) as proxy:
                assert await readyz(client, proxy) == 503
            assert await server.store_init(settings) == 0
            assert "marker missing; 1 rule sets present; initialised" in capsys.readouterr().out
        finally:
            await server.store_init(settings)
            await redis.aclose()


async def test_per_key_limits_answer_413_and_429_with_retry_after(redis_url):
    async with fake_upstream() as (_, upstream):
        settings = Settings(upstream=upstream, redis=redis_url, max_rules_per_key=3,
                            rule_writes_per_minute=3)
        async with running_proxy(settings) as proxy, aiohttp.ClientSession() as client:
            api_key = key()
            two = {"type": "email", "values": ["a@acme.com", "b@acme.com"]}
            assert (await call(client, "POST", proxy.url + PATH, api_key, two))[0] == 200
            status, got = await call(client, "POST", proxy.url + PATH, api_key,
                                     {"type": "phone", "values": ["+15125551000", "+15125551001"]})
            assert status == 413 and "limit of 3 rules per key" in got["detail"]
            assert (await call(client, "DELETE", proxy.url + PATH, api_key, two))[0] == 200
            assert (await call(client, "POST", proxy.url + PATH, api_key, two))[0] == 200  # 3rd
            async with client.post(proxy.url + PATH, json=two, headers={"X-API-Key": api_key}) as r:
                assert r.status == 429 and 1 <= int(r.headers["Retry-After"]) <= 60
                assert "3 rule writes per minute" in (await r.json())["detail"]
            other = key()
            assert (await call(client, "POST", proxy.url + PATH, other, two))[0] == 200


async def test_check_reveals_global_rules_only_to_a_validated_key(redis_url):
    secret = f"competitor-{uuid.uuid4().hex[:8]}@globex.com"
    store = RedisStore.from_url(redis_url, timeout=2.0)
    await store.apply([RuleChange("add", GLOBAL, RuleType.EMAIL, (secret,))])
    await store.aclose()
    body = {"type": "email", "values": [secret]}
    async with fake_upstream() as (fake, upstream), aiohttp.ClientSession() as client:
        settings = Settings(upstream=upstream, redis=redis_url)
        async with running_proxy(settings) as proxy:
            got = await call(client, "POST", proxy.url + PATH + "/check", "made-up", body)
            assert got == (200, {"denied": {secret: False}})
        fake.valid_keys = {"good-key"}
        async with running_proxy(settings.with_(validate_keys=True)) as proxy:
            got = await call(client, "POST", proxy.url + PATH + "/check", "made-up", body)
            assert got == (401, {"detail": "Invalid API Key"})
            got = await call(client, "POST", proxy.url + PATH + "/check", "good-key", body)
            assert got == (200, {"denied": {secret: True}})


async def test_a_write_that_timed_out_says_its_outcome_is_unknown(redis_url):
    """Redis holds the write (CLIENT PAUSE) past --store-timeout: 504 "outcome unknown" (here
    redis-py drops the connection, so it was not applied; it could have been), and the retry
    is safe."""
    api_key = key()
    async with fake_upstream() as (_, upstream):
        settings = Settings(upstream=upstream, redis=redis_url, store_timeout=0.3)
        async with running_proxy(settings) as proxy, aiohttp.ClientSession() as client:
            redis = aioredis.from_url(redis_url)
            try:
                await redis.execute_command("CLIENT", "PAUSE", "1500", "WRITE")
                status, got = await call(client, "POST", proxy.url + PATH, api_key,
                                         {"type": "email", "values": ["late@acme.com"]})
                assert status == 504 and "outcome unknown; retry is safe" in got["detail"]
                assert "nothing was changed" not in got["detail"]
                await redis.execute_command("CLIENT", "UNPAUSE")
                for _ in range(2):  # the retry, and a replay of it: adds are idempotent
                    got = await call(client, "POST", proxy.url + PATH, api_key,
                                     {"type": "email", "values": ["late@acme.com"]})
                    assert got == (200, {"status": "success"})
                assert await redis.scard(rule_key(tenant_of(api_key), RuleType.EMAIL)) == 1
            finally:
                await redis.execute_command("CLIENT", "UNPAUSE")
                await redis.aclose()
