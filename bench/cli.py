"""`bench/run`'s main: set up the data, upstream and Redis, bench every contender, report."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench import nginx, plot, report
from bench.contenders import BY_NUMBER, Env
from bench.data import KEYS, Data, make_data
from bench.kafka_run import kafka_figures
from bench.machine import machine
from bench.options import Options, parse_args
from bench.procs import Server, Supervisor, wait_ready
from bench.results import Findings, save_runs
from bench.session import Session, bench_contender
from bench.wrk import Workload
from rules.model import Change, RuleChange
from tests.services import RedisServer

log = logging.getLogger("bench")


@dataclass(frozen=True)
class Stamp:
    now: dt.datetime
    started: float  # monotonic

    @property
    def text(self) -> str:
        return self.now.strftime("%Y-%m-%d-%H%M%S")


async def load_redis(url: str, changes: list[RuleChange], batches: list[list[Change]]) -> None:
    """The rules in one pipeline, then each named list in its own (create, entries, assign)."""
    from rules.store import RedisStore
    store = RedisStore.from_url(url, timeout=300.0)
    try:
        await store.apply(changes)
        for batch in batches:
            await store.apply(batch)
        await store.mark_initialised()  # what an operator's `denyproxy store init` does
    finally:
        await store.aclose()


def lists_wanted(opts: Options) -> int:
    """Entries per named list: only the Redis contender (#6) measures the lists key."""
    return opts.list_entries if 6 in opts.only else 0


def needs_redis(opts: Options) -> bool:
    return 6 in opts.only or (4 in opts.only and 2 in opts.workers)


def start_redis(stack: contextlib.ExitStack, work: Path, data: Data) -> RedisServer:
    redis = RedisServer(work / "redis")
    stack.callback(redis.stop)
    redis.start()
    lists = data.lists
    log.info(f"loading {data.rule_count} rules into Redis" + (
        f", and {lists.count} lists of {lists.entries} entries" if lists else ""))
    asyncio.run(load_redis(redis.url, data.changes, lists.batches if lists else []))
    return redis


def start_upstream(sup: Supervisor, work: Path, data: Data, workers: int) -> Server:
    conf, port = nginx.upstream_conf(work, data.www, workers)
    upstream = sup.spawn("upstream", nginx.argv(conf), port)
    wait_ready(upstream, data.small[0], KEYS[0])
    return upstream


def bench_all(opts: Options, work: Path, data: Data, stamp: str) -> Findings:
    """Every contender and worker count; all servers stopped on the way out."""
    with contextlib.ExitStack() as stack:
        sup = stack.enter_context(Supervisor(work))
        upstream = start_upstream(sup, work, data, opts.upstream_workers)
        redis = start_redis(stack, work, data) if needs_redis(opts) else None
        redis_aux = [Server("redis", redis.proc, redis.port, redis.log_path)] \
            if redis is not None and redis.proc is not None else []
        env = Env(sup, work, data, upstream, redis.url if redis else None, opts.mitmdump)
        s = Session(opts, env, Workload.write(work, data), stamp, redis_aux)
        for workers in opts.workers:
            for n in opts.only:
                if workers == 1 or BY_NUMBER[n].multi:
                    bench_contender(s, BY_NUMBER[n], workers)
        s.found.quiet_waited = s.quiet.waited
        return s.found


def write_results(opts: Options, found: Findings, data: Data, stamp: Stamp) -> None:
    text = report.render(report.Context(opts, found, data, machine(), stamp.now,
                                        time.monotonic() - stamp.started, shown_argv()))
    md = opts.results / f"{stamp.text}.md"
    md.write_text(text)
    save_runs(opts.results / f"{stamp.text}.json", found.runs)
    png = plot.plot(found, opts.workers, opts.concurrency, stamp.text,
                    opts.results / f"{stamp.text}.png")
    print(text)
    log.info(f"wrote {md}" + (f" and {png}" if png else "") +
             f" in {time.monotonic() - stamp.started:.0f}s")


def shown_argv() -> list[str]:
    """This run's flags for the report, without the --mitmdump path bench/run adds."""
    out, skip = [], False
    for arg in sys.argv[1:]:
        if skip:
            skip = False
        elif arg == "--mitmdump":
            skip = True
        elif not arg.startswith("--mitmdump="):
            out.append(arg)
    return out


def on_term(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def setup_logging() -> None:
    """Only the bench's own lines, as `[bench HH:MM:SS] message` on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("[bench %(asctime)s] %(message)s", "%H:%M:%S"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    setup_logging()
    stamp = Stamp(dt.datetime.now(), time.monotonic())
    opts.results.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="denyproxy-bench-"))
    work.chmod(0o755)  # NGINX workers run as nobody and read the payloads from here
    signal.signal(signal.SIGTERM, on_term)
    try:
        log.info(f"workdir {work}; generating payloads, {opts.filler_rules} filler "
                 f"rules/tenant and {lists_wanted(opts)} entries per named list")
        data = make_data(work, opts.filler_rules, opts.unique_docs, lists_wanted(opts))
        found = bench_all(opts, work, data, stamp.text)
        if not opts.no_kafka:
            found.kafka = kafka_figures(work, opts.quick)
        write_results(opts, found, data, stamp)
        return 0
    except KeyboardInterrupt:
        log.info("interrupted: stopping every server")
        return 130
    finally:
        shutil.rmtree(work, ignore_errors=True)
