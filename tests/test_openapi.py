"""proxy/openapi.json: served on the admin port, and schemathesis finds nothing against a live
proxy (real Redis): no 5xx, statuses, content types and bodies as documented."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from proxy.settings import Settings
from tests.harness import fake_upstream, running_proxy

DOCUMENT = Path(__file__).parent.parent / "proxy" / "openapi.json"
schema = schemathesis.openapi.from_path(DOCUMENT).include(path_regex="^/api/")
API_KEY = f"om_{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def live_proxy(redis_url: str) -> Iterator[str]:
    """The proxy in a thread of its own (schemathesis calls it synchronously)."""
    started: dict[str, str] = {}
    ready, done = threading.Event(), threading.Event()

    async def run() -> None:
        async with fake_upstream() as (_, upstream):
            settings = Settings(upstream=upstream, redis=redis_url, rule_writes_per_minute=10**6)
            async with running_proxy(settings) as proxy:
                started["url"] = proxy.url
                ready.set()
                await asyncio.to_thread(done.wait)

    thread = threading.Thread(target=asyncio.run, args=(run(),), daemon=True)
    thread.start()
    assert ready.wait(30), "the proxy did not start"
    yield started["url"]
    done.set()
    thread.join(30)


async def test_the_document_is_served_on_the_admin_port(redis_url: str) -> None:
    async with fake_upstream() as (_, upstream):
        settings = Settings(upstream=upstream, redis=redis_url)
        async with running_proxy(settings) as proxy, aiohttp.ClientSession() as client:
            served = await (await client.get(f"{proxy.admin}/openapi.json")).json()
    assert served == json.loads(DOCUMENT.read_text())
    assert served["openapi"].startswith("3.1")


OPERATIONS = [result.ok() for result in schema.get_all_operations()]


# One test per operation, named by it (schemathesis' own `parametrize` gives all of them one
# node id, which pytest-xdist collapses into one).
@pytest.mark.parametrize("operation", OPERATIONS, ids=[op.label for op in OPERATIONS])
def test_the_api_keeps_its_documented_contract(operation: APIOperation, live_proxy: str) -> None:
    @given(case=operation.as_strategy())
    @settings(suppress_health_check=list(HealthCheck))
    def conforms(case: schemathesis.Case) -> None:
        response = case.call(base_url=live_proxy, headers={"X-API-Key": API_KEY})
        assert response.status_code < 500, response.text
        case.validate_response(response, checks=(
            status_code_conformance, content_type_conformance, response_schema_conformance,
        ))

    conforms()
