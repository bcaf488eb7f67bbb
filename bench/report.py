"""The Markdown report: set-up, summary, one table per payload, latency, profiles, notes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bench.contenders import NAMES
from bench.data import KEYS, Data
from bench.measure import DISTURBED_PCT
from bench.options import Options
from bench.results import Findings, Profile, Run
from bench.table import fmt, ratio, table
from bench.texts import (
    CPU_LEGEND,
    FOOTER,
    HALF_INTRO,
    LISTS_INTRO,
    SUMMARY_INTRO,
    UNIQUE_INTRO,
)

Anchor = Run | None


@dataclass(frozen=True)
class Col:
    """One column of a per-run table: title, cell from (run, the #2 run it compares to)."""

    title: str
    cell: Callable[[Run, Anchor], str]
    align: str = "r"


def _other(r: Run, a: Anchor) -> str:
    return f"{r.other_cpu_pct:.0f}{' ⚠' if r.other_cpu_pct > 15 else ''}"


NUM = Col("#", lambda r, a: str(r.contender), "l")
NAME = Col("contender", lambda r, a: NAMES[r.contender], "l")
CONNS = Col("conns", lambda r, a: str(r.conns))
RPS = Col("req/s", lambda r, a: fmt(r.rps))
RPS_X = Col("× #2", lambda r, a: ratio(r.rps, a.rps if a else None))
P50 = Col("p50 ms", lambda r, a: f"{r.p50_ms:.2f}")
P99 = Col("p99 ms", lambda r, a: f"{r.p99_ms:.2f}")
P99_X = Col("× #2 p99", lambda r, a: ratio(r.p99_ms, a.p99_ms if a else None))
CPU = Col("CPU %", lambda r, a: f"{r.cpu_pct:.0f}")
CPU_US = Col("CPU µs/req", lambda r, a: f"{r.cpu_us_req:.0f}")
RSS = Col("peak RSS MB", lambda r, a: f"{r.rss_mb:.0f}")
AUX = Col("aux CPU %", lambda r, a: f"{r.aux_cpu_pct:.0f}")
WRK = Col("wrk CPU %", lambda r, a: f"{r.wrk_cpu_pct:.0f}")
OTHER = Col("other CPU %", _other)
ERRORS = Col("errors", lambda r, a: str(r.errors))
PAYLOAD_COLS = [NUM, NAME, RPS, RPS_X, P50, P99, P99_X, CPU, CPU_US, RSS, ERRORS]


def run_table(cols: Sequence[Col], runs: list[Run], anchor: Callable[[Run], Anchor]) -> list[str]:
    """A table of `runs` in the order given, one column per Col."""
    rows = ([c.cell(r, anchor(r)) for c in cols] for r in runs)
    return table([c.title for c in cols], "".join(c.align for c in cols), rows)


@dataclass(frozen=True)
class Context:
    opts: Options
    found: Findings
    data: Data
    mach: dict[str, str]
    now: dt.datetime
    elapsed: float
    argv: list[str]

    def run(self, contender: int, workers: int, payload: str, conns: int) -> Run | None:
        return next((r for r in self.found.runs if (r.contender, r.workers, r.payload, r.conns)
                     == (contender, workers, payload, conns)), None)

    def runs(self, payload: str, workers: int | None = None) -> list[Run]:
        return [r for r in self.found.runs
                if r.payload == payload and workers in (None, r.workers)]


def header(c: Context) -> list[str]:
    a, d, m = c.opts, c.data, c.mach
    return [
        f"# denyproxy benchmark — {c.now:%Y-%m-%d %H:%M}", "",
        (f"Machine: {m['nproc']} × {m['cpu']}, {m['memory']}, Linux {m['kernel']}; Python "
         f"{m['python']}, aiohttp {m['aiohttp']}, {m['nginx']}, {m['wrk']}, {m['redis']}."), "",
        (f"Command: `bench/run {' '.join(c.argv)}` — wrk for {a.duration:g} s per cell (after a "
        f"{a.warmup:g} s warm-up per server), X-API-Key rotating over {len(KEYS)} keys, GET over "
        f"{len(d.small)} task results of 8 contacts ({d.small_bytes:,} bytes each) at "
        f"`/api/v1/task/<id>`, served as static files by NGINX (worker_processes "
        f"{a.upstream_workers}). Rules: {a.filler_rules:,} filler rules per tenant plus the "
        f"matching ones ({d.rule_count:,} in all); about 1 in 8 of the payload's emails, phones "
        f"and LinkedIn URLs is denied for each key. Everything (wrk, upstream, proxy, Redis) "
        f"shares the same {m['nproc']} cores. Took {c.elapsed / 60:.1f} min."), "", CPU_LEGEND]


def foreign_load(c: Context) -> list[str]:
    others = [r.other_cpu_pct for r in c.found.runs]
    if not others:
        return []
    mean = sum(others) / len(others)
    return ["", (f"Waited {c.found.quiet_waited:.0f} s (budget {c.opts.quiet_budget:g} s) "
                 "for outside load to drop before cells; measured a cell again "
                 f"{c.found.remeasured} time(s) when outside load passed {DISTURBED_PCT:g} % "
                 "of a core during it (the least disturbed run kept)."), "",
            f"**Foreign load:** outside processes used on average {mean:.0f} % of a core (max "
            f"{max(others):.0f} %) during the measurements"
            + (" — this machine was not quiet; compare ratios within a row block rather than "
               "absolute figures." if mean > 10 else ".")]


def summary(c: Context) -> list[str]:
    """CPU per request at the mid concurrency, 1 worker: the figure least moved by other load."""
    conns = c.opts.mid_conns
    by = {(r.contender, r.payload): r for r in c.found.runs if r.workers == 1 and
          (r.conns == conns or r.payload in ("large", "unique"))}
    present = sorted({n for n, _ in by})
    if not present:
        return []

    def cells(n: int) -> list[str]:
        out = [str(n), NAMES[n]]
        for r in (by.get((n, p)) for p in ("small", "large", "unique")):
            out += ([f"{r.cpu_us_req:,.0f}", fmt(1e6 / r.cpu_us_req) if r.cpu_us_req else "–"]
                    if r else ["", ""])
        return [*out, c.found.check(n, 1)]

    head = ["#", "contender", "8-contact µs/req", "req/s per core", "200-contact µs/req",
            "req/s per core", "distinct 8-contact µs/req", "req/s per core", "filters?"]
    return ["", "## Summary: CPU cost per request (1 worker)", "",
            SUMMARY_INTRO.format(conns=conns), "", *table(head, "llrrrrrrl", map(cells, present))]


def small_tables(c: Context) -> list[str]:
    filters = Col("filters?", lambda r, a: c.found.check(r.contender, r.workers), "l")
    cols = [NUM, NAME, CONNS, RPS, RPS_X, P50, P99, P99_X, CPU, CPU_US, RSS, AUX, WRK, OTHER,
            ERRORS, filters]
    out = []
    for workers in c.opts.workers:
        rows = c.runs("small", workers)
        if not rows:
            continue
        ordered = [r for conns in c.opts.concurrency for r in
                   sorted((r for r in rows if r.conns == conns), key=lambda r: r.contender)]
        out += ["", f"## 8-contact task result, {workers} worker(s)", ""]
        out += run_table(cols, ordered, lambda r: c.run(2, r.workers, "small", r.conns))
    return out


def payload_table(c: Context, payload: str, title: str, intro: list[str]) -> list[str]:
    """A 1-worker table of one payload at the mid connection count (200-contact, distinct)."""
    runs = c.runs(payload)
    if not runs:
        return []
    anchor = c.run(2, 1, payload, runs[0].conns)
    return ["", f"## {title}, 1 worker, {runs[0].conns} connections", "", *intro,
            *run_table(PAYLOAD_COLS, sorted(runs, key=lambda r: r.contender), lambda r: anchor)]


def half_row(c: Context, r: Run, direct: Anchor, direct_half: Anchor) -> list[str]:
    low = c.run(r.contender, 1, "small", min(c.opts.concurrency))
    if low is None:
        return [str(r.contender), NAMES[r.contender]] + [""] * 7
    added = "" if direct is None else f"{low.p50_ms - direct.p50_ms:+.3f}"
    vs_direct = "" if direct_half is None else f"{r.p99_ms - direct_half.p99_ms:+.2f}"
    return [str(r.contender), NAMES[r.contender], f"{low.p50_ms:.3f}", added, fmt(r.target_rps),
            str(r.conns), fmt(r.rps), f"{r.p99_ms:.2f}", vs_direct]


def half_table(c: Context) -> list[str]:
    half = sorted(c.runs("half"), key=lambda r: r.contender)
    if not half:
        return []
    c_low = min(c.opts.concurrency)
    direct = c.run(1, 1, "small", c_low)
    direct_half = next((r for r in half if r.contender == 1), None)
    head = ["#", "contender", "unloaded p50 ms", "added p50 vs #1 ms", "half-load target req/s",
            "N", "achieved", "p99 ms", "p99 − #1's half-load p99 ms"]
    return ["", "## Added latency (1 worker, 8-contact result)", "",
            HALF_INTRO.format(c_low=c_low), "",
            *table(head, "llrrrrrrr", (half_row(c, r, direct, direct_half) for r in half))]


def lists_rows(small: Run | None, lists: Run, verdict: str) -> list[list[str]]:
    """#6 `small` (4 keys, key rules only) and #6 `lists` (the lists key), then lists ÷ small."""
    def row(name: str, r: Run, check: str) -> list[str]:
        return [name, fmt(r.rps), f"{r.p50_ms:.2f}", f"{r.p99_ms:.2f}", f"{r.cpu_us_req:.0f}",
                f"{r.rss_mb:.0f}", str(r.errors), check]
    if small is None:
        return [row("lists key", lists, verdict)]
    return [row("4 keys, no lists (`small`)", small, ""),
            row("lists key (`lists`)", lists, verdict),
            ["lists ÷ small", ratio(lists.rps, small.rps), "", ratio(lists.p99_ms, small.p99_ms),
             ratio(lists.cpu_us_req, small.cpu_us_req), "", "", ""]]


def lists_table(c: Context) -> list[str]:
    lists = next(iter(c.runs("lists", 1)), None)
    if lists is None or c.data.lists is None:
        return []
    small = c.run(lists.contender, 1, "small", lists.conns)
    head = ["#6 cell", "req/s", "p50 ms", "p99 ms", "CPU µs/req", "peak RSS MB", "errors",
            "filters?"]
    intro = LISTS_INTRO.format(count=c.data.lists.count, entries=c.data.lists.entries,
                               conns=lists.conns)
    return ["", f"## Named lists: a key with {c.data.lists.count} lists of "
            f"{c.data.lists.entries:,} entries (#6, 1 worker, {lists.conns} connections)", "",
            intro, "", *table(head, "lrrrrrrl", lists_rows(small, lists, c.found.lists_check))]


WHAT = {"small": "8-contact", "large": "200-contact", "unique": "distinct 8-contact (cold caches)",
        "detect": "8-contact detection workload"}


def profile_section(p: Profile) -> list[str]:
    active = p.samples
    busy = 100 * active / (p.seconds * p.rate)
    flame = f", flame graph: `{p.svg.name}`" if p.svg else ""
    title = (f"## Profile: {NAMES[p.contender]}, 1 worker, {WHAT[p.payload]} result, wrk "
             f"{p.conns} connections")
    intro = (f"py-spy record --nonblocking, {p.seconds} s at {p.rate} Hz: {active} samples of "
             f"the event-loop thread while not idle (≈{busy:.0f} % busy). Raw stacks: "
             f"`{p.raw.name}`{flame}.")
    own = ([f"{100 * n / active:.1f}", f"{100 * t / active:.1f}", f"`{f}`"]
           for f, n, t in p.rows)
    inclusive = ([f"{100 * t / active:.1f}", f"`{f}`"] for f, t in p.inclusive)
    return ["", title, "", intro, "", "Top 15 by own time:", "",
            *table(["own %", "incl %", "function (file)"], "rrl", own),
            "", "Top 15 by inclusive time (proxy/, rules/, aiohttp, orjson, redis):", "",
            *table(["incl %", "function (file)"], "rl", inclusive)]


def render(c: Context) -> str:
    out = header(c) + foreign_load(c) + summary(c) + small_tables(c)
    out += payload_table(c, "large", f"200-contact task result ({c.data.large_bytes:,} bytes)", [])
    out += payload_table(c, "unique", f"{len(c.data.unique):,} distinct 8-contact results (no "
                         "contact repeats: cold normalisation caches)", [UNIQUE_INTRO, ""])
    out += payload_table(c, "detect", f"detection workload: 8 contacts whose identifiers also "
                         f"stand in free text, unknown and object keys ({c.data.detect_bytes:,} "
                         "bytes)", [])
    out += half_table(c)
    out += lists_table(c)
    for p in c.found.profiles:
        out += profile_section(p) if p.rows else []
    if c.found.kafka:
        out += ["", "## Kafka (bench/kafka_bench.py)", "", "```", c.found.kafka, "```"]
    if c.found.notes:
        out += ["", "## Notes", ""] + [f"- {n}" for n in c.found.notes]
    return "\n".join([*out, "", FOOTER, ""])
