"""`denyproxy rules list|export` against a real Redis: the same records as the API shows."""

from __future__ import annotations

import asyncio
import csv
import io
import time
import uuid

import orjson
import pytest

from proxy.cli import main
from rules.model import ChangeMeta, RuleChange, RuleType
from rules.store import RedisStore


def seed(redis_url: str, tenant: str) -> None:
    async def work() -> None:
        store = RedisStore.from_url(redis_url, timeout=5)
        await store.mark_initialised()
        meta = ChangeMeta(time.time(), "crm-sync", reason="opt-out")
        await store.apply([
            RuleChange("add", tenant, RuleType.EMAIL, ("b@acme.com", "a@acme.com"), meta),
            RuleChange("add", tenant, RuleType.PHONE, ("+15125551000",), meta),
        ])
        await store.aclose()

    asyncio.run(work())


def test_list_and_export_print_the_tenants_records(redis_url, capsys: pytest.CaptureFixture[str]):
    tenant = uuid.uuid4().hex * 2
    seed(redis_url, tenant)
    args = ["rules", "list", "--tenant", tenant, "--redis", redis_url]
    assert main([*args, "--type", "email", "--sort-by", "value", "--sort-order", "asc"]) == 0
    body = orjson.loads(capsys.readouterr().out)
    assert [r["value"] for r in body["data"]] == ["a@acme.com", "b@acme.com"]
    assert body["total"] == 2 and body["data"][0]["reason"] == "opt-out"
    assert main(["rules", "export", "--tenant", tenant, "--redis", redis_url,
                 "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert sorted(r["value"] for r in rows) == ["+15125551000", "a@acme.com", "b@acme.com"]
    assert {r["source"] for r in rows} == {"crm-sync"}
