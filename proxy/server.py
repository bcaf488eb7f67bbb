"""Running the listeners: start, wait for SIGTERM/SIGINT, drain, stop — in that order."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack

from aiohttp import web

from proxy.app import Health, create_admin_app, create_app
from proxy.settings import Settings, kafka_options
from rules import finder
from rules.store import MemoryStore, RedisStore, RuleStore, RuleWriter

log = logging.getLogger("denyproxy")


def make_store(settings: Settings, *, fed_by_kafka: bool) -> RuleStore:
    """Redis when configured, else the embedded store; Kafka-fed stores gate on readiness."""
    topic = settings.topic if settings.kafka else None
    if settings.redis:
        return RedisStore.from_url(
            settings.redis, timeout=settings.store_timeout, topic=topic,
            cluster=settings.redis_cluster,
        )
    return MemoryStore(ready=not fed_by_kafka)


def split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


async def start_site(app: web.Application, address: str, settings: Settings) -> web.AppRunner:
    runner = web.AppRunner(
        app, handle_signals=False, access_log=None, shutdown_timeout=settings.shutdown_timeout
    )
    await runner.setup()
    host, port = split(address)
    await web.TCPSite(runner, host, port, reuse_port=settings.workers > 1).start()
    return runner


async def wait_for_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def start_control(
    settings: Settings, stack: AsyncExitStack, *, multiprocess: bool = False
) -> Health:
    """The store, the consumer (with --kafka) and the admin listener: one per instance."""
    run_consumer = bool(settings.kafka) and settings.consumer
    store = make_store(settings, fed_by_kafka=run_consumer)
    stack.push_async_callback(store.aclose)
    health = Health(store)
    if run_consumer:
        consumer = await start_consumer(settings, store)
        health.checks.append(lambda: consumer.healthy and consumer.caught_up)
        health.consumer = consumer
        stack.push_async_callback(consumer.stop)
    admin_app = create_admin_app(health, multiprocess=multiprocess)
    admin = await start_site(admin_app, settings.admin_listen, settings)
    stack.push_async_callback(admin.cleanup)
    health.store = store
    return health


async def serve(settings: Settings, until: Callable[[], Awaitable[None]] = wait_for_signal) -> None:
    """Proxy + admin (+ consumer). On stop: readiness fails, the listener closes, in-flight
    requests finish (bounded by shutdown_timeout), then the consumer and the store close."""
    async with AsyncExitStack() as stack:
        health = await start_control(settings, stack)
        proxy = await start_site(create_app(settings, health.store), settings.listen, settings)
        log.info("listening", extra={"fields": {"listen": settings.listen,
                                                 "admin": settings.admin_listen,
                                                 "scanner": finder.announce()}})
        await until()
        health.draining = True
        log.info("draining", extra={"fields": {"timeout_s": settings.shutdown_timeout}})
        await proxy.cleanup()


async def serve_proxy(settings: Settings, on_listening: Callable[[], None]) -> None:
    """A worker of `serve --workers N`: the proxy listener with its own pools, nothing else."""
    store = make_store(settings, fed_by_kafka=False)
    try:
        proxy = await start_site(create_app(settings, store), settings.listen, settings)
        on_listening()
        await wait_for_signal()
        await proxy.cleanup()
    finally:
        await store.aclose()


async def start_consumer(settings: Settings, store: RuleStore):  # type: ignore[no-untyped-def]
    from rules.consumer import RuleConsumer

    if not isinstance(store, RuleWriter):
        raise TypeError(f"{type(store).__name__} keeps no consumer offsets")

    consumer = RuleConsumer(
        kafka_options(settings), settings.topic, settings.group, store, settings.phone_region
    )
    await consumer.start()
    return consumer


async def consume(settings: Settings, until: Callable[[], Awaitable[None]] = wait_for_signal) -> None:
    """The consumer alone, with an admin listener: one per deployment writes the shared Redis."""
    async with AsyncExitStack() as stack:
        health = await start_control(settings.with_(consumer=True), stack)
        crashed = asyncio.ensure_future(health.consumer.wait())
        stopped = asyncio.ensure_future(until())
        await asyncio.wait((crashed, stopped), return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if crashed.done():
            crashed.result()  # a crashed consumer exits the process non-zero
        crashed.cancel()
