"""The applications: the proxy listener and the admin listener, built once from Settings."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from proxy import deny_lists, metrics, preflight
from proxy.admin_api import AdminApi, admin_token
from proxy.admin_lists import ListAdmin
from proxy.catalogue_api import CATALOGUE_API, CatalogueApi
from proxy.catalogue_api import ROUTES as CATALOGUE_ROUTES
from proxy.errors import ProxyError
from proxy.forward import REQUEST_ID, STREAMING, SUPPRESSED, Forwarder, logged_tenant
from proxy.front_head import api_prefixes
from proxy.incoming import FrontRequest, Incoming
from proxy.logs import route_template, scrub
from proxy.rules_api import ROUTES as RULES_ROUTES
from proxy.rules_api import RULES_API, RulesApi
from proxy.settings import Settings, kafka_options
from proxy.upstream import Upstream, upstream_client
from rules.catalogue.hits import HitBatch
from rules.catalogue.of import catalogue_of
from rules.consumer.cancel import cancel_and_wait
from rules.store import RuleStore
from rules.store.staleness import StalenessGuard

if TYPE_CHECKING:  # imported when a publisher is started: Kafka clients load only if used
    from rules.publisher import RulePublisher

log = logging.getLogger("denyproxy.access")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_ID_PREFIX = os.urandom(6).hex()  # generated ids: unique per process, then a counter
_ids = itertools.count(1)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
R = TypeVar("R", bound=Incoming)
CATCH_ALL = "/{tail:.*}"


@dataclass(slots=True)
class Health:
    """What readiness depends on; the server flips `draining` first on SIGTERM."""

    store: RuleStore
    draining: bool = False
    checks: list[Callable[[], bool]] = field(default_factory=list)
    consumer: Any = None  # rules.consumer.RuleConsumer when this process runs one

    async def ready(self) -> tuple[bool, str]:
        if self.draining:
            return False, "draining"
        stall = self.consumer.stall() if self.consumer is not None else None
        if not all(check() for check in self.checks):
            return False, stall or "rule consumer not running"
        if isinstance(self.store, StalenessGuard) and (stale := await self.store.stale()):
            return False, stale
        if not await self.store.ready():
            return False, "suppression store unavailable or still loading rules"
        return True, f"ready; {stall}" if stall else "ready"


FORWARDER = web.AppKey("forwarder", Forwarder)
HEALTH = web.AppKey("health", Health)


def error_response(status: int, detail: str) -> web.Response:
    return web.json_response({"detail": detail}, status=status)


def _error_of(exc: Exception, request_id: str) -> web.Response:
    if isinstance(exc, ProxyError):
        return error_response(exc.status, exc.detail)
    if isinstance(exc, web.HTTPException):
        return error_response(exc.status, exc.reason)
    log.exception("unhandled", extra={"fields": {"request_id": request_id}})
    return error_response(500, "internal error")


def edged(handler: Handler) -> Handler:
    """`handler` behind the edge. Every route of the proxy listener is wrapped so, instead of
    one middleware: aiohttp's middleware chain (two more coroutine frames and a lookup per
    request) cost every forwarded request."""

    async def edged_handler(request: web.Request) -> web.StreamResponse:
        return await edge(request, handler)

    return edged_handler


def edged_routes(routes: Iterable[web.RouteDef]) -> list[web.RouteDef]:
    return [web.RouteDef(r.method, r.path, edged(r.handler), r.kwargs) for r in routes]


async def edge(
    request: R, handler: Callable[[R], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Request id, errors mapped to JSON once, one access line, request metrics: for aiohttp's
    routes and the front's requests alike."""
    request_id = request.headers.get("X-Request-Id", "")
    if not request_id or not _REQUEST_ID.fullmatch(request_id) or scrub(request_id) != request_id:
        request_id = f"{_ID_PREFIX}{next(_ids):x}"
    request[REQUEST_ID] = request_id
    started = time.perf_counter()
    try:
        response = await handler(request)
    except Exception as exc:
        if request.get(STREAMING):
            raise  # the status line is out: aiohttp can only close the connection mid-body
        response = _error_of(exc, request_id)
    if not response.prepared:  # a streamed response got it before its headers went out
        response.headers["X-Request-Id"] = request_id
    metrics.requests_counter(request.method, response.status).inc()
    if not log.isEnabledFor(logging.INFO):
        return response
    log.info(
        "request",
        extra={
            "fields": {
                "request_id": request_id,
                "method": request.method,
                "route": route_template(request.path),
                "status": response.status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                "tenant": logged_tenant(request)[:8],
                "suppressed": request.get(SUPPRESSED, 0),
            }
        },
    )
    return response


def create_app(settings: Settings, store: RuleStore) -> web.Application:
    """The proxy listener: everything not served here goes to the upstream."""
    app = web.Application(client_max_size=settings.max_request_body)

    async def resources(app: web.Application) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            upstream = Upstream.parse(settings.upstream)
            client = upstream_client(settings, upstream)
            stack.callback(client.close)
            catalogue = catalogue_of(store)
            hits = HitBatch(catalogue)
            flusher = asyncio.create_task(hits.run())
            stack.push_async_callback(_stop, flusher)
            app[FORWARDER] = Forwarder(settings, upstream, client, store, hits)
            publisher = await start_publisher(settings, stack) if settings.kafka else None
            app[RULES_API] = RulesApi(app[FORWARDER], publisher)
            app[CATALOGUE_API] = CatalogueApi(app[RULES_API], catalogue)
            yield

    async def forward(request: web.Request) -> web.StreamResponse:
        return await request.app[FORWARDER](request)

    async def submit(request: web.Request) -> web.StreamResponse:
        return await preflight.submit(request, request.app[FORWARDER])

    app.cleanup_ctx.append(resources)
    app[deny_lists.LISTS_STORE], app[deny_lists.TIMEOUT] = store, settings.store_timeout
    app.router.add_routes(edged_routes([*deny_lists.ROUTES, *RULES_ROUTES, *CATALOGUE_ROUTES]))
    if settings.company_preflight:
        app.router.add_post(preflight.SUBMIT, edged(submit))
    app.router.add_route("*", CATCH_ALL, edged(forward))
    return app


def front_serve(forwarder: Forwarder) -> Callable[[FrontRequest], Awaitable[web.StreamResponse]]:
    """What the front (proxy/front.py) runs for a plain request: the catch-all route's work,
    with the body it read."""

    async def forward(request: FrontRequest) -> web.StreamResponse:
        return await forwarder(request, request.body or None)

    async def serve(request: FrontRequest) -> web.StreamResponse:
        return await edge(request, forward)

    return serve


def own_prefixes(app: web.Application) -> tuple[str, ...]:
    """The path prefixes of the proxy listener's own routes (the front hands them to aiohttp)."""
    canonicals = [resource.canonical for resource in app.router.resources()]
    return api_prefixes(canonicals, CATCH_ALL.replace(":.*", ""))


async def _stop(task: asyncio.Task[None]) -> None:
    """Cancel the counter's flusher (again, if a Redis call swallowed it: cancel.py says why);
    it flushes once more on its way out."""
    await cancel_and_wait(task, "the suppression counter's flusher")


async def start_publisher(settings: Settings, stack: AsyncExitStack) -> RulePublisher:
    from rules.publisher import RulePublisher

    publisher = RulePublisher(kafka_options(settings), settings.topic, region=settings.phone_region)
    await publisher.start()
    stack.push_async_callback(publisher.stop)
    return publisher


def multiprocess_registry() -> CollectorRegistry:
    """A registry that reads every worker's samples from prometheus-client's files."""
    registry = CollectorRegistry()
    # prometheus-client leaves MultiProcessCollector.__init__ unannotated (no types to check)
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def create_admin_app(
    health: Health, *, multiprocess: bool = False, settings: Settings | None = None
) -> web.Application:
    """The admin listener, on its own port so it never shadows an upstream path; with
    `settings` that configure an admin token, the admin API of named lists too."""
    app = web.Application(client_max_size=settings.max_request_body if settings else 1024**2)
    if settings is not None and (token := admin_token(settings)) is not None:
        add_admin_api(app, settings, health.store, token)
    app[HEALTH] = health
    registry = REGISTRY
    if multiprocess:  # every worker's samples, summed from prometheus-client's files
        registry = multiprocess_registry()

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    async def readyz(request: web.Request) -> web.Response:
        ok, why = await request.app[HEALTH].ready()
        metrics.READINESS.observe(ok)
        return web.json_response({"status": why}, status=200 if ok else 503)

    async def metrics_(request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_)
    app.router.add_get("/openapi.json", openapi)
    return app


def add_admin_api(app: web.Application, settings: Settings, store: RuleStore, token: str) -> None:
    """The admin API's routes; with Kafka its publisher starts and stops with the app."""
    lists = ListAdmin(store, catalogue_of(store), None, settings.rule_wait_timeout)
    app.router.add_routes(AdminApi(token.encode(), lists, settings.phone_region).routes())

    async def publisher(app: web.Application) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            lists.publisher = await start_publisher(settings, stack)
            yield

    if settings.kafka:
        app.cleanup_ctx.append(publisher)


OPENAPI = Path(__file__).with_name("openapi.json")
"""The OpenAPI 3.1 document of every HTTP API the proxy serves (kept in the repository)."""


async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=OPENAPI.read_bytes(), content_type="application/json")
