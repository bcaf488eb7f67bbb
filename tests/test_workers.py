"""proxy/workers.py: the supervisor replaces a dead worker and drains all of them on SIGTERM.

Only what can be observed without timing: process ids from /proc and the admin endpoints,
each waited for with a bounded poll.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import aiohttp
import pytest

from rules.store import RedisStore
from tests.harness import eventually, fake_upstream
from tests.test_cli import Proxy, workers_of


@pytest.mark.timeout(180)
async def test_a_killed_worker_is_replaced_and_sigterm_stops_them_all(redis_url: str) -> None:
    store = RedisStore.from_url(redis_url, timeout=2)
    await store.mark_initialised()  # the operator's `denyproxy store init`: a Redis without Kafka
    await store.aclose()
    async with fake_upstream() as (_, upstream), aiohttp.ClientSession() as client:
        proxy = Proxy("--upstream", upstream, "--redis", redis_url, "--workers", "2")
        try:
            await proxy.ready(client)
            await eventually(lambda: len(workers_of(proxy.proc.pid)) == 2, "two workers")
            first = set(workers_of(proxy.proc.pid))
            victim = min(first)
            os.kill(victim, signal.SIGKILL)

            def replaced() -> bool:
                now = set(workers_of(proxy.proc.pid))
                return len(now) == 2 and victim not in now

            await eventually(replaced, "the supervisor to start a new worker")
            assert len(set(workers_of(proxy.proc.pid)) & first) == 1

            async def serving() -> bool:
                async with client.get(f"{proxy.admin}/readyz") as r:
                    return r.status == 200

            await eventually(serving, "readiness with the new worker listening")
            for _ in range(4):
                async with aiohttp.ClientSession() as fresh, fresh.get(
                    f"{proxy.url}/echo/x", headers={"X-API-Key": "k"}
                ) as r:
                    assert r.status == 200
            workers = workers_of(proxy.proc.pid)
            assert proxy.stop() == 0
            # A few stat() calls on /proc after the run; blocking the loop here is harmless.
            assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()]  # noqa: ASYNC240
        finally:
            proxy.stop()
