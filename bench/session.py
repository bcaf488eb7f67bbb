"""The run: every contender in turn against the upstream, its cells measured into Findings."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from bench import wrk
from bench.checks import check_filtering, check_lists
from bench.contenders import PROFILED, Contender, Env, Skip
from bench.data import KEYS
from bench.measure import DISTURBED_PCT, REMEASURES, Cell, QuietWait, measure
from bench.options import Options
from bench.procs import Server, tail, wait_ready
from bench.pyspy import Sampling, profile
from bench.results import Findings, Run
from bench.wrk import Workload

log = logging.getLogger("bench")


@dataclass
class Session:
    """Everything a contender's cells need, passed down (no module state)."""

    opts: Options
    env: Env
    load: Workload
    stamp: str
    redis: list[Server]  # the Redis server when one runs: its CPU counts as "aux"
    found: Findings = field(default_factory=Findings)
    quiet: QuietWait = field(init=False)

    def __post_init__(self) -> None:
        self.quiet = QuietWait(self.opts.quiet_budget)

    def cell(self, server: Server, cell: Cell) -> Run:
        upstream = self.env.upstream
        aux = ([upstream] if server is not upstream else []) + self.redis
        run = measure(server, aux, cell, self.opts.duration, self.load, self.quiet)
        for _ in range(REMEASURES):
            if run.other_cpu_pct <= DISTURBED_PCT:
                break
            self.found.remeasured += 1
            log.info(f"  outside load {run.other_cpu_pct:.0f} % of a core: measuring again")
            again = measure(server, aux, cell, self.opts.duration, self.load, self.quiet)
            run = again if again.other_cpu_pct < run.other_cpu_pct else run
        self.found.runs.append(run)
        return run


def bench_contender(s: Session, c: Contender, workers: int) -> None:
    """Start, check, measure and stop one contender; its failure is a note, not the end."""
    started = c.start(s.env, workers)
    if isinstance(started, Skip):
        if (c.number, workers) not in s.found.checks:
            s.found.checks[(c.number, workers)] = f"skipped: {started.reason}"
            if c.number != 1:
                s.found.notes.append(f"Contender {c.number} ({c.name}) with {workers} "
                                     f"worker(s) skipped: {started.reason}.")
        return
    server = started
    try:
        measure_contender(s, c, server, workers)
    except Exception as exc:  # one contender failing must not sink the others
        log.info(f"contender {c.number} failed: {exc}")
        s.found.notes.append(f"Contender {c.number} ({c.name}) with {workers} worker(s) "
                             f"failed: {str(exc).splitlines()[0]}")
    finally:
        if server is not s.env.upstream:
            s.env.sup.stop(server)


def measure_contender(s: Session, c: Contender, server: Server, workers: int) -> None:
    wait_ready(server, s.env.data.small[0], KEYS[0])
    verdict = s.found.checks[(c.number, workers)] = check_filtering(server, s.env.data)
    log.info(f"contender {c.number} {c.name} (workers={workers}) ready; filtering: {verdict}")
    wrk.run(s.load, server.url, "small", max(s.opts.concurrency), s.opts.warmup)
    small = [small_cell(s, server, Cell(c.number, workers, "small", conns))
             for conns in s.opts.concurrency]
    if workers == 1:
        single_worker_cells(s, c, server, small)
    if c.number in PROFILED and workers == 1 and not s.opts.no_profile:
        profiles(s, c, server)
    if not server.alive():
        raise RuntimeError(f"{server.name} died during the run:\n{tail(server.log)}")


def small_cell(s: Session, server: Server, cell: Cell) -> Run:
    run = s.cell(server, cell)
    log.info(f"  c={cell.conns:<3} {run.rps:9.0f} req/s  p50 {run.p50_ms:7.2f} ms  "
             f"p99 {run.p99_ms:7.2f} ms  cpu {run.cpu_pct:5.0f}%  errors {run.errors}")
    return run


def single_worker_cells(s: Session, c: Contender, server: Server, small: list[Run]) -> None:
    """200-contact and distinct results at the mid connection count, then half load."""
    conns = s.opts.mid_conns
    run = s.cell(server, Cell(c.number, 1, "large", conns))
    log.info(f"  200 contacts c={conns}: {run.rps:7.0f} req/s  p99 {run.p99_ms:.2f} ms")
    if s.env.data.unique:
        run = s.cell(server, Cell(c.number, 1, "unique", conns))
        log.info(f"  {len(s.env.data.unique)} distinct 8-contact results c={conns}: "
                 f"{run.rps:7.0f} req/s  p99 {run.p99_ms:.2f} ms")
    if s.env.data.detect:  # identifiers in free text, unknown keys, object keys (deny by default)
        run = s.cell(server, Cell(c.number, 1, "detect", conns))
        log.info(f"  detection workload c={conns}: {run.rps:7.0f} req/s  p99 {run.p99_ms:.2f} ms")
    if c.lists and s.env.data.lists is not None:
        lists_cell(s, c, server)
    half_cell(s, c, server, small)


def lists_cell(s: Session, c: Contender, server: Server) -> None:
    """The 8-contact results requested with the key that has the named lists (issue #13)."""
    conns = s.opts.mid_conns
    s.found.lists_check = check_lists(server, s.env.data)
    wrk.run(s.load, server.url, "lists", conns, s.opts.warmup)
    run = s.cell(server, Cell(c.number, 1, "lists", conns))
    log.info(f"  named lists key c={conns}: {run.rps:7.0f} req/s  p99 {run.p99_ms:.2f} ms  "
             f"filtering: {s.found.lists_check}")


def half_pacing(target_rps: float, base_p50_ms: float) -> tuple[int, float]:
    """(connections, pause ms) offering about `target_rps`. wrk's delay() is whole ms: keep the
    pause near 10 ms by scaling the connection count with the rate (capped at 256)."""
    conns = max(1, min(256, round(target_rps * (10 + base_p50_ms) / 1000)))
    return conns, max(0.0, conns * 1000 / target_rps - base_p50_ms)


def half_cell(s: Session, c: Contender, server: Server, small: list[Run]) -> None:
    """p99 at half of the max throughput: wrk paced by a Lua delay() per connection."""
    target = max(r.rps for r in small) / 2
    base = min(small, key=lambda r: r.conns)
    conns, pace = half_pacing(target, base.p50_ms)
    run = s.cell(server, Cell(c.number, 1, "half", conns, pace))
    run.target_rps = target
    log.info(f"  half load: target {target:.0f} got {run.rps:.0f} req/s  "
             f"p99 {run.p99_ms:.2f} ms")


def profiles(s: Session, c: Contender, server: Server) -> None:
    """py-spy: the 8-contact path of #5 and #6; full runs add #5's 200-contact and distinct."""
    how = Sampling(s.opts.results, s.stamp, s.opts.profile_s, s.opts.mid_conns)
    full = c.number == 5 and not s.opts.quick
    payloads = ["small"] + (["large"] + (["unique"] if s.env.data.unique else []) if full else [])
    for payload in payloads:
        log.info(f"  profiling ({PROFILED[c.number]} {payload}) with py-spy for "
                 f"{how.seconds}s at c={how.conns}")
        got = profile(server, c.number, PROFILED[c.number], payload, s.load, how,
                      svg=full and payload == "small")
        if isinstance(got, str):
            s.found.notes.append(got)
            return
        s.found.profiles.append(got)
