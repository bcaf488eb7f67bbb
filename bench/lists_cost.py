"""The lookup cost of named lists: one key with 5 assigned lists of N entries each (default
100,000), against the same key with none, in a private redis-server.

    .venv/bin/python -m bench.lists_cost [--lists 5] [--entries 100000] [--lookups 2000]

Times RedisStore.lookup (one round trip each, as the response path makes it) for a query of
50 emails, 50 phones, 50 domains and 20 LinkedIn profiles: median and p99 per lookup for a key
without lists, with the lists, and with the lists plus a campaign. The lookup's cost grows
with the number of scopes (one SMISMEMBER per scope and type in the script); membership is
O(1) per value whatever a list's size. Run it on a quiet box: on a shared one the figures
are mostly noise.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import tempfile
import time

from rules.model import ListChange, RuleChange, RuleType, tenant_of
from rules.scopes import list_scope, new_list_id
from rules.store import RedisStore
from tests.services import free_ports

QUERY = {
    RuleType.EMAIL: [f"someone{i}@company{i}.example" for i in range(50)],
    RuleType.PHONE: [f"+1512555{2000 + i}" for i in range(50)],
    RuleType.DOMAIN: [f"company{i}.example" for i in range(50)],
    RuleType.LINKEDIN: [f"linkedin.com/in/someone{i}" for i in range(20)],
}


async def load(store: RedisStore, lists: int, entries: int, tenant: str) -> None:
    ids = [new_list_id() for _ in range(lists)]
    for n, list_id in enumerate(ids):
        await store.apply([ListChange("create", list_id, time.time(), f"list {n}")])
        for start in range(0, entries, 10_000):
            values = tuple(f"p{i}.{n}@c{i % 997}.example"
                           for i in range(start, min(start + 10_000, entries)))
            await store.apply([RuleChange("add", list_scope(list_id), RuleType.EMAIL, values)])
        await store.apply([ListChange("assign", list_id, time.time(), tenants=(tenant,))])


async def timed(store: RedisStore, tenant: str, lookups: int, campaign: str | None) -> list[float]:
    await store.lookup(tenant, QUERY, campaign=campaign)  # the assigned lists, read once
    took = []
    for _ in range(lookups):
        started = time.perf_counter()
        await store.lookup(tenant, QUERY, campaign=campaign)
        took.append((time.perf_counter() - started) * 1000)
    return took


async def measure(url: str, lists: int, entries: int, lookups: int) -> None:
    store = RedisStore.from_url(url, timeout=600)
    await store.mark_initialised()
    with_lists, without = tenant_of("om_bench_lists"), tenant_of("om_bench_none")
    started = time.perf_counter()
    await load(store, lists, entries, with_lists)
    print(f"loaded {lists} lists x {entries:,} entries in {time.perf_counter() - started:.1f} s")
    print("| key | median ms | p99 ms |\n|---|---|---|")
    for name, tenant, campaign in [("no lists", without, None),
                                   (f"{lists} lists", with_lists, None),
                                   (f"{lists} lists + campaign", with_lists, "c1")]:
        took = sorted(await timed(store, tenant, lookups, campaign))
        p99 = took[int(len(took) * 0.99) - 1]
        print(f"| {name} | {statistics.median(took):.3f} | {p99:.3f} |")
    await store.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lists", type=int, default=5)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--lookups", type=int, default=2_000)
    args = parser.parse_args()
    (port,) = free_ports(1)
    with tempfile.TemporaryDirectory() as workdir:
        redis = subprocess.Popen(["redis-server", "--port", str(port), "--save", "",
                                  "--appendonly", "no", "--dir", workdir],
                                 stdout=subprocess.DEVNULL)
        try:
            time.sleep(0.3)
            asyncio.run(measure(f"redis://127.0.0.1:{port}/0", args.lists, args.entries,
                                args.lookups))
        finally:
            redis.terminate()
            redis.wait()


if __name__ == "__main__":
    main()
