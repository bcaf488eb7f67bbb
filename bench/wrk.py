"""The load generator: wrk with a Lua script rotating API keys and paths, results as JSON."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from bench.data import KEYS, Data

# `done()` prints one BENCHJSON line; `delay()` paces each connection (0 = closed loop).
SCRIPT = r"""
local paths, keys, pace = {}, {}, 0
local n = 0
function init(args)
    for line in io.lines(args[1]) do paths[#paths + 1] = line end
    for line in io.lines(args[2]) do keys[#keys + 1] = line end
    pace = tonumber(args[3] or "0") or 0
    math.randomseed(os.time() + (tonumber(tostring({}):sub(8), 16) or 0))
    n = math.random(1, 1000)
end
function request()
    n = n + 1
    local key = keys[(n % #keys) + 1]
    local path = paths[(math.floor(n / #keys) % #paths) + 1]
    return wrk.format("GET", path, { ["X-API-Key"] = key })
end
function delay()
    if pace > 0 then return math.floor(math.random() * 2 * pace + 0.5) end
    return 0
end
function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        'BENCHJSON {"requests":%d,"duration_us":%d,"bytes":%d,"p50":%d,"p90":%d,"p99":%d,' ..
        '"p999":%d,"mean":%.1f,"max":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\n',
        summary.requests, summary.duration, summary.bytes,
        latency:percentile(50), latency:percentile(90), latency:percentile(99),
        latency:percentile(99.9), latency.mean, latency.max,
        e.connect, e.read, e.write, e.status, e.timeout))
end
"""
MARK = "BENCHJSON "
ERROR_KINDS = ("connect", "read", "write", "status", "timeout")


@dataclass(frozen=True)
class WrkResult:
    """wrk's summary; latencies in µs as wrk reports them."""

    requests: int
    duration_us: int
    p50: int
    p99: int
    p999: int
    errors: int

    @property
    def rps(self) -> float:
        return self.requests / (self.duration_us / 1e6)


@dataclass(frozen=True)
class Workload:
    """The files wrk reads: its script, the keys and one path list per payload; a payload
    with its own keys (`lists`: the 8-contact results with the lists key) names them."""

    script: Path
    keys: Path
    paths: dict[str, Path]  # payload ("small", "large", "unique", "detect", "lists") -> paths
    own_keys: dict[str, Path] = field(default_factory=dict)  # payload -> its keys file

    @classmethod
    def write(cls, work: Path, data: Data) -> Workload:
        script = work / "bench.lua"
        script.write_text(SCRIPT)
        keys = work / "keys.txt"
        keys.write_text("\n".join(KEYS) + "\n")
        paths = {}
        for payload, listed in (("small", data.small), ("large", data.large),
                                ("unique", data.unique), ("detect", data.detect)):
            paths[payload] = work / f"{payload}.txt"
            paths[payload].write_text("\n".join(listed) + "\n")
        own_keys = {}
        if data.lists is not None:
            paths["lists"] = paths["small"]
            own_keys["lists"] = work / "lists-keys.txt"
            own_keys["lists"].write_text(data.lists.key + "\n")
        return cls(script, keys, paths, own_keys)

    def keys_for(self, payload: str) -> Path:
        return self.own_keys.get(payload, self.keys)

    def argv(self, url: str, payload: str, threads: int, conns: int, seconds: int,
             pace_ms: float = 0.0) -> list[str]:
        return ["wrk", "-t", str(threads), "-c", str(conns), "-d", f"{seconds}s",
                "--timeout", "10s", "-s", str(self.script), url, "--",
                str(self.paths[payload]), str(self.keys_for(payload)), f"{pace_ms:.3f}"]


def parse_output(stdout: str) -> WrkResult | None:
    """The BENCHJSON line of the script's `done()` hook, if wrk printed one."""
    for line in stdout.splitlines():
        if line.startswith(MARK):
            out = json.loads(line[len(MARK):])
            return WrkResult(out["requests"], out["duration_us"], out["p50"], out["p99"],
                             out["p999"], sum(int(out[k]) for k in ERROR_KINDS))
    return None


def run(load: Workload, url: str, payload: str, conns: int, duration: float,
        pace_ms: float = 0.0) -> WrkResult:
    threads = 1 if conns < 8 else 2
    argv = load.argv(url, payload, threads, conns, max(1, round(duration)), pace_ms)
    res = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=duration + 60)
    result = parse_output(res.stdout)
    if result is None:
        raise RuntimeError(f"wrk gave no result (exit {res.returncode}):\n{res.stdout}\n"
                           f"{res.stderr}")
    return result
