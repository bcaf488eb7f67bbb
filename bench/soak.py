"""A soak: the Redis-filtering proxy at half of its max load for minutes, its RSS each second.

    .venv/bin/python -m bench.soak [--minutes 10] [--payload unique|small]

Bounded memory is the claim: the proxy's RSS (its process tree, sampled every second) must
stay flat. The figure is the mean RSS of the first minute against the last minute's, and the
least-squares slope in MiB/min over the run after its first minute (the warm-up: pools, caches
and allocator arenas fill then; a run of about a minute: over all of it). The default payload
never repeats a contact within 4,096 documents, so every per-value cache reaches its bound.
Writes bench/results/soak-<stamp>.{json,png,md}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench import wrk
from bench.contenders import DenyproxyRedis
from bench.data import KEYS
from bench.edge_cost import Bench, bench_env
from bench.paths import RESULTS
from bench.procs import Server, wait_ready
from bench.proctree import status_kib
from bench.session import half_pacing

UNIQUE_DOCS = 4096  # bench/run's cold-cache payload: 4,096 x 32 values > every per-value cache
PAYLOADS = {
    "unique": "4,096 documents whose contacts never repeat: every cache fills to its bound",
    "small": "16 documents repeated: warm caches",
}


@dataclass
class Soak:
    minutes: float
    max_rps: float
    target_rps: float
    got_rps: float
    errors: int
    conns: int
    pace_ms: float
    samples: list[tuple[float, float]]  # (seconds since start, RSS MiB)
    payload: str = "unique"
    first_minute_mib: float = 0.0
    last_minute_mib: float = 0.0
    slope_mib_per_min: float = 0.0
    slope_second_half_mib_per_min: float = 0.0
    peak_mib: float = 0.0

    def settle(self) -> None:
        """The flatness figures from the samples. With unique contacts the per-value caches
        fill for minutes (each is bounded by entries), so the second half's slope is the one
        that tells a bound from a leak."""
        first = [m for t, m in self.samples if t < 60] or [self.samples[0][1]]
        end = self.samples[-1][0]
        last = [m for t, m in self.samples if t >= end - 60]
        self.first_minute_mib, self.last_minute_mib = statistics.mean(first), statistics.mean(last)
        self.peak_mib = max(m for _, m in self.samples)
        settled = [(t, m) for t, m in self.samples if t >= 60]
        if len(settled) < 10:  # a short run (a smoke test): its whole curve
            settled = self.samples
        self.slope_mib_per_min = _slope(settled)
        self.slope_second_half_mib_per_min = _slope([s for s in self.samples if s[0] >= end / 2])


def _slope(samples: list[tuple[float, float]]) -> float:
    """Least-squares MiB per minute (0 for fewer than two samples)."""
    if len(samples) < 2:
        return 0.0
    fit = statistics.linear_regression([t for t, _ in samples], [m for _, m in samples])
    return fit.slope * 60


def rss_mib(server: Server) -> float:
    total = 0
    for pid in server.pids():
        try:
            total += status_kib(Path(f"/proc/{pid}/status").read_text(), "VmRSS")
        except OSError:  # a worker that just went away
            continue
    return total / 1024


def sample(server: Server, proc: subprocess.Popen[str]) -> list[tuple[float, float]]:
    """RSS every second until wrk ends."""
    samples, started = [], time.monotonic()
    while proc.poll() is None:
        samples.append((round(time.monotonic() - started, 1), rss_mib(server)))
        time.sleep(max(0.0, len(samples) - (time.monotonic() - started)))
    return samples


def soak(bench: Bench, minutes: float, payload: str) -> Soak:
    server = DenyproxyRedis().start(bench.env, 1)
    assert isinstance(server, Server), server
    try:
        wait_ready(server, bench.env.data.small[0], KEYS[0])
        wrk.run(bench.load, server.url, payload, 16, 2.0)
        top = wrk.run(bench.load, server.url, payload, 16, 5.0)
        base = wrk.run(bench.load, server.url, payload, 1, 2.0)
        conns, pace = half_pacing(top.rps / 2, base.p50 / 1000)
        seconds = max(1, round(minutes * 60))
        argv = bench.load.argv(server.url, payload, 1 if conns < 8 else 2, conns, seconds, pace)
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        samples = sample(server, proc)
        out = wrk.parse_output(proc.communicate()[0])
        if out is None or not server.alive():
            raise RuntimeError("the soak's wrk gave no result or the proxy died")
    finally:
        bench.env.sup.stop(server)
    run = Soak(minutes, top.rps, top.rps / 2, out.rps, out.errors, conns, pace, samples, payload)
    run.settle()
    return run


def plot(run: Soak, stamp: str, path: Path) -> Path | None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot([t / 60 for t, _ in run.samples], [m for _, m in run.samples], lw=1)
    ax.set_xlabel("minutes")
    ax.set_ylabel("proxy RSS (MiB)")
    ax.set_ylim(0, 1.25 * max(m for _, m in run.samples))  # from 0: growth shows at scale
    ax.set_title(f"denyproxy soak {stamp}: {run.got_rps:.0f} req/s (half of {run.max_rps:.0f}),"
                 f" peak {run.peak_mib:.0f} MiB,"
                 f" second half {run.slope_second_half_mib_per_min:+.2f} MiB/min")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def report(run: Soak, stamp: str) -> str:
    return (
        f"# Soak {stamp}: Redis-filtering proxy at half load\n\n"
        f"{os.cpu_count()} cores (shared box unless said otherwise); 1 worker; 8-contact "
        f"results ({PAYLOADS[run.payload]}); wrk {run.conns} connections paced "
        f"{run.pace_ms:.1f} ms.\n\n"
        "| minutes | max req/s | target | got req/s | errors | RSS first min | RSS last min "
        "| peak | slope after min 1 | slope, second half |\n"
        "|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n"
        f"| {run.minutes:g} | {run.max_rps:.0f} | {run.target_rps:.0f} | {run.got_rps:.0f} "
        f"| {run.errors} | {run.first_minute_mib:.1f} MiB | {run.last_minute_mib:.1f} MiB "
        f"| {run.peak_mib:.1f} MiB | {run.slope_mib_per_min:+.3f} MiB/min "
        f"| {run.slope_second_half_mib_per_min:+.3f} MiB/min |\n"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--filler-rules", type=int, default=10_000)
    p.add_argument("--results", default=str(RESULTS))
    p.add_argument("--payload", default="unique", choices=sorted(PAYLOADS))
    a = p.parse_args()
    stamp = dt.datetime.now().strftime("%Y-%m-%d-%H%M%S")
    results = Path(a.results)
    with bench_env(a.filler_rules, UNIQUE_DOCS if a.payload == "unique" else 0) as bench:
        run = soak(bench, a.minutes, a.payload)
    (results / f"soak-{stamp}.json").write_text(json.dumps(asdict(run), indent=1))
    plot(run, stamp, results / f"soak-{stamp}.png")
    text = report(run, stamp)
    (results / f"soak-{stamp}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
