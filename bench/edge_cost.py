"""CPU µs per request of a few contenders, a short wrk run each: the edge's own cost.

    .venv/bin/python -m bench.edge_cost [--only 3,4,6] [--seconds 8] [--conns 16] [--payload small]

A quick before/after figure for one change (not `bench/run`): the same NGINX upstream, Redis
and 8-contact data as bench/run, each contender warmed up and then measured at `--conns`
connections; CPU is the contender's process tree's utime+stime over the run.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench import wrk
from bench.cli import start_redis, start_upstream
from bench.contenders import BY_NUMBER, Env
from bench.data import KEYS, make_data
from bench.measure import Cell, QuietWait, measure
from bench.paths import BENCH
from bench.procs import Server, Supervisor, wait_ready
from bench.pyspy import Sampling, aggregate, record
from bench.wrk import Workload


@dataclass(frozen=True)
class Bench:
    """A started upstream and Redis with the bench data: what contenders run against."""

    env: Env
    load: Workload
    aux: list[Server]


@contextlib.contextmanager
def bench_env(filler: int, unique_docs: int = 0) -> Iterator[Bench]:
    """bench/run's set-up (data, NGINX upstream, Redis with the rules), torn down on exit;
    `unique_docs`: the cold-cache payload's documents (0: none)."""
    work = Path(tempfile.mkdtemp(prefix="denyproxy-edge-"))
    work.chmod(0o755)  # NGINX workers run as nobody and read the payloads from here
    try:
        data = make_data(work, filler, unique_docs)
        with contextlib.ExitStack() as stack:
            sup = stack.enter_context(Supervisor(work))
            upstream = start_upstream(sup, work, data, 1)
            redis = start_redis(stack, work, data)
            assert redis.proc is not None
            aux = [upstream, Server("redis", redis.proc, redis.port, redis.log_path)]
            mitm = BENCH / ".venv-mitm" / "bin" / "mitmdump"
            env = Env(sup, work, data, upstream, redis.url, mitm)
            yield Bench(env, Workload.write(work, data), aux)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def cost(
    bench: Bench, number: int, seconds: float, conns: int, payload: str, spy: Path | None
) -> str:
    server = BY_NUMBER[number].start(bench.env, 1)
    assert isinstance(server, Server), server
    try:
        wait_ready(server, bench.env.data.small[0], KEYS[0])
        wrk.run(bench.load, server.url, payload, conns, 2.0)
        run = measure(server, bench.aux, Cell(number, 1, payload, conns), seconds, bench.load,
                      QuietWait(0.0))
        if spy is not None:
            print(top(spy, bench, server, payload, seconds, conns))
    finally:
        bench.env.sup.stop(server)
    return (f"| {number} {BY_NUMBER[number].name} | {run.rps:.0f} | {run.cpu_us_req:.0f} "
            f"| {run.p50_ms:.2f} | {run.p99_ms:.2f} | {run.other_cpu_pct:.0f} % |")


def top(
    spy: Path, bench: Bench, server: Server, payload: str, seconds: float, conns: int
) -> str:
    """py-spy's own and inclusive time of the top functions under the same load."""
    how = Sampling(bench.env.work, "edge", round(seconds), conns)
    out = bench.env.work / f"{server.name}.raw.txt"
    if error := record(spy, server, bench.load, payload, how, "raw", out):
        return f"py-spy failed: {error}"
    rows, samples = aggregate(out.read_text(errors="replace"), 30)
    return "\n".join(f"{100 * own / max(samples, 1):5.1f}% own {100 * tot / max(samples, 1):5.1f}%"
                     f" incl  {name}" for name, own, tot in rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--only", default="3,4,6")
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--conns", type=int, default=16)
    p.add_argument("--filler-rules", type=int, default=10_000)
    p.add_argument("--payload", default="small", choices=("small", "large", "unique", "detect"))
    p.add_argument("--py-spy", default=None, help="py-spy binary: print a profile of each")
    a = p.parse_args()
    spy = Path(a.py_spy) if a.py_spy else None
    unique = 4096 if a.payload == "unique" else 0  # bench/run's cold-cache documents
    with bench_env(a.filler_rules, unique) as bench:
        print("| contender | req/s | CPU µs/req | p50 ms | p99 ms | other load |\n"
              "|---|--:|--:|--:|--:|--:|")
        for number in (int(n) for n in a.only.split(",")):
            print(cost(bench, number, a.seconds, a.conns, a.payload, spy), flush=True)


if __name__ == "__main__":
    main()
