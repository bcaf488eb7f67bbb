"""`serve --workers N`: N processes accept on one port (SO_REUSEPORT), each with its own pools.

The parent keeps what must not be duplicated: the admin listener and the Kafka consumer. The
workers share the Redis store (the in-memory store is refused with more than one worker).
Metrics use prometheus-client's multiprocess mode, whose directory must be set before the
library loads: the parent re-executes itself once with it set, so every process agrees.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
from contextlib import AsyncExitStack, suppress
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event as EventType

from proxy import heap, logs
from proxy.settings import Settings

log = logging.getLogger("denyproxy")
_MULTIPROC = "PROMETHEUS_MULTIPROC_DIR"


def run(settings: Settings) -> int:
    if not os.environ.get(_MULTIPROC):
        os.environ[_MULTIPROC] = tempfile.mkdtemp(prefix="denyproxy-metrics-")
        os.execv(sys.executable, [sys.executable, "-m", "proxy.cli", *sys.argv[1:]])
    try:
        asyncio.run(supervise(settings))
    finally:
        shutil.rmtree(os.environ[_MULTIPROC], ignore_errors=True)
    return 0


def _worker(settings: Settings, listening: EventType) -> None:
    """One worker process: the proxy listener only; `listening` is set once it accepts."""
    from proxy import server

    logs.configure(settings.log_level, settings.log_format)
    heap.settle()
    server.run(
        settings,
        lambda: heap.collecting(server.serve_proxy(settings, on_listening=listening.set)),
    )


async def supervise(settings: Settings) -> None:
    """Admin + consumer here; workers started, restarted if they die, drained on SIGTERM."""
    from proxy import server

    context = multiprocessing.get_context("spawn")
    procs: list[tuple[BaseProcess, EventType]] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def spawn() -> tuple[BaseProcess, EventType]:
        listening = context.Event()
        proc = context.Process(target=_worker, args=(settings, listening))
        proc.start()
        return proc, listening

    async with AsyncExitStack() as stack:
        health = await server.start_control(settings, stack, multiprocess=True)
        health.checks.append(lambda: all(p.is_alive() and up.is_set() for p, up in procs))
        procs.extend(spawn() for _ in range(settings.workers))
        log.info("workers", extra={"fields": {"count": settings.workers,
                                              "listen": settings.listen}})
        while not stop.is_set():
            for i, (proc, _) in enumerate(procs):
                if not proc.is_alive():
                    log.error("worker died", extra={"fields": {"exitcode": proc.exitcode}})
                    procs[i] = spawn()
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1.0)
        health.draining = True
        for proc, _ in procs:
            if proc.pid:
                os.kill(proc.pid, signal.SIGTERM)
        for proc, _ in procs:
            await asyncio.to_thread(proc.join, settings.shutdown_timeout + 5)
