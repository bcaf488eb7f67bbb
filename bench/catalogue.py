"""Rule catalogue at scale: one key with N rules (default 1,000,000) in a private redis-server.

    .venv/bin/python -m bench.catalogue [--rules N]

Times (wall, one call each, through a real `denyproxy serve`): the first page of the listing,
a page at offset N/2, a search, a full NDJSON export; the proxy's peak RSS during the export;
Redis memory per rule (used_memory delta / N, sets + records + indexes + expiries), and that
split by structure with MEMORY USAGE: the lookup set (what the response path reads), the
records (a sample of 1,000), each catalogue index.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import redis.asyncio as aioredis

from rules.model import ChangeMeta, RuleChange, RuleType, tenant_of
from rules.store import RedisStore
from rules.store.keys import created_key, record_key, rule_key, types_key, values_key
from tests.services import free_ports

KEY = "om_bench_catalogue"


async def load(url: str, rules: int) -> float:
    """N email rules for KEY, 10,000 per change, a few changes per pipeline; bytes per rule."""
    client = aioredis.from_url(url, decode_responses=True)
    before = int((await client.info("memory"))["used_memory"])
    store = RedisStore.from_url(url, timeout=600)
    await store.mark_initialised()
    tenant = tenant_of(KEY)
    for start in range(0, rules, 10_000):
        values = tuple(f"person{i}@company{i % 997}.example" for i in range(start, start + 10_000))
        meta = ChangeMeta(time.time(), "bench", reason="bench load")
        await store.apply([RuleChange("add", tenant, RuleType.EMAIL, values, meta)])
    after = int((await client.info("memory"))["used_memory"])
    await store.aclose()
    await client.aclose()
    return (after - before) / rules


async def breakdown(url: str, rules: int) -> dict[str, float]:
    """Bytes per rule of each structure (MEMORY USAGE; the records from a sample of 1,000)."""
    client = aioredis.from_url(url, decode_responses=True)
    tenant = tenant_of(KEY)
    whole = {
        "lookup set (SET)": rule_key(tenant, RuleType.EMAIL),
        "index by created_at (ZSET)": created_key(tenant),
        "index by created_at, email (ZSET)": created_key(tenant, RuleType.EMAIL),
        "index by value (ZSET)": values_key(tenant),
        "index by type (ZSET)": types_key(tenant),
    }
    sizes = {name: (await client.memory_usage(k, samples=0) or 0) / rules
             for name, k in whole.items()}
    ids = await client.zrange(created_key(tenant), 0, 999)
    records = [await client.memory_usage(record_key(tenant, i), samples=0) or 0 for i in ids]
    sizes["record (HASH)"] = sum(records) / max(len(records), 1)
    await client.aclose()
    return sizes


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def timed(client: aiohttp.ClientSession, url: str) -> tuple[float, int]:
    started = time.perf_counter()
    async with client.get(url, headers={"X-API-Key": KEY}) as r:
        size = len(await r.read())
        assert r.status == 200, r.status
    return time.perf_counter() - started, size


async def export(client: aiohttp.ClientSession, url: str, pid: int) -> tuple[float, int, int]:
    started, size, peak = time.perf_counter(), 0, rss_kib(pid)
    async with client.get(url, headers={"X-API-Key": KEY}) as r:
        async for chunk in r.content.iter_chunked(1 << 16):
            size += len(chunk)
            peak = max(peak, rss_kib(pid))
    return time.perf_counter() - started, size, peak


async def measure(base: str, pid: int, rules: int) -> None:
    api = f"{base}/api/v2/deny-rules"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3600)) as client:
        for name, query in (("first page", "limit=50"), (f"offset {rules // 2}",
                            f"limit=50&offset={rules // 2}"),
                            ("offset by value", f"sort_by=value&limit=50&offset={rules // 2}"),
                            ("search 'person4242'", "search=person4242&limit=50")):
            seconds, _ = await timed(client, f"{api}?{query}")
            print(f"| {name} | {seconds * 1000:,.0f} ms |")
        idle = rss_kib(pid)
        seconds, size, peak = await export(client, f"{api}/export?format=ndjson", pid)
        print(f"| export ndjson ({size / 1e6:,.0f} MB) | {seconds:,.1f} s;"
              f" proxy RSS {idle / 1024:,.0f} MiB before, peak {peak / 1024:,.0f} MiB |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rules", type=int, default=1_000_000)
    args = parser.parse_args()
    port, proxy_port, admin_port = free_ports(3)
    with tempfile.TemporaryDirectory() as workdir:
        redis = subprocess.Popen(["redis-server", "--port", str(port), "--save", "",
                                  "--appendonly", "no", "--dir", workdir],
                                 stdout=subprocess.DEVNULL)
        proxy = None
        try:
            time.sleep(0.5)
            url = f"redis://127.0.0.1:{port}/0"
            started = time.perf_counter()
            per_rule = asyncio.run(load(url, args.rules))
            print(f"| load {args.rules:,} rules | {time.perf_counter() - started:,.0f} s;"
                  f" Redis {per_rule:,.0f} bytes/rule |")
            for name, size in asyncio.run(breakdown(url, args.rules)).items():
                print(f"| of which {name} | {size:,.0f} bytes/rule |")
            proxy = subprocess.Popen([sys.executable, "-m", "proxy.cli", "serve", "--redis", url,
                                      "--upstream", "http://127.0.0.1:9", "--listen",
                                      f"127.0.0.1:{proxy_port}", "--admin-listen",
                                      f"127.0.0.1:{admin_port}", "--store-timeout", "600"],
                                     env={**os.environ, "DENYPROXY_LOG_LEVEL": "warning"})
            time.sleep(3)
            asyncio.run(measure(f"http://127.0.0.1:{proxy_port}", proxy.pid, args.rules))
        finally:
            for process in (proxy, redis):
                if process is not None:
                    process.terminate()
                    process.wait()


if __name__ == "__main__":
    main()
