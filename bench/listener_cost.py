"""CPU µs per request of an HTTP listener alone: what a leaner one than aiohttp's would save.

    .venv/bin/python -m bench.listener_cost [--seconds 8] [--rounds 2] [--conns 16]

Three listeners answer every request with the same 3,190-byte JSON body (the 8-contact result's
size), nothing forwarded: aiohttp's web server with one catch-all route (as the proxy listener
has), aiohttp's low-level server (`web.Server`: no application, router or `web.Request`) and a
bare asyncio Protocol parsing with httptools (llhttp, already the upstream client's parser).
Each is started in its own process, warmed up, then driven by wrk; its CPU is the process's
utime+stime over the run. Issue #11: the proxy's request is ~250-350 µs here; the differences
between the rows are what a leaner listener could take off it.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import sys
import time
from pathlib import Path

from bench.proctree import CLK_TCK, stat_cpu_ticks
from tests.services import free_ports

BODY = b'{"contacts": "' + b"x" * 3174 + b'"}'
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
LISTENERS = ("aiohttp", "lowlevel", "httptools")


def serve_aiohttp(port: int) -> None:
    from aiohttp import web

    async def answer(request: web.Request) -> web.Response:
        return web.Response(body=BODY, content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def serve_lowlevel(port: int) -> None:
    from aiohttp import web

    async def answer(request: web.BaseRequest) -> web.Response:
        return web.Response(body=BODY, content_type="application/json")

    async def main() -> None:
        server = web.Server(answer, access_log=None)
        runner = web.ServerRunner(server)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        await asyncio.Event().wait()

    asyncio.run(main())


class Bare(asyncio.Protocol):
    """One response per parsed request (keep-alive, pipelining as llhttp reports them)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        import httptools

        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.parser = httptools.HttpRequestParser(self)

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_message_complete(self) -> None:
        self.transport.write(HEAD % len(BODY) + BODY)


def serve_httptools(port: int) -> None:
    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(Bare, "127.0.0.1", port)
        await server.serve_forever()

    asyncio.run(main())


SERVE = {"aiohttp": serve_aiohttp, "lowlevel": serve_lowlevel, "httptools": serve_httptools}


def cpu_seconds(pid: int) -> float:
    return stat_cpu_ticks(Path(f"/proc/{pid}/stat").read_text()) / CLK_TCK


def wrk(url: str, conns: int, seconds: float) -> int:
    """Requests wrk completed (its plain summary: one URL, no script needed)."""
    argv = ["wrk", "-t1", f"-c{conns}", f"-d{seconds:g}s", url]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    found = re.search(r"(\d+) requests in", out)
    assert found is not None, f"wrk printed no summary:\n{out}"
    return int(found.group(1))


def measure(listener: str, conns: int, seconds: float) -> tuple[float, float]:
    """(requests per second, CPU µs per request) of one listener."""
    (port,) = free_ports(1)
    argv = [sys.executable, "-m", "bench.listener_cost", "--serve", listener, "--port", str(port)]
    proc = subprocess.Popen(argv)
    try:
        url = f"http://127.0.0.1:{port}/api/v1/task/1"
        for _ in range(100):  # up within 10 s
            time.sleep(0.1)
            if subprocess.run(["curl", "-sf", "-o", "/dev/null", url]).returncode == 0:
                break
        wrk(url, conns, 2)  # warm-up
        before = cpu_seconds(proc.pid)
        requests = wrk(url, conns, seconds)
        used = cpu_seconds(proc.pid) - before
        return requests / seconds, used * 1e6 / requests
    finally:
        proc.terminate()
        proc.wait()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--conns", type=int, default=16)
    p.add_argument("--serve", choices=LISTENERS, help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.serve:
        SERVE[a.serve](a.port)
        return
    print("| listener | round | req/s | CPU µs/req |\n|---|--:|--:|--:|")
    for round_ in range(1, a.rounds + 1):
        for listener in LISTENERS:
            rps, cpu = measure(listener, a.conns, a.seconds)
            print(f"| {listener} | {round_} | {rps:,.0f} | {cpu:.1f} |", flush=True)


if __name__ == "__main__":
    main()
