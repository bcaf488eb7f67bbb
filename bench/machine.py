"""The machine and tool versions named at the top of the report."""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
from pathlib import Path

import aiohttp


def cpu_model(cpuinfo: str) -> str:
    for line in cpuinfo.splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "?"


def version(argv: list[str]) -> str:
    """First line a tool prints for its version flag ("?" if it cannot run)."""
    with contextlib.suppress(Exception):
        res = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=10)
        return (res.stdout + res.stderr).strip().splitlines()[0]
    return "?"


def memory() -> str:
    with contextlib.suppress(OSError):
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        return f"{kib / 1024 / 1024:.1f} GiB"
    return "?"


def machine() -> dict[str, str]:
    model = "?"
    with contextlib.suppress(OSError):
        model = cpu_model(Path("/proc/cpuinfo").read_text())
    return {
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "memory": memory(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "aiohttp": aiohttp.__version__,
        "nginx": version(["nginx", "-v"]),
        "wrk": version(["wrk", "-v"]),
        "redis": version(["redis-server", "--version"]),
    }
