"""Running the real proxy and the fake upstream inside the test's event loop, on free ports."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from proxy import server
from proxy.settings import Settings
from rules.consumer import RuleConsumer
from rules.store import StoreUnavailableError
from tests.fake_openmart import FakeOpenmart
from tests.services import free_ports


@dataclass
class Running:
    url: str
    admin: str
    settings: Settings
    stop: asyncio.Event


@contextlib.asynccontextmanager
async def fake_upstream(
    fake: FakeOpenmart | None = None, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[tuple[FakeOpenmart, str]]:
    """The fake Openmart on a free port; over TLS (an https URL) with `ssl_context`."""
    fake = fake or FakeOpenmart()
    runner = web.AppRunner(fake.app(), access_log=None)
    await runner.setup()
    (port,) = free_ports(1)
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=ssl_context).start()
    scheme = "https" if ssl_context else "http"
    try:
        yield fake, f"{scheme}://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def running_proxy(settings: Settings, *, init_store: bool = True) -> AsyncIterator[Running]:
    """`denyproxy serve` in this loop: the same code path as the CLI, minus argv and signals.

    With Redis and no Kafka the store is first marked initialised, as an operator's
    `denyproxy store init` would (`init_store=False` leaves that to the test).
    """
    if init_store and settings.redis and not settings.kafka:
        store = server.redis_store(settings)
        try:
            await store.mark_initialised()
        except StoreUnavailableError:
            pass  # a test of an unreachable store: the proxy will find it so too
        finally:
            await store.aclose()
    port, admin_port = free_ports(2)
    settings = settings.with_(listen=f"127.0.0.1:{port}", admin_listen=f"127.0.0.1:{admin_port}")
    stop = asyncio.Event()

    async def until_stopped() -> None:
        await stop.wait()

    task = asyncio.create_task(server.serve(settings, until=until_stopped))
    running = Running(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{admin_port}", settings, stop)
    try:
        await _wait_listening(port, task)
        yield running
    finally:
        stop.set()
        await task


async def _wait_listening(port: int, task: asyncio.Task[None]) -> None:
    for _ in range(200):
        if task.done():
            task.result()
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            await writer.wait_closed()
            return
        except OSError:
            await asyncio.sleep(0.02)
    raise TimeoutError(f"proxy did not listen on {port}")


async def until_ready(
    client: aiohttp.ClientSession, proxy: Running, what: str = "the consumer to be ready",
    timeout: float = 30.0,  # noqa: ASYNC109 - a polling bound
) -> None:
    """Poll the proxy's admin /readyz until it answers 200 (its consumer replayed the topic)."""

    async def ready() -> bool:
        async with client.get(f"{proxy.admin}/readyz") as r:
            return r.status == 200

    await eventually(ready, what, timeout)


async def eventually(
    check: Callable[[], Awaitable[bool] | bool], what: str, timeout: float = 30.0  # noqa: ASYNC109 - a polling bound
) -> None:
    """Poll `check` until it is true; fail naming `what` after `timeout` s (a bound, not a
    measurement: on a loaded box only the failure message waits that long)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if await result if isinstance(result, Awaitable) else result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(0.02)


STOP_BOUND = 30.0
"""Seconds a fixture gives one consumer to stop (RuleConsumer.stop bounds its own wait at 10 s;
the rest is leaving the group and closing producers on a loaded box)."""


async def stop_all(consumers: Sequence[RuleConsumer]) -> None:
    """Stop every consumer a test started, each within STOP_BOUND s, all of them even when one
    fails: a consumer left running in the suite's one event loop writes into later tests'
    Redis and Kafka. The first failure is raised once all were tried."""
    failures: list[BaseException] = []
    for consumer in consumers:
        try:
            async with asyncio.timeout(STOP_BOUND):
                await consumer.stop()
        except Exception as exc:
            failures.append(exc)
    if failures:
        raise failures[0]
