"""Running the listeners: start, wait for SIGTERM/SIGINT, drain, stop — in that order."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any, TypeVar

from aiohttp import web
from redis.exceptions import RedisError

from proxy.app import Health, create_admin_app, create_app
from proxy.listener import split, start_proxy
from proxy.settings import Settings, SettingsError, kafka_options
from rules.consumer.cancel import cancel_and_wait
from rules.detect import finder
from rules.store import MemoryStore, RedisStore, RuleStore, RuleWriter, StoreUnavailableError
from rules.store.init import InitReport, initialise
from rules.store.region import RegionMismatchError, check_region, recorder
from rules.store.staleness import HeartbeatStore, StalenessGuard

if TYPE_CHECKING:  # imported when a consumer is started: Kafka clients load only if used
    from rules.consumer import RuleConsumer

log = logging.getLogger("denyproxy")
T = TypeVar("T")
INIT_RETRY_FIRST, INIT_RETRY_MAX = 0.5, 10.0  # `--init-store` against a Redis not up yet


def make_store(settings: Settings, *, fed_by_kafka: bool) -> RuleStore:
    """Redis when configured, else the embedded store; every store gates on a marker.

    Without --kafka the Redis store trusts either an operator's `initialised` marker or the
    ready marker of --topic (a `denyproxy consume` elsewhere keeps the Redis).
    """
    if settings.redis:
        return redis_store(settings)
    return MemoryStore(ready=not fed_by_kafka)


def redis_store(settings: Settings) -> RedisStore:
    assert settings.redis is not None
    return RedisStore.from_url(
        settings.redis, timeout=settings.store_timeout, cluster=settings.redis_cluster,
        topic=settings.topic if settings.kafka else None, feeder_topic=settings.topic,
        cache=settings.store_cache,
    )


def refuse_at_start(settings: Settings, command: str) -> None:
    """Configurations that could never apply rules: one line naming the fix (SettingsError).

    proxy/settings.py:check refuses `--workers > 1` and `--kafka --no-consumer` without
    --redis, and SASL without a mechanism; these depend on the command being run.
    """
    if command == "consume" and not (settings.kafka and settings.redis):
        raise SettingsError(
            "consume needs --kafka and --redis: its rules must land in a store proxies read"
        )
    fed = bool(settings.kafka) or bool(settings.redis)
    if settings.max_rule_staleness is not None and not fed:
        raise SettingsError(
            "--max-rule-staleness needs --kafka (or a --redis kept by `denyproxy consume`):"
            " no rule consumer would ever write a heartbeat, so every lookup would fail closed"
        )
    if settings.redis_cluster and not settings.redis:
        raise SettingsError("--redis-cluster needs --redis: the rules would stay in this process")


async def check_store_region(settings: Settings, store: RuleStore, command: str) -> None:
    """Record the phone region on a new Redis store; refuse to run against another region.

    A store that cannot be reached now is not checked (its lookups fail closed anyway).
    """
    if not isinstance(store, RedisStore):
        return
    try:
        await check_region(store, settings.phone_region, recorder(command))
    except RegionMismatchError as exc:
        raise SettingsError(str(exc)) from None
    except StoreUnavailableError as exc:
        log.warning("phone region not checked: store unavailable",
                    extra={"fields": {"error": str(exc)}})


async def init_at_start(settings: Settings, store: RuleStore, stack: AsyncExitStack) -> None:
    """`serve --init-store`: mark a brand-new Redis initialised, never one that holds rules.

    Only at start-up: once running, a lost marker stays lost until `denyproxy store init`. A
    Redis not reachable yet (a sidecar's Redis starting after the proxy) is tried again in the
    background until it answers; lookups fail closed (503) until then.
    """
    if not settings.init_store or settings.kafka or not isinstance(store, RedisStore):
        return
    if await _init_once(store):
        return
    retry = asyncio.create_task(_init_until_reached(store))
    stack.push_async_callback(cancel_and_wait, retry, "the store init retry")


async def _init_once(store: RedisStore) -> bool:
    """One attempt; False when the store could not be reached (the error is logged)."""
    try:
        report = await initialise(store, only_if_empty=True)
    except (StoreUnavailableError, OSError, RedisError) as exc:
        log.error("store init failed", extra={"fields": {"error": type(exc).__name__}})
        return False
    level = logging.WARNING if report.refused or report.initialised else logging.INFO
    log.log(level, "store init", extra={"fields": {"report": str(report)}})
    return True


async def _init_until_reached(store: RedisStore) -> None:
    delay = INIT_RETRY_FIRST
    while True:
        await asyncio.sleep(delay)
        if await _init_once(store):
            return
        delay = min(delay * 2, INIT_RETRY_MAX)


async def store_init(settings: Settings) -> int:
    """`denyproxy store init --redis URL`: report what is there, then mark it initialised.

    Exit code 0 when the marker is (now) there, 1 when initialising was refused.
    """
    store = redis_store(settings.with_(kafka=None))
    try:
        report: InitReport = await initialise(store)
    finally:
        await store.aclose()
    print(f"denyproxy store init: {report}")
    return 1 if report.refused else 0


def run(settings: Settings, main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """asyncio.run of `main()` on the loop --event-loop names."""
    factory = loop_factory(settings.event_loop)
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main())


def loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop when asked for (or, with auto, when installed); None: asyncio's."""
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "auto":
            return None
        raise SettingsError(
            "--event-loop uvloop: uvloop is not installed (pip install 'denyproxy[uvloop]')"
        ) from None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


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
    settings: Settings, stack: AsyncExitStack, *, multiprocess: bool = False,
    command: str = "serve",
) -> Health:
    """The store, the consumer (with --kafka) and the admin listener: one per instance."""
    refuse_at_start(settings, command)
    run_consumer = bool(settings.kafka) and settings.consumer
    store = make_store(settings, fed_by_kafka=run_consumer)
    stack.push_async_callback(store.aclose)
    await check_store_region(settings, store, command)
    await init_at_start(settings, store, stack)
    health = Health(store)
    if run_consumer:
        consumer = await start_consumer(settings, store)
        health.checks.append(lambda: consumer.healthy and consumer.caught_up)
        health.consumer = consumer
        stack.push_async_callback(consumer.stop)
    admin_app = create_admin_app(health, multiprocess=multiprocess, settings=settings)
    admin = await start_site(admin_app, settings.admin_listen, settings)
    stack.push_async_callback(admin.cleanup)
    health.store = guarded(settings, store)
    return health


def guarded(settings: Settings, store: RuleStore) -> RuleStore:
    """With --max-rule-staleness, lookups fail closed once the consumer's heartbeat is too old."""
    if settings.max_rule_staleness is None or not isinstance(store, HeartbeatStore):
        return store
    return StalenessGuard(store, settings.max_rule_staleness)


async def serve(settings: Settings, until: Callable[[], Awaitable[None]] = wait_for_signal) -> None:
    """Proxy + admin (+ consumer). On stop: readiness fails, the listener closes, in-flight
    requests finish (bounded by shutdown_timeout), then the consumer and the store close."""
    async with AsyncExitStack() as stack:
        health = await start_control(settings, stack)
        proxy = await start_proxy(create_app(settings, health.store), settings.listen, settings)
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
        app = create_app(settings, guarded(settings, store))
        proxy = await start_proxy(app, settings.listen, settings)
        on_listening()
        await wait_for_signal()
        await proxy.cleanup()
    finally:
        await store.aclose()


async def start_consumer(settings: Settings, store: RuleStore) -> RuleConsumer:
    from rules.consumer import RuleConsumer

    if not isinstance(store, RuleWriter):
        raise TypeError(f"{type(store).__name__} keeps no consumer offsets")

    consumer = RuleConsumer(
        kafka_options(settings), settings.topic, settings.group, store, settings.phone_region,
        changelog=settings.changelog and store.shared,
    )
    await consumer.start()
    if consumer.changelog.enabled and not settings.redis_cluster:
        _renormalise_in_background(settings)
    return consumer


_BACKGROUND: set[asyncio.Task[object]] = set()


def _renormalise_in_background(settings: Settings) -> None:
    """A normaliser version change found at start-up: a planned rebuild while we serve."""
    from rules.consumer.rebuild import RebuildPlan, renormalise_if_needed

    plan = RebuildPlan(kafka_options(settings), settings.topic, settings.redis or "",
                       region=settings.phone_region)
    task: asyncio.Task[object] = asyncio.create_task(renormalise_if_needed(plan))
    _BACKGROUND.add(task)
    task.add_done_callback(_rebuild_done)


def _rebuild_done(task: asyncio.Task[object]) -> None:
    _BACKGROUND.discard(task)
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.error("planned rebuild failed (the current generation keeps serving): %r", exc)


async def consume(
    settings: Settings, until: Callable[[], Awaitable[None]] = wait_for_signal
) -> None:
    """The consumer alone, with an admin listener: one per deployment writes the shared Redis."""
    async with AsyncExitStack() as stack:
        health = await start_control(settings.with_(consumer=True), stack, command="consume")
        crashed = asyncio.ensure_future(health.consumer.wait())
        stopped = asyncio.ensure_future(until())
        await asyncio.wait((crashed, stopped), return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if crashed.done():
            crashed.result()  # a crashed consumer exits the process non-zero
        crashed.cancel()
