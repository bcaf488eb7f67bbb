"""CPU µs (process time) per `RedisStore.lookup`, in-process, against a private redis-server.

    .venv/bin/python bench/lookup_cost.py [--calls 4000] [--rounds 5]

One key tenant with named lists (so a lookup is the lookup script and the GET of the key's
assignments version), 24 values (10 emails, 10 phones, 4 LinkedIn profiles), one of them
denied. Concurrency 1 (one lookup after the other) and 16 (16 tasks, each its share of the
calls). The figure is the best of `--rounds` rounds of process CPU time over the calls (a
shared box's other processes do not count); wall µs per call is printed beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# E402 below: the imports need the repo root on sys.path first (run as a script)
from rules.model import Lookup, RuleChange, RuleType, tenant_of  # noqa: E402
from rules.store import RedisStore  # noqa: E402
from tests.services import RedisServer  # noqa: E402

TENANT = tenant_of("om_lookup_cost")
QUERY: Lookup = {
    RuleType.EMAIL: {f"u{i}@x.example" for i in range(10)},
    RuleType.PHONE: {f"+1555000{i:04d}" for i in range(10)},
    RuleType.LINKEDIN: {f"/in/p{i}" for i in range(4)},
}


async def prepare(store: RedisStore) -> None:
    await store.apply([RuleChange("add", TENANT, RuleType.EMAIL, ("u3@x.example",))])
    await store.mark_initialised()
    denied = await store.lookup(TENANT, QUERY)
    assert denied == {RuleType.EMAIL: {"u3@x.example"}}, denied


async def one_round(store: RedisStore, calls: int, concurrency: int) -> tuple[float, float]:
    """(CPU µs, wall µs) per lookup over `calls` lookups by `concurrency` tasks."""

    async def worker(count: int) -> None:
        for _ in range(count):
            await store.lookup(TENANT, QUERY)

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(calls // concurrency) for _ in range(concurrency)))
    done = calls // concurrency * concurrency
    return ((time.process_time() - cpu) / done * 1e6, (time.perf_counter() - wall) / done * 1e6)


async def measure(url: str, calls: int, rounds: int) -> None:
    store = RedisStore.from_url(url, timeout=2.0)
    try:
        await prepare(store)
        for concurrency in (1, 16):
            await one_round(store, calls // 10, concurrency)  # warm up
            figures = [await one_round(store, calls, concurrency) for _ in range(rounds)]
            cpu, wall = min(figures)
            print(f"concurrency {concurrency:>2}: {cpu:7.1f} CPU µs/lookup "
                  f"(wall {wall:7.1f} µs/lookup, best of {rounds} × {calls})")
    finally:
        await store.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lookup-cost-") as work:
        server = RedisServer(Path(work))
        server.start()
        try:
            asyncio.run(measure(server.url, args.calls, args.rounds))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
