"""One measured cell: wrk against a server while its process tree's CPU and RSS are read."""

from __future__ import annotations

import time
from dataclasses import dataclass

from bench import wrk
from bench.procs import Server
from bench.proctree import CLK_TCK, children_cpu, cpu_ticks, machine_ticks, peak_rss_kib
from bench.results import Run
from bench.wrk import Workload

DISTURBED_PCT = 10.0
"""A cell during which outside processes kept more than this (% of a core) busy is measured
again (bench/session.py): on 2 shared cores they slow the contender's own CPU time too (its
µs/req moved 20-60 % in such cells). The least disturbed of its runs is kept."""
REMEASURES = 2


@dataclass
class QuietWait:
    """Before a cell: wait (at most `per_cell` s, and `budget` s over the run) while processes
    outside the bench keep more than `threshold_pct` of a core busy. Our servers are idle
    then, so the busy time is someone else's."""

    budget: float
    waited: float = 0.0
    threshold_pct: float = 25.0
    per_cell: float = 8.0

    def __call__(self) -> None:
        waited = 0.0
        while True:
            b0 = machine_ticks()[0]
            time.sleep(0.5)
            busy = 100 * (machine_ticks()[0] - b0) / CLK_TCK / 0.5
            if busy <= self.threshold_pct or waited >= self.per_cell or \
                    self.waited >= self.budget:
                return
            waited += 0.5
            self.waited += 0.5


@dataclass(frozen=True)
class Snapshot:
    """CPU counters at one instant: contender tree and aux ticks, machine busy, wrk seconds."""

    wall: float
    own: int
    aux: int
    machine: int
    wrk_s: float

    @classmethod
    def take(cls, pids: list[int], aux_pids: list[int]) -> Snapshot:
        return cls(time.monotonic(), cpu_ticks(pids), cpu_ticks(aux_pids), machine_ticks()[0],
                   children_cpu())


@dataclass(frozen=True)
class Usage:
    """CPU between two snapshots in % of one core."""

    wall: float
    own_s: float
    own_pct: float
    aux_pct: float
    wrk_pct: float
    busy_pct: float

    @classmethod
    def between(cls, a: Snapshot, b: Snapshot) -> Usage:
        wall = b.wall - a.wall
        own_s = (b.own - a.own) / CLK_TCK
        return cls(wall, own_s, 100 * own_s / wall, 100 * (b.aux - a.aux) / CLK_TCK / wall,
                   100 * (b.wrk_s - a.wrk_s) / wall, 100 * (b.machine - a.machine) / CLK_TCK / wall)

    def other_pct(self, is_upstream: bool, any_pids: bool) -> float:
        """Busy time of the machine not accounted for by the bench's own processes."""
        if is_upstream:  # direct: the contender is the upstream
            return max(0.0, self.busy_pct - self.own_pct - self.wrk_pct)
        if not any_pids:
            return 0.0
        return max(0.0, self.busy_pct - self.own_pct - self.aux_pct - self.wrk_pct)


@dataclass(frozen=True)
class Cell:
    contender: int
    workers: int
    payload: str  # which paths file wrk rotates over; "half" uses the small one
    conns: int
    pace_ms: float = 0.0


def measure(server: Server, aux: list[Server], cell: Cell, duration: float, load: Workload,
            quiet: QuietWait) -> Run:
    quiet()
    pids = server.pids()
    aux_pids = [p for s in aux for p in s.pids()]
    before = Snapshot.take(pids, aux_pids)
    paths = "small" if cell.payload == "half" else cell.payload
    out = wrk.run(load, server.url, paths, cell.conns, duration, cell.pace_ms)
    pids = server.pids()  # workers may have been (re)spawned
    use = Usage.between(before, Snapshot.take(pids, aux_pids))
    other = use.other_pct(server.name == "upstream", bool(aux_pids or pids))
    return Run(cell.contender, cell.workers, cell.payload, cell.conns, out.rps, out.p50 / 1000,
               out.p99 / 1000, out.p999 / 1000, use.own_pct,
               1e6 * use.own_s / max(out.requests, 1), peak_rss_kib(pids) / 1024, use.aux_pct,
               out.errors, out.requests, use.wrk_pct, other, cell.pace_ms)
