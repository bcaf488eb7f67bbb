"""The command line of `bench/run` (unchanged flags) as one Options dataclass."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import bench
from bench.contenders import NAMES
from bench.paths import BENCH, RESULTS


@dataclass(frozen=True)
class Options:
    duration: float
    concurrency: list[int]
    quick: bool
    only: list[int]
    workers: list[int]
    filler_rules: int
    unique_docs: int
    list_entries: int
    upstream_workers: int
    quiet_budget: float
    no_profile: bool
    no_kafka: bool
    mitmdump: Path
    results: Path

    @property
    def warmup(self) -> float:
        return 1.0 if self.quick else 2.0

    @property
    def profile_s(self) -> int:
        return 3 if self.quick else 10

    @property
    def mid_conns(self) -> int:
        """The connection count of the summary, large/unique cells and profiles."""
        return 16 if 16 in self.concurrency else max(self.concurrency)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench/run", description=bench.__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=None, help="seconds per wrk run (10)")
    p.add_argument("--concurrency", default=None, help="wrk connections, comma list (1,16,64)")
    p.add_argument("--quick", action="store_true", help="short smoke run (< 2 min)")
    p.add_argument("--only", default=None, help="contenders to run, e.g. 1,2,5 (default all)")
    p.add_argument("--workers", default="1,2", help="worker counts to measure (1,2)")
    p.add_argument("--filler-rules", type=int, default=100_000,
                   help="synthetic rules per tenant besides the matching ones (100000)")
    p.add_argument("--unique-docs", type=int, default=4096,
                   help="8-contact results whose contacts never repeat, for the cold-cache "
                        "cell (4096 x 32 values > the 65,536-entry normalise caches; 0 = off)")
    p.add_argument("--list-entries", type=int, default=None,
                   help="entries in each of the 5 named lists of the fifth key, #6's `lists` "
                        "cell (100000; --quick 10000; 0 = off)")
    p.add_argument("--upstream-workers", type=int, default=1,
                   help="worker_processes of the upstream NGINX (1)")
    p.add_argument("--quiet-budget", type=float, default=None,
                   help="seconds the whole run may wait for outside load to drop before a "
                        "cell (60; --quick 0)")
    p.add_argument("--no-profile", action="store_true", help="skip the py-spy profile")
    p.add_argument("--no-kafka", action="store_true", help="skip bench/kafka_bench.py")
    p.add_argument("--mitmdump", default=str(BENCH / ".venv-mitm" / "bin" / "mitmdump"))
    p.add_argument("--results", default=str(RESULTS))
    return p


def ints(text: str) -> list[int]:
    return sorted({int(c) for c in text.split(",")})


def list_entries(a: argparse.Namespace) -> int:
    if a.list_entries is not None:
        return int(a.list_entries)
    return 10_000 if a.quick else 100_000


def parse_args(argv: list[str] | None = None) -> Options:
    a = parser().parse_args(argv)
    quick = bool(a.quick)
    conc = a.concurrency or ("1,16" if quick else "1,16,64")
    budget = a.quiet_budget if a.quiet_budget is not None else (0.0 if quick else 60.0)
    return Options(
        duration=a.duration or (1.0 if quick else 10.0),
        concurrency=[int(c) for c in conc.split(",")],
        quick=quick, only=ints(a.only) if a.only else list(NAMES), workers=ints(a.workers),
        filler_rules=a.filler_rules, unique_docs=a.unique_docs, list_entries=list_entries(a),
        upstream_workers=a.upstream_workers, quiet_budget=budget, no_profile=a.no_profile,
        no_kafka=a.no_kafka, mitmdump=Path(a.mitmdump), results=Path(a.results))
