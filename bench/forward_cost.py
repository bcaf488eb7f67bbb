"""CPU µs per filtered 8-contact response around the pipeline, in-process: no sockets.

    .venv/bin/python -m bench.forward_cost [--store redis|memory] [--rounds 5] [--calls 2000]

Issue #11: the server spends ~120 µs more on a filtered 8-contact request than with filtering
off, the pipeline (inspect → filtered → verify_filtered) only ~34 µs of it. This times the rest
step by step, best of `--rounds` rounds of process CPU time: `request` is the front's whole
request (head parsed, edge, Forwarder, the response's bytes); `forwarder`, `filtered` the
parts; then each step of `Forwarder.filtered` alone on the same inputs. The upstream is a
client handing over a response already whole (its body came with its headers, as bench/run's
NGINX sends it) with NGINX's headers; the store is a private Redis with the bench rules,
every lookup answered from the tracked cache (`--store redis`), or the memory store. 16
documents cycled, bench/run's small payload, key `bench-key-0`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import orjson
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from bench.cli import load_redis
from bench.data import KEYS, make_data, make_docs
from proxy import headers, heap, media, respond
from proxy.app import front_serve
from proxy.body import REQUEST_ID, read_body
from proxy.candidates import HeaderIds
from proxy.forward import Forwarder, merged
from proxy.front_head import Head, read_head
from proxy.front_reply import whole
from proxy.incoming import FrontRequest
from proxy.settings import Settings
from proxy.upstream import Upstream, decoded
from proxy.upstream_client import UpstreamClient
from proxy.upstream_response import Response
from rules.catalogue.hits import HitBatch
from rules.catalogue.of import catalogue_of
from rules.detect import company
from rules.detect.match import Policy, query_for
from rules.store import MemoryStore, RedisStore, RuleStore
from tests.services import RedisServer

Step = Callable[[int], Any]
"""One step on the inputs of call i; a coroutine it returns is awaited."""
NGINX_HEADERS = (
    ("Server", "nginx/1.22.1"), ("Date", "Wed, 02 Dec 2026 20:00:00 GMT"),
    ("Content-Type", "application/json"), ("Content-Length", "0"),
    ("Last-Modified", "Wed, 02 Dec 2026 19:59:00 GMT"), ("Connection", "keep-alive"),
    ("ETag", '"6930f4b4-c76"'), ("Accept-Ranges", "bytes"),
)


class _Conn:
    """The upstream connection a whole response arrived on: nothing to pause or abort."""

    def pause(self) -> None: ...
    def resume(self) -> None: ...
    def abort(self) -> None: ...


class _Sink:
    def write(self, data: bytes) -> None: ...
    async def drain(self) -> None: ...


@dataclass
class WholeClient:
    """Stands for UpstreamClient: the document of the path asked for, whole at once."""

    bodies: dict[str, bytes]

    async def request(
        self, method: str, target: str, headers: CIMultiDict[str],
        body: bytes | AsyncIterator[bytes] | None = None,
    ) -> Response:
        return upstream_response(self.bodies[target])


def upstream_response(body: bytes) -> Response:
    fields = CIMultiDict(NGINX_HEADERS)
    fields["Content-Length"] = str(len(body))
    response = Response(_Conn(), 200, CIMultiDictProxy(fields))
    response.feed(body)
    response.finish()
    return response


def request_bytes(path: str, key: str) -> bytes:
    return (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nX-API-Key: {key}\r\n"
            "User-Agent: wrk\r\n\r\n").encode("ascii")


def front_request(raw: bytes) -> FrontRequest:
    head = read_head(bytearray(raw), ("/admin",), 1 << 24)
    assert isinstance(head, Head), head
    return FrontRequest(head.method, head.raw_path, head.headers, b"", head.content_length,
                        remote="127.0.0.1", keep_alive=head.keep_alive, sink=_Sink())


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def best(
    step: Step, calls: int, rounds: int
) -> float:
    """Best µs per call over `rounds` rounds of `calls` calls (the call's index given)."""
    figures = []
    for _ in range(rounds):
        started = cpu()
        for i in range(calls):
            out = step(i)
            if asyncio.iscoroutine(out):
                await out
        figures.append((cpu() - started) / calls * 1e6)
    return min(figures)


@contextlib.asynccontextmanager
async def store_of(kind: str, work: Path) -> AsyncIterator[RuleStore]:
    data = make_data(work, 0, 0)
    if kind == "memory":
        memory = MemoryStore(ready=True)
        await memory.apply(data.changes)
        yield memory
        return
    server = RedisServer(work / "redis")
    server.start()
    try:
        await load_redis(server.url, data.changes, [])
        store = RedisStore.from_url(server.url, timeout=2.0, cache=True)
        try:
            yield store
        finally:
            await store.aclose()
    finally:
        server.stop()


async def measure(kind: str, calls: int, rounds: int, only: str) -> None:
    docs, small, *_ = make_docs(0)
    bodies = {path: orjson.dumps(docs[path]) for path in small}
    with tempfile.TemporaryDirectory(prefix="forward-cost-") as work:
        async with store_of(kind, Path(work)) as store:
            hits = HitBatch(catalogue_of(store), interval=3600.0)
            filtering, exempt = (
                Forwarder(settings, Upstream.parse(settings.upstream),
                          cast(UpstreamClient, WholeClient(bodies)), store, hits)
                for settings in (Settings(upstream="http://127.0.0.1:1"),
                                 Settings(upstream="http://127.0.0.1:1", exempt_paths=("/api",))))
            heap.settle()  # the collector as `serve` sets it (its by-the-clock runs aside)
            await report(filtering, exempt, bodies, calls, rounds, only)


@dataclass
class Fixture:
    """What the steps share: the forwarders, the bodies and the requests, and each body's
    plan, query, answer and result worked out once."""

    forwarder: Forwarder
    exempt: Forwarder
    raws: list[bytes]
    requests: list[FrontRequest]
    body: dict[int, bytes]
    label: media.Label
    out_headers: CIMultiDict[str]
    plans: list[respond.Plan]
    queries: list[Any]
    answers: list[Any]
    results: list[Any]


async def fixture(forwarder: Forwarder, exempt: Forwarder, bodies: dict[str, bytes]) -> Fixture:
    region, paths = forwarder.settings.phone_region, list(bodies)
    raws = [request_bytes(path, KEYS[0]) for path in paths]
    requests = [front_request(raw) for raw in raws]
    for request in requests:  # the id the edge sets, the tenant and campaign the filter reads
        request[REQUEST_ID] = "bench"
        await forwarder.send(request, forwarder.upstream.join(request.raw_path))
    label = media.Label.of(upstream_response(bodies[paths[0]]).headers)
    body = {i: bodies[p] for i, p in enumerate(paths)}
    out_headers = headers.client_response(upstream_response(b"").headers, rewritten=False)
    plans = [respond.plan_for(media.BodyKind.JSON, body[i], label, region) for i in body]
    found = HeaderIds.of(out_headers, region)
    queries = [merged(p.query(), query_for(found.identifiers())) for p in plans]
    answers = [await forwarder.lookup(requests[i], queries[i]) for i in body]
    policy = cast(Policy, forwarder.settings.policy)
    results = [p.filtered(answers[i], policy) for i, p in enumerate(plans)]
    return Fixture(forwarder, exempt, raws, requests, body, label, out_headers, plans, queries,
                   answers, results)


def request_steps(f: Fixture) -> list[tuple[str, Step]]:
    """The whole request, and what the Forwarder does before the body is read."""
    serve, serve_exempt, n = front_serve(f.forwarder), front_serve(f.exempt), len(f.raws)

    async def whole_request(i: int) -> None:
        whole(cast(Any, await serve(front_request(f.raws[i % n]))), True)

    async def exempt_request(i: int) -> None:
        whole(cast(Any, await serve_exempt(front_request(f.raws[i % n]))), True)

    async def forwarder_call(i: int) -> None:
        await f.forwarder(f.requests[i % n])

    async def filtered(i: int) -> None:
        await f.forwarder.filtered(f.requests[i % n], upstream_response(f.body[i % n]), f.label)

    async def read(i: int) -> None:
        await read_body(upstream_response(f.body[i % n]), f.forwarder.settings)

    return [
        ("request (front head → edge → Forwarder → bytes)", whole_request),
        ("request, filtering off (--exempt-paths /api)", exempt_request),
        ("Forwarder.__call__", forwarder_call),
        ("Forwarder.filtered", filtered),
        ("upstream_response (the harness's own)", lambda i: upstream_response(f.body[i % n])),
        ("front_request (read_head, FrontRequest)", lambda i: front_request(f.raws[i % n])),
        ("send (headers out, tenant)", lambda i: _send(f.forwarder, f.requests[i % n])),
        ("read_body", read),
    ]


def body_steps(f: Fixture) -> list[tuple[str, Step]]:
    """From the body read to the plan and the query."""
    settings, n = f.forwarder.settings, len(f.raws)
    region = settings.phone_region
    found = HeaderIds.of(f.out_headers, region)
    return [
        ("decoded", lambda i: decoded(f.body[i % n], "", settings.max_filter_body)),
        ("media.classify", lambda i: media.classify(f.label, f.body[i % n],
                                                    settings.binary_types)),
        ("Label.of", lambda i: media.Label.of(upstream_response(b"").headers)),
        ("headers.client_response", lambda i: headers.client_response(
            upstream_response(b"").headers, rewritten=False)),
        ("headers.private", lambda i: headers.private(f.out_headers.copy())),
        ("HeaderIds.of", lambda i: HeaderIds.of(f.out_headers, region)),
        ("plan_for (pipeline.inspect + rendered)", lambda i: respond.plan_for(
            media.BodyKind.JSON, f.body[i % n], f.label, region)),
        ("plan.query + merged", lambda i: merged(f.plans[i % n].query(),
                                                 query_for(found.identifiers()))),
    ]


def answer_steps(f: Fixture, calls: int) -> list[tuple[str, Step]]:
    """The lookup and what follows it, to the response's bytes."""
    forwarder, n = f.forwarder, len(f.raws)
    settings, region = forwarder.settings, forwarder.settings.phone_region
    fresh = [[{t: {v.encode().decode() for v in vs} for t, vs in q.items()} for q in f.queries]
             for _ in range(calls // n + 1)]

    async def lookup(i: int) -> None:
        await forwarder.lookup(f.requests[i % n], f.queries[i % n])

    async def lookup_fresh(i: int) -> None:
        await forwarder.lookup(f.requests[i % n], fresh[i // n][i % n])

    async def verified(i: int) -> None:
        j = i % n
        verdict = f.plans[j].verify(f.results[j], region, f.answers[j], f.queries[j])
        await forwarder.verified(f.requests[j], None, f.answers[j], f.queries[j], verdict)

    return [
        ("lookup", lookup),
        ("lookup, a query of fresh strings", lookup_fresh),
        ("company.answer_for", lambda i: company.answer_for(
            f.answers[i % n], settings.company_name_only_match)),
        ("counted", lambda i: forwarder.counted(f.requests[i % n], f.answers[i % n])),
        ("plan.filtered", lambda i: f.plans[i % n].filtered(
            f.answers[i % n], cast(Policy, settings.policy))),
        ("plan.verify + verified", verified),
        ("web.Response", lambda i: _response(f.results[i % n].body, f.out_headers)),
        ("web.Response + whole (its bytes)", lambda i: whole(
            _response(f.results[i % n].body, f.out_headers), True)),
    ]


async def report(
    forwarder: Forwarder, exempt: Forwarder, bodies: dict[str, bytes], calls: int, rounds: int,
    only: str,
) -> None:
    """Each step's figure; `only`: the steps whose name holds it."""
    f = await fixture(forwarder, exempt, bodies)
    for name, step in [*request_steps(f), *body_steps(f), *answer_steps(f, calls)]:
        if only not in name:
            continue
        for _ in range(2):  # warm: caches filled, the tracked answers in
            await best(step, min(calls, 200), 1)
        print(f"{await best(step, calls, rounds):8.1f} µs  {name}", flush=True)


def _send(forwarder: Forwarder, request: FrontRequest) -> Awaitable[None]:
    async def sent() -> None:
        (await forwarder.send(request, forwarder.upstream.join(request.raw_path))).release()
    return sent()


def _response(body: bytes, out_headers: CIMultiDict[str]) -> web.Response:
    return web.Response(status=200, body=body, headers=out_headers.copy())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", default="redis", choices=("redis", "memory"))
    p.add_argument("--calls", type=int, default=2000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--only", default="", help="the steps whose name holds this")
    a = p.parse_args()
    asyncio.run(measure(a.store, a.calls, a.rounds, a.only))


if __name__ == "__main__":
    main()
