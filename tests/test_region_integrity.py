"""Issue #17 end to end, against the real broker and the real Redis: the phone region travels
with each event and is recorded with the rule set (3), domain rules mean a domain (5), text is
cleaned before it is stored (6), and both sides spell one identifier one way (8).

A real `serve --kafka --redis` (in-process consumer) reads the events; the fake Openmart
upstream answers search rows that carry the identifiers in the other spelling.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import unicodedata
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer
from aiokafka.structs import RecordMetadata

from proxy import server
from proxy.settings import Settings, SettingsError
from rules.events import encode, key_of
from rules.kafka import KafkaOptions, dead_letter_topic, ensure_topic
from rules.model import RuleType, tenant_of
from rules.publisher import RulePublisher
from rules.store import RedisStore, rule_key
from rules.store.keys import region_key
from tests.harness import Running, eventually, fake_upstream, running_proxy, until_ready
from tests.test_consumer_integrity import read_dead


@dataclass
class Stack:
    proxy: Running
    fake: Any
    client: aiohttp.ClientSession
    producer: AIOKafkaProducer
    store: RedisStore
    redis: aioredis.Redis
    topic: str
    api_key: str

    @property
    def tenant(self) -> str:
        return tenant_of(self.api_key)

    async def publish(self, rule_type: str, values: list[str], **fields: Any) -> RecordMetadata:
        """A raw event, as any publisher of the contract may send it (no normalising here)."""
        fields.setdefault("region", None)
        value = encode("add", self.tenant, rule_type, values, **fields)
        return await self.producer.send_and_wait(self.topic, value, key=key_of(self.tenant))

    async def applied(self, metas: Sequence[RecordMetadata]) -> None:
        async def passed() -> bool:
            mirrored = await self.store.offsets()
            return all(mirrored.get(m.partition, -1) > m.offset for m in metas)

        await eventually(passed, "the consumer to pass the published offsets")

    async def stored(self, rule_type: RuleType) -> set[str]:
        return set(await self.redis.smembers(rule_key(self.tenant, rule_type)))

    async def search(self, rows: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
        self.fake.search_rows = rows
        async with self.client.post(f"{self.proxy.url}/api/v1/search", json={},
                                    headers={"X-API-Key": self.api_key}) as r:
            return int(r.headers.get("X-Denyproxy-Suppressed", "0")), await r.json()


@pytest.fixture
async def stack(redis_url: str, kafka_bootstrap: str) -> AsyncIterator[Stack]:
    """`serve --kafka --redis --phone-region US` with its consumer, ready, plus a producer."""
    topic = f"rules-{uuid.uuid4().hex[:12]}"
    await ensure_topic(KafkaOptions(kafka_bootstrap), topic)
    async with fake_upstream() as (fake, upstream):
        settings = Settings(upstream=upstream, redis=redis_url, kafka=kafka_bootstrap,
                            topic=topic, group=f"g-{topic}", phone_region="US")
        async with running_proxy(settings) as proxy, aiohttp.ClientSession() as client:
            await until_ready(client, proxy)
            producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
            await producer.start()
            store = RedisStore.from_url(redis_url, timeout=5.0, topic=topic)
            redis = aioredis.from_url(redis_url, decode_responses=True)
            try:
                yield Stack(proxy, fake, client, producer, store, redis, topic,
                            f"om_{uuid.uuid4().hex}")
            finally:
                await producer.stop()
                await store.aclose()
                await redis.aclose()


def row(**contact: Any) -> dict[str, Any]:
    return {"first_name": "Jo", "company_name": "Acme", **contact}


async def dead_letters(stack: Stack, count: int) -> list[tuple[str, bytes]]:
    """(reason-code, value) of the first `count` dead letters of the stack's topic."""
    found = await read_dead(stack.proxy.settings.kafka or "", dead_letter_topic(stack.topic), count)
    return [(headers["reason-code"], value) for headers, value in found]


# (3) the region is data ---------------------------------------------------------------------


async def test_a_french_national_number_with_region_fr_is_enforced_by_a_us_proxy(
    stack: Stack,
) -> None:
    raw = await stack.publish("phone", ["01 42 68 53 00"], region="FR")
    async with RulePublisher(KafkaOptions(stack.proxy.settings.kafka or ""), stack.topic,
                             region="FR") as publisher:  # the library sets its region too
        library = await publisher.publish("add", stack.tenant, "phone", ["04 91 55 11 11"])
    await stack.applied([raw, library])
    assert await stack.stored(RuleType.PHONE) == {"+33142685300", "+33491551111"}
    phones = ["+33 1 42 68 53 00", "+33 4 91 55 11 11", "+1 512 555 0100"]
    suppressed, doc = await stack.search([row(phones=phones)])
    assert suppressed == 2 and doc["data"][0]["phones"] == ["+1 512 555 0100"]


async def test_a_french_number_published_with_region_us_is_dead_lettered_not_stored(
    stack: Stack,
) -> None:
    bad = await stack.publish("phone", ["01 23 45 67 89"], region="US")
    later = await stack.publish("email", ["later@acme.com"])  # same tenant, same partition
    await stack.applied([later])
    assert bad.partition == later.partition and bad.offset < later.offset
    assert await stack.stored(RuleType.PHONE) == set(), "never stored as nonsense E.164"
    [(code, value)] = await dead_letters(stack, 1)
    assert code == "values" and orjson.loads(value)["values"] == ["01 23 45 67 89"]


# (5) a domain rule is a domain ---------------------------------------------------------------


async def test_emails_urls_public_suffixes_and_unallowed_free_mail_are_dead_lettered(
    stack: Stack,
) -> None:
    bad = ["jane@gmail.com", "https://acme.com/path", "co.uk", "gmail.com"]
    metas = [await stack.publish("domain", [value]) for value in bad]
    allowed = await stack.publish("domain", ["gmail.com"], allow_freemail=True)
    metas.append(await stack.publish("domain", ["acme.com"]))
    await stack.applied([*metas, allowed])
    assert await stack.stored(RuleType.DOMAIN) == {"gmail.com", "acme.com"}
    letters = await dead_letters(stack, len(bad))
    assert [code for code, _ in letters] == ["values"] * len(bad)
    assert sorted(orjson.loads(v)["values"][0] for _, v in letters) == sorted(bad)


# (6) clean text in, clean text stored -------------------------------------------------------


async def test_a_bom_or_zero_width_inside_a_value_is_stored_clean_and_matches(
    stack: Stack,
) -> None:
    metas = [
        await stack.publish("email", ["\ufeffjane.doe@acme.com", "ka\u200brl@acme.com"]),
        await stack.publish("linkedin", ["linkedin.com/in/ada\u200d-lovelace\u200e"]),
    ]
    await stack.applied(metas)
    assert await stack.stored(RuleType.EMAIL) == {"jane.doe@acme.com", "karl@acme.com"}
    assert await stack.stored(RuleType.LINKEDIN) == {"linkedin.com/in/ada-lovelace"}
    rows = [row(email="jane.doe@acme.com"), row(email="karl@acme.com"),
            row(linkedin_url="https://www.linkedin.com/in/ada-lovelace/")]
    suppressed, _ = await stack.search(rows)
    assert suppressed == 3


# (8) one identifier, one spelling ------------------------------------------------------------


def nfd(value: str) -> str:
    return unicodedata.normalize("NFD", value)


async def test_nfc_and_nfd_and_mexican_mobiles_match_whichever_way_round(
    stack: Stack,
) -> None:
    emails = ["josé@acme.com", nfd("zoë@acme.com")]  # published NFC, NFD
    slugs = [nfd("linkedin.com/in/jürgen-müller"), "linkedin.com/in/renée-roy"]
    phones = ["+52 1 55 1234 5678", "+52 33 1234 5678"]  # with and without the mobile 1
    metas = [await stack.publish("email", emails), await stack.publish("linkedin", slugs),
             await stack.publish("phone", phones)]
    await stack.applied(metas)
    rows = [
        row(email=nfd("josé@acme.com")), row(email="zoë@acme.com"),
        row(linkedin_url="https://linkedin.com/in/jürgen-müller"),
        row(linkedin_url=nfd("https://linkedin.com/in/renée-roy")),
        row(phone="+52 55 1234 5678"), row(phone="+52 1 33 1234 5678"),
        row(email="other@acme.com"),
    ]
    suppressed, doc = await stack.search(rows)
    assert suppressed == 6
    assert [r.get("email") for r in doc["data"] if r.get("email")] == ["other@acme.com"]


# (3) a process whose region is not the store's refuses to start -------------------------------


@pytest.fixture
async def own_db(redis_url: str) -> AsyncIterator[str]:
    """A Redis database of its own: the region recorded here must not leak into other tests."""
    url = f"{redis_url.rstrip('/')}/13"
    client = aioredis.from_url(url)
    await client.delete(region_key())
    try:
        yield url
    finally:
        await client.delete(region_key())
        await client.aclose()


async def test_a_proxy_whose_region_differs_from_the_consumers_store_refuses_to_start(
    own_db: str, kafka_bootstrap: str
) -> None:
    topic = f"rules-{uuid.uuid4().hex[:12]}"
    consume = Settings(redis=own_db, kafka=kafka_bootstrap, topic=topic, group=f"g-{topic}",
                       phone_region="FR", admin_listen="127.0.0.1:0")
    stop = asyncio.Event()
    consumer = asyncio.create_task(server.consume(consume, until=stop.wait))
    recorded = aioredis.from_url(own_db, decode_responses=True)
    try:
        await eventually(lambda: recorded.exists(region_key()), "the consumer to record FR")
        async with fake_upstream() as (_, upstream):
            proxy = Settings(upstream=upstream, redis=own_db, kafka=kafka_bootstrap, topic=topic,
                             consumer=False, phone_region="US")
            with pytest.raises(SettingsError) as refused:
                async with running_proxy(proxy):
                    pass
    finally:
        stop.set()
        await consumer
        await recorded.aclose()
    message = str(refused.value)
    assert message.startswith("phone region US differs from the rule store's FR (set by "
                              "denyproxy consume on ")
    assert message.endswith("; start with --phone-region FR or rebuild the store")
    assert "\n" not in message


async def test_the_cli_prints_the_refusal_on_one_line_and_exits_2(own_db: str) -> None:
    store = RedisStore.from_url(own_db, timeout=5.0)
    try:
        await store.claim_region('{"region": "FR", "by": "denyproxy serve on ops-1"}')
    finally:
        await store.aclose()
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "proxy.cli", "serve", "--redis", own_db, "--phone-region", "US",
         "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--log-level", "error"],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "denyproxy: phone region US differs from the rule store's FR (set by denyproxy serve"
        " on ops-1); start with --phone-region FR or rebuild the store"
    ]
