"""The contenders: one small class per kind; each knows its number, name and how to start."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from bench import nginx
from bench.data import Data
from bench.paths import BENCH
from bench.procs import Server, Supervisor
from tests.services import free_ports


@dataclass(frozen=True)
class Env:
    """What contenders start against: the supervisor, the data, the upstream, Redis."""

    sup: Supervisor
    work: Path
    data: Data
    upstream: Server
    redis_url: str | None
    mitmdump: Path


@dataclass(frozen=True)
class Skip:
    reason: str


class Contender:
    number: ClassVar[int]
    name: ClassVar[str]
    multi: ClassVar[bool] = False  # also asked to run with more than one worker
    lists: ClassVar[bool] = False  # measured with the named lists key (the `lists` cell)

    def start(self, env: Env, workers: int) -> Server | Skip:
        raise NotImplementedError


class Direct(Contender):
    number, name = 1, "direct (upstream NGINX)"

    def start(self, env: Env, workers: int) -> Server | Skip:
        return env.upstream if workers == 1 else Skip("the upstream itself")


class NginxProxy(Contender):
    number, name, multi = 2, "NGINX proxy_pass", True

    def start(self, env: Env, workers: int) -> Server | Skip:
        conf, port = nginx.proxy_conf(env.work, "nginx-proxy", env.upstream.port, workers, None)
        return env.sup.spawn("nginx-proxy", nginx.argv(conf), port)


class AiohttpPassThrough(Contender):
    number, name = 3, "aiohttp pass-through"

    def start(self, env: Env, workers: int) -> Server | Skip:
        (port,) = free_ports(1)
        argv = [sys.executable, str(BENCH / "passthrough.py"), "--upstream", env.upstream.url,
                "--listen", f"127.0.0.1:{port}"]
        return env.sup.spawn("passthrough", argv, port)


def denyproxy_argv(env: Env, workers: int) -> tuple[list[str], int]:
    """The `serve` options every denyproxy contender shares; (argv tail, port)."""
    port, admin = free_ports(2)
    return ["--upstream", env.upstream.url, "--listen", f"127.0.0.1:{port}",
            "--admin-listen", f"127.0.0.1:{admin}", "--log-level", "warning",
            "--workers", str(workers)], port


SERVE = [sys.executable, "-m", "proxy.cli", "serve"]


class DenyproxyExempt(Contender):
    number, name, multi = 4, "denyproxy, filter off", True

    def start(self, env: Env, workers: int) -> Server | Skip:
        common, port = denyproxy_argv(env, workers)
        extra = ["--exempt-paths", "/api"]
        if workers > 1:
            if env.redis_url is None:
                return Skip("needs Redis")
            extra += ["--redis", env.redis_url]
        return env.sup.spawn(f"denyproxy-exempt-{workers}", [*SERVE, *common, *extra], port)


class DenyproxyMemory(Contender):
    number, name, multi = 5, "denyproxy, memory store", True  # multi: to say why it cannot

    def start(self, env: Env, workers: int) -> Server | Skip:
        if workers > 1:
            return Skip("the in-memory store refuses --workers > 1 (each worker would hold "
                        "its own rules)")
        common, port = denyproxy_argv(env, workers)
        argv = [sys.executable, str(BENCH / "denyproxy_mem.py"), str(env.data.rules_jsonl),
                *common]
        return env.sup.spawn("denyproxy-memory", argv, port)


class DenyproxyRedis(Contender):
    number, name, multi, lists = 6, "denyproxy, Redis store", True, True

    def start(self, env: Env, workers: int) -> Server | Skip:
        if env.redis_url is None:
            return Skip("Redis did not start")
        common, port = denyproxy_argv(env, workers)
        return env.sup.spawn(f"denyproxy-redis-{workers}",
                             [*SERVE, *common, "--redis", env.redis_url], port)


class NginxLua(Contender):
    number, name, multi = 7, "NGINX + Lua filter", True

    def start(self, env: Env, workers: int) -> Server | Skip:
        ok, why = nginx.lua_available(env.work)
        if not ok:
            return Skip(f"NGINX lua module cannot load: {why}")
        conf, port = nginx.proxy_conf(env.work, "nginx-lua", env.upstream.port, workers,
                                      env.data.raw_deny)
        return env.sup.spawn("nginx-lua", nginx.argv(conf), port)


class Mitmproxy(Contender):
    number, name = 8, "mitmproxy + addon"

    def start(self, env: Env, workers: int) -> Server | Skip:
        if not env.mitmdump.exists():
            return Skip(f"mitmdump not found at {env.mitmdump}")
        (port,) = free_ports(1)
        confdir = env.work / "mitm"
        confdir.mkdir(exist_ok=True)
        argv = [str(env.mitmdump), "--mode", f"reverse:{env.upstream.url}",
                "--listen-host", "127.0.0.1", "--listen-port", str(port),
                "-s", str(BENCH / "mitm_filter.py"), "-q", "--set", f"confdir={confdir}",
                "--set", "flow_detail=0", "--set", "termlog_verbosity=error"]
        return env.sup.spawn("mitmproxy", argv, port,
                             env={"BENCH_DENY_FILE": str(env.data.raw_deny)})


CONTENDERS: tuple[Contender, ...] = (Direct(), NginxProxy(), AiohttpPassThrough(),
                                     DenyproxyExempt(), DenyproxyMemory(), DenyproxyRedis(),
                                     NginxLua(), Mitmproxy())
BY_NUMBER = {c.number: c for c in CONTENDERS}
NAMES = {c.number: c.name for c in CONTENDERS}
PROFILED = {5: "memory", 6: "redis"}  # filtered paths py-spy samples (1 worker)
