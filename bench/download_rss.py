"""Peak RSS of `denyproxy serve` while a 500 MiB unfiltered download streams through it.

    .venv/bin/python bench/download_rss.py [--mb 500] [--max-rss-mb 60]

With --max-rss-mb it exits 1 when the proxy's peak RSS went over that bound (#11: a 50 MiB
download stays under 60 MB).

The upstream is the test suite's fake Openmart (its /download route) in this process; the
proxy is a real `denyproxy serve` process; its peak RSS is the kernel's VmHWM.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.harness import fake_upstream
from tests.services import free_ports


def vm(pid: int, field: str) -> int:
    """A /proc/<pid>/status figure in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


async def main(megabytes: int, max_rss_mb: float | None = None) -> int:
    port, admin = free_ports(2)
    async with fake_upstream() as (_, upstream):
        proc = subprocess.Popen(  # noqa: ASYNC220 - starting it does not block; no waiting here
            [sys.executable, "-m", "proxy.cli", "serve", "--upstream", upstream,
             "--listen", f"127.0.0.1:{port}", "--admin-listen", f"127.0.0.1:{admin}",
             "--log-level", "warning"],
        )
        try:
            async with aiohttp.ClientSession() as client:
                for _ in range(100):
                    try:
                        async with client.get(f"http://127.0.0.1:{admin}/healthz"):
                            break
                    except aiohttp.ClientError:
                        await asyncio.sleep(0.1)
                idle = vm(proc.pid, "VmRSS")
                size, received, started = megabytes * 1024 * 1024, 0, time.perf_counter()
                async with client.get(f"http://127.0.0.1:{port}/download/{size}",
                                      headers={"X-API-Key": "bench"}) as r:
                    async for chunk in r.content.iter_chunked(1 << 20):
                        received += len(chunk)
                elapsed = time.perf_counter() - started
            peak = vm(proc.pid, "VmHWM")
        finally:
            proc.terminate()
            proc.wait()
    assert received == size, (received, size)
    print(f"# {megabytes} MiB download through denyproxy — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
          f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}")
    print("| body | time | throughput | proxy RSS idle | proxy peak RSS |\n|---|---|---|---|---|")
    print(f"| {megabytes} MiB | {elapsed:.2f} s | {megabytes / elapsed:.0f} MiB/s "
          f"| {idle / 1024:.1f} MiB | {peak / 1024:.1f} MiB |")
    if max_rss_mb is not None and peak / 1024 > max_rss_mb:
        print(f"peak RSS {peak / 1024:.1f} MiB is over the bound of {max_rss_mb:g} MiB")
        return 1
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, default=500, help="body size, MiB")
    parser.add_argument("--max-rss-mb", type=float, default=None, help="fail above this peak")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.mb, args.max_rss_mb)))
