"""py-spy on denyproxy's filtered path under wrk load, reduced to top-15 tables."""

from __future__ import annotations

import collections
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.paths import ROOT
from bench.procs import Server
from bench.results import Profile
from bench.wrk import Workload

RATE = 250
INCLUSIVE_OF = ("proxy/", "rules/", "aiohttp/", "orjson", "redis/")
LABELS = {"small": "", "large": "-200", "unique": "-distinct"}


def frame_name(frame: str, root: str = str(ROOT)) -> str:
    """`handle (proxy/forward.py:123)` → `handle (proxy/forward.py)`; site-packages shortened."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    file, _, _line = where.rpartition(":")
    file = file or where
    for marker in ("site-packages/", "lib/python3.11/"):
        if marker in file:
            file = file.split(marker, 1)[1]
    file = file.replace(root + "/", "")
    return f"{name} ({file})" if file else name


def collapsed(text: str) -> list[tuple[list[str], int]]:
    """py-spy --format raw (collapsed stacks): (frames without process/thread, count)."""
    out = []
    for line in text.splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack or not count_s.isdigit():
            continue
        frames = [frame_name(f) for f in stack.split(";")]
        out.append(([f for f in frames if not f.startswith(("process ", "thread "))],
                     int(count_s)))
    return out


def aggregate(text: str, top: int = 15) -> tuple[list[tuple[str, int, int]], int]:
    """[(function, own samples, inclusive samples)] of the top `top` by own time; samples."""
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for frames, count in collapsed(text):
        samples += count
        if frames:
            own[frames[-1]] += count
            for f in set(frames):
                total[f] += count
    return [(f, n, total[f]) for f, n in own.most_common(top)], samples


def top_inclusive(text: str, prefixes: tuple[str, ...], top: int = 15) -> list[tuple[str, int]]:
    total: collections.Counter[str] = collections.Counter()
    for frames, count in collapsed(text):
        for f in set(frames):
            if any(p in f for p in prefixes):
                total[f] += count
    return total.most_common(top)


@dataclass(frozen=True)
class Sampling:
    """Where and how long to profile: results dir, stamp, seconds, connections."""

    results: Path
    stamp: str
    seconds: int
    conns: int


def record(spy: Path, server: Server, load: Workload, payload: str, how: Sampling, fmt: str,
           out: Path) -> str:
    """One py-spy recording under wrk load; an error text or ""."""
    wrk = subprocess.Popen(
        ["wrk", "-t", "2", "-c", str(how.conns), "-d", f"{how.seconds + 3}s", "-s",
         str(load.script), server.url, "--", str(load.paths[payload]), str(load.keys), "0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1)
        res = subprocess.run([str(spy), "record", "--pid", str(server.proc.pid), "--duration",
                              str(how.seconds), "--rate", str(RATE), "--format", fmt,
                              "-o", str(out), "--nonblocking"],
                             check=False, capture_output=True, text=True, timeout=how.seconds + 60)
        return "" if res.returncode == 0 else (res.stderr or res.stdout).strip()[-300:]
    finally:
        wrk.wait(timeout=how.seconds + 30)


def profile(server: Server, n: int, label: str, payload: str, load: Workload, how: Sampling,
            svg: bool) -> Profile | str:
    """py-spy on a filtering path (1 worker); the Profile, or a note saying why not."""
    spy = Path(sys.executable).parent / "py-spy"
    if not spy.exists():
        return "py-spy missing: no profile."
    name = f"profile-{how.stamp}-{label}{LABELS[payload]}"
    raw, svg_path = how.results / f"{name}.raw.txt", how.results / f"{name}.svg"
    for fmt, out in [("raw", raw)] + ([("flamegraph", svg_path)] if svg else []):
        if error := record(spy, server, load, payload, how, fmt, out):
            return f"py-spy failed: {error}"
    text = raw.read_text(errors="replace")
    rows, samples = aggregate(text)
    lines = [f"{100 * own / max(samples, 1):5.1f}% own {100 * tot / max(samples, 1):5.1f}% incl"
             f"  {f}" for f, own, tot in rows]
    (how.results / f"{name}.top.txt").write_text("\n".join(lines) + "\n")
    return Profile(n, payload, how.conns, raw, svg_path if svg_path.exists() else None, rows,
                   samples, how.seconds, RATE, top_inclusive(text, INCLUSIVE_OF))
