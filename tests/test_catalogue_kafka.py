"""The catalogue fed by Kafka (real broker, real Redis): records made by the API, by v1 and by
v2 events show the same fields; deletes go as events; a rebuild gives the same catalogue."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from proxy.settings import Settings
from rules.kafka import KafkaOptions
from rules.model import DEFAULT_REGION, ChangeMeta, RuleType, tenant_of
from rules.publisher import RulePublisher
from tests.harness import eventually, fake_upstream, running_proxy, until_ready
from tests.test_catalogue import FIELDS, PATH, add, get, listing
from tests.test_import import run_cli
from tests.test_rules_api import call, key

REPLAYED = ("id", "type", "value", "scope", "reason", "source", "event_id", "created_at",
            "updated_at", "expires_at")
"""What a rebuild from the topic must reproduce (enforced_at and counts are the store's own)."""


def replayable(page: dict[str, Any]) -> list[dict[str, Any]]:
    return [{f: r[f] for f in REPLAYED} for r in page["data"]]


async def test_api_v1_and_v2_events_make_the_same_records_and_a_rebuild_repeats_them(
    flushable_redis_url, kafka_bootstrap
):
    topic = f"catalogue-{uuid.uuid4().hex[:8]}"
    api_key, options = key(), KafkaOptions(kafka_bootstrap)
    tenant = tenant_of(api_key)
    async with fake_upstream() as (_, upstream):
        settings = Settings(upstream=upstream, redis=flushable_redis_url, kafka=kafka_bootstrap,
                            topic=topic, group=f"g-{topic}")
        async with running_proxy(settings) as proxy, aiohttp.ClientSession() as client:
            await until_ready(client, proxy)
            await add(client, proxy.url, api_key, "email", ["api@acme.com"], reason="by api")
            async with RulePublisher(options, topic, region=DEFAULT_REGION) as publisher:
                await publisher.publish("add", tenant, RuleType.EMAIL, ["v1@acme.com"],
                                        source="crm-sync")
                meta = ChangeMeta(time.time(), reason="by v2", expires_at=time.time() + 3600)
                await publisher.publish("add", tenant, RuleType.EMAIL, ["v2@acme.com"],
                                        source="crm-sync", meta=meta)

                async def three() -> bool:
                    return len((await listing(client, proxy.url, api_key))["data"]) == 3

                await eventually(three, "both events to be applied")
                page = await listing(client, proxy.url, api_key, "sort_by=value&sort_order=asc")
                by_value = {r["value"]: r for r in page["data"]}
                assert all(set(r) == FIELDS for r in page["data"])
                assert by_value["api@acme.com"]["reason"] == "by api"
                assert by_value["v1@acme.com"]["reason"] is None
                assert by_value["v1@acme.com"]["source"] == "crm-sync"
                assert by_value["v2@acme.com"]["reason"] == "by v2"
                assert by_value["v2@acme.com"]["expires_at"] is not None
                assert all(r["event_id"] for r in page["data"])

                status, _ = await call(client, "DELETE",
                                       f"{proxy.url}{PATH}/{by_value['v1@acme.com']['id']}",
                                       api_key, b"")
                assert status == 200  # answered once the consumer applied the remove event
                before = replayable(await listing(client, proxy.url, api_key))
                assert [r["value"] for r in before] == ["v2@acme.com", "api@acme.com"]

                redis = aioredis.from_url(flushable_redis_url)
                await redis.flushall()
                await redis.aclose()
                await publisher.publish("add", tenant, RuleType.PHONE, ["+15125551000"])

                async def rebuilt() -> bool:
                    status, page = await get(client, f"{proxy.url}{PATH}?type=email", api_key)
                    return status == 200 and replayable(page) == before

                await eventually(rebuilt, "the rebuild to repeat the catalogue", timeout=60)


async def test_cli_add_and_import_make_records_with_the_api_s_fields(
    redis_url, kafka_bootstrap, tmp_path
):
    topic = f"catalogue-cli-{uuid.uuid4().hex[:8]}"
    api_key = key()
    key_file = tmp_path / "key"
    key_file.write_text(api_key)
    csv = tmp_path / "optouts.csv"
    csv.write_text("email\nimport1@acme.com\nIMPORT2@acme.com\n")
    later = datetime.fromtimestamp(time.time() + 7200, UTC).isoformat()
    common = ("--api-key-file", str(key_file), "--kafka", kafka_bootstrap, "--topic", topic)
    async with fake_upstream() as (_, upstream):
        settings = Settings(upstream=upstream, redis=redis_url, kafka=kafka_bootstrap,
                            topic=topic, group=f"g-{topic}")
        async with running_proxy(settings) as proxy, aiohttp.ClientSession() as client:
            await add(client, proxy.url, api_key, "email", ["api@acme.com"], reason="by api",
                      ttl_seconds=3600)
            assert await run_cli("import", *common, str(csv), "--column", "email",
                                 "--reason", "by import", "--ttl-seconds", "3600",
                                 "--source", "crm-export", "--no-progress") == 0
            assert await run_cli("add", *common, "--type", "email", "cli@acme.com",
                                 "--reason", "by cli", "--expires-at", later) == 0

            async def four() -> bool:
                status, page = await get(client, f"{proxy.url}{PATH}", api_key)
                return status == 200 and len(page["data"]) == 4

            await eventually(four, "the CLI's events to be applied")
            page = await listing(client, proxy.url, api_key, "sort_by=value&sort_order=asc")
    by_value = {r["value"]: r for r in page["data"]}
    assert all(set(r) == FIELDS for r in page["data"])
    filled = {v: {f for f, x in r.items() if x is not None} for v, r in by_value.items()}
    assert filled["import1@acme.com"] == filled["cli@acme.com"] == filled["api@acme.com"]
    assert by_value["import2@acme.com"]["reason"] == "by import"
    assert by_value["import2@acme.com"]["source"] == "crm-export"
    assert by_value["cli@acme.com"]["reason"] == "by cli"
    assert by_value["cli@acme.com"]["source"] != by_value["api@acme.com"]["source"]
    assert _seconds(by_value["cli@acme.com"]["expires_at"]) == pytest.approx(
        datetime.fromisoformat(later).timestamp(), abs=1)
    assert _seconds(by_value["import1@acme.com"]["expires_at"]) == pytest.approx(
        time.time() + 3600, abs=120)


async def test_the_cli_refuses_a_bad_reason_or_expiry_before_publishing(
    kafka_bootstrap, tmp_path, capsys
):
    common = ("--tenant", "a" * 64, "--kafka", kafka_bootstrap, "--topic", "never-created")
    past = datetime.fromtimestamp(time.time() - 60, UTC).isoformat()
    assert await run_cli("add", *common, "--type", "email", "x@acme.com", "--expires-at",
                         past) == 2
    assert "expires_at must be in the future" in capsys.readouterr().err
    assert await run_cli("add", *common, "--type", "email", "x@acme.com", "--reason",
                         "r" * 501) == 2
    assert "at most 500 characters" in capsys.readouterr().err
    csv = tmp_path / "x.csv"
    csv.write_text("x@acme.com\n")
    assert await run_cli("import", *common, str(csv), "--remove", "--reason", "why") == 2
    assert "are for adds" in capsys.readouterr().err


def _seconds(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
