"""CPU µs (process time) per `RedisStore.lookup`, in-process, against a private redis-server,
and the server's own µs per lookup script call (INFO commandstats, usec_per_call).

    .venv/bin/python bench/lookup_cost.py [--calls 4000] [--rounds 5] [--filler 0] [--hits 1]
                                          [--unix] [--cache] [--distinct 4096]

One key tenant with named lists (so a lookup is the lookup script and the GET of the key's
assignments version), 24 values (10 emails, 10 phones, 4 LinkedIn profiles), `--hits` of them
denied (spread over the types), `--filler` more rules per type in the key's scope and in the
global one (bench/run's sets hold 100,000: hash tables, not the small sets' listpacks).
Concurrency 1 (one lookup after the other) and 16 (16 tasks, each its share of the calls). The
figure is the best of `--rounds` rounds of process CPU time over the calls (a shared box's other
processes do not count), its user part (the Python side, without the kernel's socket work)
and the wall µs per call beside it; the server's usec_per_call of EVALSHA_RO and the
redis-server process's CPU per lookup (INFO cpu: its socket work and event loop too).
`--unix`: the same again over the server's unix socket. `--distinct N`: the lookups cycle
through N queries of the same shape whose values never repeat among them, over all rounds
(bench/run's cold-cache payload is 4,096 documents; with `--cache`, 16,384 x 24 values in two
scopes is more than the cache holds: every lookup a miss, filling and churning it).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import redis.asyncio as aioredis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# E402 below: the imports need the repo root on sys.path first (run as a script)
from rules.model import GLOBAL, Lookup, RuleChange, RuleType, tenant_of  # noqa: E402
from rules.store import RedisStore  # noqa: E402
from tests.services import RedisServer  # noqa: E402

TENANT = tenant_of("om_lookup_cost")
QUERY: Lookup = {
    RuleType.EMAIL: {f"u{i}@x.example" for i in range(10)},
    RuleType.PHONE: {f"+1555000{i:04d}" for i in range(10)},
    RuleType.LINKEDIN: {f"/in/p{i}" for i in range(4)},
}
SCRIPT_STAT = "cmdstat_evalsha_ro"


def distinct_queries(count: int) -> list[Lookup]:
    """`count` queries shaped like QUERY, no value in two of them (none of them denied)."""
    return [{RuleType.EMAIL: {f"d{n}-{i}@x.example" for i in range(10)},
             RuleType.PHONE: {f"+1556{n:06d}{i}" for i in range(10)},
             RuleType.LINKEDIN: {f"/in/d{n}-{i}" for i in range(4)}} for n in range(count)]


def denied_values(hits: int) -> dict[RuleType, set[str]]:
    """`hits` of the query's values, taken from each type in turn."""
    by_type = {t: sorted(values) for t, values in QUERY.items()}
    order = itertools.chain.from_iterable(
        itertools.zip_longest(*([(t, v) for v in vs] for t, vs in by_type.items())))
    denied: dict[RuleType, set[str]] = {}
    for rule_type, value in itertools.islice((p for p in order if p is not None), hits):
        denied.setdefault(rule_type, set()).add(value)
    return denied


async def prepare(url: str, filler: int, hits: int) -> None:
    store = RedisStore.from_url(url, timeout=30.0)
    try:
        changes = [RuleChange("add", scope, t, tuple(f"f{i}-{t.value}" for i in range(start,
                   min(start + 10_000, filler))))
                   for scope in (TENANT, GLOBAL) for t in QUERY
                   for start in range(0, filler, 10_000)]
        denied = denied_values(hits)
        changes += [RuleChange("add", TENANT, t, tuple(v)) for t, v in denied.items()]
        for start in range(0, len(changes), 10):  # a pipeline of ~100,000 values at most
            await store.apply(changes[start:start + 10])
        await store.mark_initialised()
        found = await store.lookup(TENANT, QUERY)
        assert found == denied, found
    finally:
        await store.aclose()


@dataclass(frozen=True, order=True)
class Figures:
    """Per lookup: CPU µs (user + system), user µs alone, wall µs; the script's µs per call
    (commandstats) and the redis-server process's CPU µs per lookup."""

    cpu: float
    user: float
    wall: float
    server: float = 0.0
    redis: float = 0.0


async def one_round(
    store: RedisStore, calls: int, concurrency: int, queries: Iterator[Lookup]
) -> Figures:
    """Figures per lookup over `calls` lookups by `concurrency` tasks, the next of `queries`
    each (one cycle over every round: a round does not start the distinct queries again)."""

    async def worker(count: int) -> None:
        for _ in range(count):
            await store.lookup(TENANT, next(queries))

    before, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    await asyncio.gather(*(worker(calls // concurrency) for _ in range(concurrency)))
    done, after = calls // concurrency * concurrency, resource.getrusage(resource.RUSAGE_SELF)
    user, system = after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
    return Figures((user + system) / done * 1e6, user / done * 1e6,
                   (time.perf_counter() - wall) / done * 1e6)


async def server_round(
    store: RedisStore, monitor: aioredis.Redis, calls: int, concurrency: int,
    queries: Iterator[Lookup],
) -> Figures:
    """one_round, and the server's usec_per_call of the lookup script over it."""
    await monitor.config_resetstat()
    before = await redis_cpu(monitor)
    figures = await one_round(store, calls, concurrency, queries)
    process = (await redis_cpu(monitor) - before) / (calls // concurrency * concurrency) * 1e6
    stats = await monitor.info("commandstats")
    script = float(stats.get(SCRIPT_STAT, {}).get("usec_per_call", 0.0))  # none: all cached
    return replace(figures, server=script, redis=process)


async def redis_cpu(monitor: aioredis.Redis) -> float:
    """CPU seconds the redis-server process has used (user + system: its socket work too)."""
    cpu = await monitor.info("cpu")
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


async def measure(url: str, calls: int, rounds: int, cache: bool, distinct: int) -> None:
    store, monitor = RedisStore.from_url(url, timeout=2.0, cache=cache), aioredis.from_url(url)
    queries = itertools.cycle(distinct_queries(distinct) if distinct else [QUERY])
    try:
        for concurrency in (1, 16):
            await one_round(store, calls // 10, concurrency, queries)  # warm up
            figures = [await server_round(store, monitor, calls, concurrency, queries)
                       for _ in range(rounds)]
            best = min(figures)
            user, server = min(f.user for f in figures), min(f.server for f in figures)
            process = min(f.redis for f in figures)
            print(f"concurrency {concurrency:>2}: {best.cpu:6.1f} CPU µs/lookup (user {user:5.1f};"
                  f" wall {best.wall:6.1f} µs/lookup, best of {rounds} × {calls}); server "
                  f"{server:5.1f} µs/script call, redis-server {process:5.1f} CPU µs/lookup")
    finally:
        await monitor.aclose()
        await store.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--filler", type=int, default=0, help="more rules per type and scope")
    parser.add_argument("--hits", type=int, default=1, help="values of the query denied")
    parser.add_argument("--unix", action="store_true", help="also over the unix socket")
    parser.add_argument("--cache", action="store_true", help="the local read path (warm)")
    parser.add_argument("--distinct", type=int, default=0,
                        help="cycle through this many queries of values never repeated")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lookup-cost-") as work:
        server = RedisServer(Path(work), unix=True)
        server.start()
        try:
            asyncio.run(prepare(server.url, args.filler, args.hits))
            for name, url in [("tcp", server.url), *([("unix", server.unix_url)] * args.unix)]:
                print(f"-- {name}")
                asyncio.run(measure(url, args.calls, args.rounds, args.cache, args.distinct))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
