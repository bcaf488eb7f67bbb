"""denyproxy side by side with NGINX, a plain aiohttp pass-through, Lua and mitmproxy.

Run through `bench/run` (which installs what is missing); `bench/run --help` lists the flags.
Every server listens on a free port on 127.0.0.1, is measured in turn with `wrk`, and is
stopped before the next one starts (and all of them on Ctrl-C or an error).

Contenders
  1 direct          wrk → upstream NGINX (the ceiling)
  2 nginx           NGINX proxy_pass with upstream keepalive (the C pass-through anchor)
  3 aiohttp-pass    bench/passthrough.py: one ClientSession, read body, return it
  4 dp-exempt       denyproxy --exempt-paths /api (forwarding only, no filtering)
  5 dp-memory       denyproxy filtering, in-memory store (100k filler rules per tenant)
  6 dp-redis        denyproxy filtering, Redis store (100k filler rules per tenant)
  7 nginx-lua       NGINX + lua-nginx-module body filter (lua-cjson), same filtering
  8 mitmproxy       mitmdump --mode reverse + bench/mitm_filter.py, same filtering
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import datetime as dt
import hashlib
import json
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402

from rules.model import DEFAULT_REGION, RuleChange, RuleType, tenant_of  # noqa: E402
from rules.normalize import normalize_all  # noqa: E402
from tests.fake_openmart import person  # noqa: E402
from tests.services import RedisServer, free_ports  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
KEYS = [f"bench-key-{i}" for i in range(4)]
NAMES = {
    1: "direct (upstream NGINX)",
    2: "NGINX proxy_pass",
    3: "aiohttp pass-through",
    4: "denyproxy, filter off",
    5: "denyproxy, memory store",
    6: "denyproxy, Redis store",
    7: "NGINX + Lua filter",
    8: "mitmproxy + addon",
}
FILTERS = {5, 6, 7, 8}
MULTI = {2, 4, 6, 7}  # measured with 2 workers too (5: the memory store refuses --workers 2)
LUA_MODULES = ("/usr/lib/nginx/modules/ndk_http_module.so",
               "/usr/lib/nginx/modules/ngx_http_lua_module.so")


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------ payloads/rules


def denied_for(key: str, value: str) -> bool:
    """About 1 in 8 of the values in the payloads are denied for each key."""
    return int(hashlib.sha256(f"{key}|{value}".encode()).hexdigest()[:8], 16) % 8 == 0


def contacts(file_no: int, count: int, domain: str, unique: bool = False) -> list[dict]:
    firsts = ["Jane", "Karl", "Ada", "Alan", "Grace", "Linus", "Barbara", "Edsger", "Donald",
              "Frances", "John", "Margaret"]
    lasts = ["Doe", "Marx", "Lovelace", "Turing", "Hopper", "Torvalds", "Liskov", "Dijkstra",
             "Knuth", "Allen", "Backus", "Hamilton"]
    rows = []
    for i in range(count):
        first, last = firsts[i % len(firsts)], lasts[(i // len(firsts) + i) % len(lasts)]
        suffix = str(i) if i >= len(firsts) else ""
        if unique:  # never repeated across files: every value misses the normalise caches
            area, exchange = 300 + file_no % 600, 200 + file_no // 600
            phones = [f"+1{area}{exchange}{1000 + 2 * i:04d}",
                      f"+1{area}{exchange}{1001 + 2 * i:04d}"]
            slug = f"{first}{last}{suffix}-{file_no}".lower()
        else:
            phones = [f"+1512{200 + file_no:03d}{1000 + 2 * i:04d}",
                      f"+1737{200 + file_no:03d}{1001 + 2 * i:04d}"]
            slug = None
        rows.append(person(first, last + suffix, domain, phones, slug))
    return rows


def task_doc(task_id: str, people: list[dict]) -> dict:
    return {"task_id": task_id, "status": "COMPLETED", "tracking_id": f"trk-{task_id}",
            "data": people}


def identifiers(doc: Any) -> dict[str, RuleType]:
    """Raw email / phone / LinkedIn strings of a task doc, by type (payload shapes known)."""
    out: dict[str, RuleType] = {}
    for row in doc["data"]:
        out[row["email"]["email"]] = RuleType.EMAIL
        for p in row["phones"]:
            out[p["phone_number"]] = RuleType.PHONE
        out[row["linkedin_url"]] = RuleType.LINKEDIN
    return out


@dataclass
class Data:
    www: Path
    small: list[str]  # request paths
    large: list[str]
    unique: list[str]
    small_bytes: int
    large_bytes: int
    rules_jsonl: Path  # normalised, for denyproxy's memory store
    raw_deny: Path  # `key\tvalue`, raw, for Lua and mitmproxy
    changes: list[RuleChange]
    denied_raw: dict[str, set[str]]  # key -> raw payload values denied (not the filler)
    docs: dict[str, dict]  # path -> doc
    rule_count: int


def make_data(work: Path, filler: int, unique_docs: int) -> Data:
    www = work / "www"
    task_dir = www / "api" / "v1" / "task"
    task_dir.mkdir(parents=True)
    docs: dict[str, dict] = {}
    small, large = [], []
    for i in range(16):
        tid = f"s{i:02d}-{hashlib.md5(str(i).encode()).hexdigest()[:12]}"
        docs[f"/api/v1/task/{tid}"] = task_doc(tid, contacts(i, 8, f"acme{i}.com"))
        small.append(f"/api/v1/task/{tid}")
    for i in range(4):
        tid = f"l{i}-{hashlib.md5(str(100 + i).encode()).hexdigest()[:12]}"
        docs[f"/api/v1/task/{tid}"] = task_doc(tid, contacts(50 + i, 200, f"big{i}.com"))
        large.append(f"/api/v1/task/{tid}")
    unique = []
    for i in range(unique_docs):
        tid = f"u{i:05d}"
        docs[f"/api/v1/task/{tid}"] = task_doc(tid, contacts(i, 8, f"u{i}.example.org",
                                                             unique=True))
        unique.append(f"/api/v1/task/{tid}")
    sizes = {}
    for path, doc in docs.items():
        body = orjson.dumps(doc)
        (www / path.lstrip("/")).write_bytes(body)
        sizes[path] = len(body)

    # Rules: per key, the denied payload values plus `filler` synthetic rules (70% emails,
    # 20% phones, 10% LinkedIn URLs) that never match, so lookups hit a realistic-size set.
    denied_raw: dict[str, set[str]] = {k: set() for k in KEYS}
    by_type_raw: dict[str, dict[RuleType, list[str]]] = {k: collections.defaultdict(list)
                                                         for k in KEYS}
    for doc in docs.values():
        for value, rule_type in identifiers(doc).items():
            for key in KEYS:
                if denied_for(key, value):
                    denied_raw[key].add(value)
                    by_type_raw[key][rule_type].append(value)
    n_email, n_phone = int(filler * 0.7), int(filler * 0.2)
    n_link = filler - n_email - n_phone
    filler_raw = {
        RuleType.EMAIL: [f"filler.{n}@example{n % 997}.com" for n in range(n_email)],
        RuleType.PHONE: [f"+1{212 + n % 700:03d}{200 + n // 10000 % 800:03d}{n % 10000:04d}"
                         for n in range(n_phone)],
        RuleType.LINKEDIN: [f"https://linkedin.com/in/filler-{n}" for n in range(n_link)],
    }
    filler_normal = {t: normalize_all(t, v, DEFAULT_REGION).values for t, v in filler_raw.items()}
    changes: list[RuleChange] = []
    rules_jsonl = work / "rules.jsonl"
    raw_deny = work / "deny.tsv"
    count = 0
    with rules_jsonl.open("w") as rj, raw_deny.open("w") as rd:
        for key in KEYS:
            tenant = tenant_of(key)
            for rule_type in (RuleType.EMAIL, RuleType.PHONE, RuleType.LINKEDIN):
                result = normalize_all(rule_type, by_type_raw[key][rule_type], DEFAULT_REGION)
                own, bad = result.values, result.rejected
                assert not bad, bad
                values = tuple(own) + tuple(filler_normal[rule_type])
                changes.append(RuleChange("add", tenant, rule_type, values))
                rj.write(json.dumps({"tenant": tenant, "type": rule_type.value,
                                     "values": list(values)}) + "\n")
                count += len(values)
                for raw in by_type_raw[key][rule_type] + filler_raw[rule_type]:
                    rd.write(f"{key}\t{raw}\n")
    return Data(www, small, large, unique, sizes[small[0]], sizes[large[0]], rules_jsonl, raw_deny,
                changes, denied_raw, docs, count)


# ------------------------------------------------------------------------------ processes


def tree_pids(root: int) -> list[int]:
    children: dict[int, list[int]] = collections.defaultdict(list)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        children[ppid].append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def cpu_ticks(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies over all CPUs from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])
    return total - idle, total


def children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def peak_rss_kib(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


@dataclass
class Server:
    name: str
    proc: subprocess.Popen
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def pids(self) -> list[int]:
        return tree_pids(self.proc.pid) if self.proc.poll() is None else []

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # stragglers of the group (workers)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)


RUNNING: list[Server] = []


def spawn(name: str, argv: list[str], port: int, work: Path, env: dict | None = None) -> Server:
    logf = work / f"{name}.log"
    setpriv = shutil.which("setpriv")
    full = [setpriv, "--pdeathsig", "KILL", "--", *argv] if setpriv else argv
    with logf.open("ab") as out:
        proc = subprocess.Popen(full, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, **(env or {})})
    server = Server(name, proc, port, logf)
    RUNNING.append(server)
    return server


def stop(server: Server | None) -> None:
    if server is None:
        return
    server.stop()
    if server in RUNNING:
        RUNNING.remove(server)


def http_get(url: str, key: str | None = None, timeout: float = 5.0) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers={"X-API-Key": key} if key else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_ready(server: Server, path: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if not server.alive():
            raise RuntimeError(f"{server.name} exited:\n{tail(server.log)}")
        try:
            status, _ = http_get(server.url + path, KEYS[0], timeout=2)
            if status == 200:
                return
            last = f"HTTP {status}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.1)
    raise RuntimeError(f"{server.name} not ready after {timeout}s ({last}):\n{tail(server.log)}")


def tail(path: Path, lines: int = 30) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


# ------------------------------------------------------------------------------ nginx


def nginx_conf(work: Path, name: str, workers: int, server_block: str, http_extra: str = "",
               modules: str = "") -> Path:
    prefix = work / f"nginx-{name}"
    prefix.mkdir(exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(f"""{modules}
worker_processes {workers};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
daemon off;
master_process on;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    server_tokens off;
{http_extra}
{server_block}
}}
""")
    return conf


def start_nginx(work: Path, name: str, conf: Path, port: int) -> Server:
    return spawn(name, ["nginx", "-c", str(conf), "-p", str(conf.parent),
                        "-e", str(conf.parent / "error.log")], port, work)


def upstream_nginx(work: Path, data: Data, workers: int) -> Server:
    (port,) = free_ports(1)
    block = f"""
    open_file_cache max=1000 inactive=60s;
    server {{
        listen 127.0.0.1:{port} reuseport backlog=4096;
        root {data.www};
        types {{ }}
        default_type application/json;
        location / {{ }}
    }}"""
    return start_nginx(work, "upstream", nginx_conf(work, "upstream", workers, block), port)


def proxy_nginx(work: Path, upstream: Server, workers: int, lua: Path | None) -> Server:
    (port,) = free_ports(1)
    name = "nginx-lua" if lua else "nginx-proxy"
    lua_loc = ""
    http_extra = f"upstream up {{ server 127.0.0.1:{upstream.port}; keepalive 64; }}"
    modules = ""
    if lua:
        modules = "\n".join(f"load_module {m};" for m in LUA_MODULES)
        http_extra += f"""
    lua_package_path "{BENCH}/?.lua;;";
    lua_package_cpath "/usr/lib/x86_64-linux-gnu/lua/5.1/?.so;/usr/lib/lua/5.1/?.so;;";
    init_by_lua_block {{
        denyfilter = require("lua_filter")
        denyfilter.load("{lua}")
    }}"""
        lua_loc = """
            header_filter_by_lua_block { denyfilter.header() }
            body_filter_by_lua_block { denyfilter.body() }"""
    block = f"""
    server {{
        listen 127.0.0.1:{port} reuseport backlog=4096;
        location / {{
            proxy_pass http://up;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;{lua_loc}
        }}
    }}"""
    conf = nginx_conf(work, f"{name}-{workers}", workers, block, http_extra, modules)
    return start_nginx(work, name, conf, port)


def lua_available(work: Path) -> tuple[bool, str]:
    """Can this NGINX load the Debian lua module and lua-cjson? (`nginx -t` on a tiny conf)."""
    if not all(Path(m).exists() for m in LUA_MODULES):
        return False, "libnginx-mod-http-lua is not installed"
    prefix = work / "nginx-luatest"
    prefix.mkdir(exist_ok=True)
    conf = prefix / "nginx.conf"
    modules = "\n".join(f"load_module {m};" for m in LUA_MODULES)
    conf.write_text(f"""{modules}
pid {prefix}/nginx.pid;
events {{ }}
http {{
    lua_package_cpath "/usr/lib/x86_64-linux-gnu/lua/5.1/?.so;/usr/lib/lua/5.1/?.so;;";
    init_by_lua_block {{ require "cjson" }}
}}
""")
    res = subprocess.run(["nginx", "-t", "-c", str(conf), "-p", str(prefix), "-e",
                          str(prefix / "error.log")], capture_output=True, text=True)
    if res.returncode != 0:
        return False, (res.stderr or res.stdout).strip().splitlines()[-1]
    return True, ""


# ------------------------------------------------------------------------------ wrk

WRK_SCRIPT = r"""
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


@dataclass
class Run:
    contender: int
    workers: int
    payload: str
    conns: int
    rps: float
    p50_ms: float
    p99_ms: float
    p999_ms: float
    cpu_pct: float
    cpu_us_req: float
    rss_mb: float
    aux_cpu_pct: float
    errors: int
    requests: int
    wrk_cpu_pct: float = 0.0
    other_cpu_pct: float = 0.0
    paced_ms: float = 0.0
    target_rps: float = 0.0


def wrk(url: str, conns: int, duration: float, paths_file: Path, keys_file: Path,
        script: Path, pace_ms: float = 0.0) -> dict:
    threads = 1 if conns < 8 else 2
    argv = ["wrk", "-t", str(threads), "-c", str(conns), "-d", f"{max(1, round(duration))}s",
            "--timeout", "10s", "-s", str(script), url, "--", str(paths_file),
            str(keys_file), f"{pace_ms:.3f}"]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60)
    for line in res.stdout.splitlines():
        if line.startswith("BENCHJSON "):
            return json.loads(line[len("BENCHJSON "):])
    raise RuntimeError(f"wrk gave no result (exit {res.returncode}):\n{res.stdout}\n{res.stderr}")


QUIET = {"budget": 0.0, "waited": 0.0}


def wait_quiet(threshold_pct: float = 25.0, per_cell: float = 8.0) -> None:
    """Before a cell: wait (at most `per_cell` s, and within the run's --quiet-budget) while
    processes outside the bench keep more than `threshold_pct` of a core busy. Our servers
    are idle here, so the busy time is someone else's."""
    waited = 0.0
    while True:
        b0 = machine_ticks()[0]
        time.sleep(0.5)
        busy = 100 * (machine_ticks()[0] - b0) / CLK_TCK / 0.5
        if busy <= threshold_pct or waited >= per_cell or QUIET["waited"] >= QUIET["budget"]:
            return
        waited += 0.5
        QUIET["waited"] += 0.5


def measure(server: Server, aux: list[Server], contender: int, workers: int, payload: str,
            conns: int, duration: float, paths_file: Path, keys_file: Path, script: Path,
            pace_ms: float = 0.0) -> Run:
    wait_quiet()
    pids = server.pids()
    aux_pids = [p for s in aux for p in s.pids()]
    m0, w0 = machine_ticks()[0], children_cpu()
    t0, c0, a0 = time.monotonic(), cpu_ticks(pids), cpu_ticks(aux_pids)
    out = wrk(server.url, conns, duration, paths_file, keys_file, script, pace_ms)
    pids = server.pids()  # workers may have been (re)spawned
    t1, c1, a1 = time.monotonic(), cpu_ticks(pids), cpu_ticks(aux_pids)
    m1, w1 = machine_ticks()[0], children_cpu()
    cpu_s = (c1 - c0) / CLK_TCK
    wall = t1 - t0
    reqs = out["requests"]
    rps = reqs / (out["duration_us"] / 1e6)
    errors = out["connect"] + out["read"] + out["write"] + out["status"] + out["timeout"]
    aux_pct = 100 * (a1 - a0) / CLK_TCK / wall
    wrk_pct = 100 * (w1 - w0) / wall
    busy_pct = 100 * (m1 - m0) / CLK_TCK / wall
    own_pct = 100 * cpu_s / wall
    other = max(0.0, busy_pct - own_pct - aux_pct - wrk_pct) if aux_pids or pids else 0.0
    if server.name == "upstream":  # direct: the contender is the upstream
        other = max(0.0, busy_pct - own_pct - wrk_pct)
    return Run(contender, workers, payload, conns, rps, out["p50"] / 1000, out["p99"] / 1000,
               out["p999"] / 1000, own_pct, 1e6 * cpu_s / max(reqs, 1),
               peak_rss_kib(pids) / 1024, aux_pct, errors, reqs, wrk_pct, other, pace_ms)


# ------------------------------------------------------------------------------ checks


def strings_of(node: Any) -> set[str]:
    out: set[str] = set()
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, dict):
            stack.extend(n.values())
        elif isinstance(n, list):
            stack.extend(n)
        elif isinstance(n, str):
            out.add(n)
    return out


def check_filtering(server: Server, data: Data) -> str:
    """Does the response for key 0 still carry the values denied for key 0?"""
    leaked = removed = 0
    for path in data.small[:4] + data.large[:1]:
        status, body = http_get(server.url + path, KEYS[0])
        if status != 200:
            return f"HTTP {status}"
        present = strings_of(json.loads(body))
        expected = strings_of(data.docs[path]) & data.denied_raw[KEYS[0]]
        leaked += len(expected & present)
        removed += len(expected - present)
    if removed and not leaked:
        return f"yes ({removed} removed)"
    if leaked and not removed:
        return "no (pass-through)"
    return f"PARTIAL ({removed} removed, {leaked} left)"


# ------------------------------------------------------------------------------ profile


def aggregate_raw(raw: Path, top: int = 15) -> tuple[list[tuple[str, int, int]], int]:
    """py-spy --format raw (collapsed stacks) → [(function, own samples, total samples)]."""
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack or not count_s.isdigit():
            continue
        count = int(count_s)
        samples += count
        frames = [_frame(f) for f in stack.split(";")]
        frames = [f for f in frames if not f.startswith("process ") and not f.startswith("thread ")]
        if not frames:
            continue
        own[frames[-1]] += count
        for f in set(frames):
            total[f] += count
    rows = [(f, n, total[f]) for f, n in own.most_common(top)]
    return rows, samples


def _frame(frame: str) -> str:
    """`handle (proxy/forward.py:123)` → `handle (proxy/forward.py)`; site-packages shortened."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    file, _, _line = where.rpartition(":")
    file = file or where
    for marker in ("site-packages/", "lib/python3.11/"):
        if marker in file:
            file = file.split(marker, 1)[1]
    file = file.replace(str(ROOT) + "/", "")
    return f"{name} ({file})" if file else name


def top_inclusive(raw: Path, prefixes: tuple[str, ...], top: int = 15) -> list[tuple[str, int]]:
    total: collections.Counter[str] = collections.Counter()
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not count_s.isdigit():
            continue
        for f in {_frame(x) for x in stack.split(";")}:
            if any(p in f for p in prefixes):
                total[f] += int(count_s)
    return total.most_common(top)


# ------------------------------------------------------------------------------ main


def machine() -> dict[str, str]:
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break

    def version(argv: list[str]) -> str:
        with contextlib.suppress(Exception):
            res = subprocess.run(argv, capture_output=True, text=True, timeout=10)
            return (res.stdout + res.stderr).strip().splitlines()[0]
        return "?"

    import aiohttp
    mem = "?"
    with contextlib.suppress(OSError):
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kib / 1024 / 1024:.1f} GiB"
    return {
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "memory": mem,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "aiohttp": aiohttp.__version__,
        "nginx": version(["nginx", "-v"]),
        "wrk": version(["wrk", "-v"]),
        "redis": version(["redis-server", "--version"]),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/run", description=__doc__,
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
    p.add_argument("--upstream-workers", type=int, default=1,
                   help="worker_processes of the upstream NGINX (1)")
    p.add_argument("--quiet-budget", type=float, default=None,
                   help="seconds the whole run may wait for outside load to drop before a "
                        "cell (60; --quick 0)")
    p.add_argument("--no-profile", action="store_true", help="skip the py-spy profile")
    p.add_argument("--no-kafka", action="store_true", help="skip bench/kafka_bench.py")
    p.add_argument("--mitmdump", default=str(BENCH / ".venv-mitm" / "bin" / "mitmdump"))
    p.add_argument("--results", default=str(BENCH / "results"))
    args = p.parse_args(argv)
    args.duration = args.duration or (1.0 if args.quick else 10.0)
    args.concurrency = [int(c) for c in (args.concurrency or ("1,16" if args.quick else
                                                              "1,16,64")).split(",")]
    args.only = sorted({int(c) for c in args.only.split(",")}) if args.only else list(NAMES)
    args.workers = sorted({int(w) for w in args.workers.split(",")})
    if args.quiet_budget is None:
        args.quiet_budget = 0.0 if args.quick else 60.0
    args.warmup = 1.0 if args.quick else 2.0
    args.profile_s = 3 if args.quick else 10
    return args


@dataclass
class Ctx:
    args: argparse.Namespace
    work: Path
    data: Data
    upstream: Server
    redis: RedisServer | None
    script: Path
    keys_file: Path
    small_file: Path
    large_file: Path
    unique_file: Path
    runs: list[Run] = field(default_factory=list)
    checks: dict[tuple[int, int], str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    profiles: list[dict[str, Any]] = field(default_factory=list)
    stamp: str = ""
    kafka: str = ""


def start_contender(ctx: Ctx, n: int, workers: int) -> tuple[Server | None, str]:
    """The server for contender n (None and a reason when it cannot run)."""
    work, data, up = ctx.work, ctx.data, ctx.upstream
    py = sys.executable
    if n == 1:
        return (up if workers == 1 else None), "the upstream itself"
    if n == 2:
        return proxy_nginx(work, up, workers, None), ""
    if n == 7:
        ok, why = lua_available(work)
        if not ok:
            return None, f"NGINX lua module cannot load: {why}"
        return proxy_nginx(work, up, workers, data.raw_deny), ""
    if n == 3:
        (port,) = free_ports(1)
        return spawn("passthrough", [py, str(BENCH / "passthrough.py"), "--upstream", up.url,
                                     "--listen", f"127.0.0.1:{port}"], port, work), ""
    if n == 8:
        mitm = Path(ctx.args.mitmdump)
        if not mitm.exists():
            return None, f"mitmdump not found at {mitm}"
        (port,) = free_ports(1)
        confdir = work / "mitm"
        confdir.mkdir(exist_ok=True)
        return spawn("mitmproxy", [str(mitm), "--mode", f"reverse:{up.url}",
                                   "--listen-host", "127.0.0.1", "--listen-port", str(port),
                                   "-s", str(BENCH / "mitm_filter.py"), "-q",
                                   "--set", f"confdir={confdir}", "--set", "flow_detail=0",
                                   "--set", "termlog_verbosity=error"],
                     port, work, env={"BENCH_DENY_FILE": str(data.raw_deny)}), ""
    # denyproxy 4, 5, 6
    port, admin = free_ports(2)
    common = ["--upstream", up.url, "--listen", f"127.0.0.1:{port}",
              "--admin-listen", f"127.0.0.1:{admin}", "--log-level", "warning",
              "--workers", str(workers)]
    if n == 4:
        extra = ["--exempt-paths", "/api"]
        if workers > 1:
            if ctx.redis is None:
                return None, "needs Redis"
            extra += ["--redis", ctx.redis.url]
        return spawn(f"denyproxy-exempt-{workers}", [py, "-m", "proxy.cli", "serve", *common,
                                                     *extra], port, work), ""
    if n == 5:
        if workers > 1:
            return None, "the in-memory store refuses --workers > 1 (each worker would hold " \
                         "its own rules)"
        return spawn("denyproxy-memory", [py, str(BENCH / "denyproxy_mem.py"),
                                          str(data.rules_jsonl), *common], port, work), ""
    if n == 6:
        if ctx.redis is None:
            return None, "Redis did not start"
        return spawn(f"denyproxy-redis-{workers}", [py, "-m", "proxy.cli", "serve", *common,
                                                    "--redis", ctx.redis.url], port, work), ""
    raise ValueError(n)


def bench_contender(ctx: Ctx, n: int, workers: int) -> None:
    args = ctx.args
    server, why = start_contender(ctx, n, workers)
    if server is None:
        if why and (n, workers) not in ctx.checks:
            ctx.checks[(n, workers)] = f"skipped: {why}"
            if n != 1:
                ctx.notes.append(f"Contender {n} ({NAMES[n]}) with {workers} worker(s) "
                                 f"skipped: {why}.")
        return
    own = server is not ctx.upstream
    try:
        wait_ready(server, ctx.data.small[0])
        ctx.checks[(n, workers)] = check_filtering(server, ctx.data)
        log(f"contender {n} {NAMES[n]} (workers={workers}) ready; filtering: "
            f"{ctx.checks[(n, workers)]}")
        aux = [ctx.upstream] if own else []
        if ctx.redis is not None and ctx.redis.proc is not None:
            aux_redis = Server("redis", ctx.redis.proc, ctx.redis.port, ctx.redis.log_path)
            aux.append(aux_redis)
        wrk(server.url, max(args.concurrency), args.warmup, ctx.small_file, ctx.keys_file,
            ctx.script)
        small_runs = []
        for conns in args.concurrency:
            run = measure(server, aux, n, workers, "small", conns, args.duration,
                          ctx.small_file, ctx.keys_file, ctx.script)
            small_runs.append(run)
            ctx.runs.append(run)
            log(f"  c={conns:<3} {run.rps:9.0f} req/s  p50 {run.p50_ms:7.2f} ms  "
                f"p99 {run.p99_ms:7.2f} ms  cpu {run.cpu_pct:5.0f}%  errors {run.errors}")
        if workers == 1:
            conns = 16 if 16 in args.concurrency else max(args.concurrency)
            run = measure(server, aux, n, workers, "large", conns, args.duration,
                          ctx.large_file, ctx.keys_file, ctx.script)
            ctx.runs.append(run)
            log(f"  200 contacts c={conns}: {run.rps:7.0f} req/s  p99 {run.p99_ms:.2f} ms")
            if data_unique := ctx.data.unique:
                run = measure(server, aux, n, workers, "unique", conns, args.duration,
                              ctx.unique_file, ctx.keys_file, ctx.script)
                ctx.runs.append(run)
                log(f"  {len(data_unique)} distinct 8-contact results c={conns}: "
                    f"{run.rps:7.0f} req/s  p99 {run.p99_ms:.2f} ms")
            # p99 at half of the max throughput: wrk paced by a Lua delay() per connection.
            best = max(small_runs, key=lambda r: r.rps)
            base = min(small_runs, key=lambda r: r.conns)
            target = best.rps / 2
            # wrk's delay() is whole milliseconds: keep the pause near 10 ms by scaling the
            # connection count with the target rate (capped at 256).
            pconns = max(1, min(256, round(target * (10 + base.p50_ms) / 1000)))
            pace = max(0.0, pconns * 1000 / target - base.p50_ms)
            run = measure(server, aux, n, workers, "half", pconns, args.duration,
                          ctx.small_file, ctx.keys_file, ctx.script, pace_ms=pace)
            run.target_rps = target
            ctx.runs.append(run)
            log(f"  half load: target {target:.0f} got {run.rps:.0f} req/s  "
                f"p99 {run.p99_ms:.2f} ms")
        if n in (5, 6) and workers == 1 and not args.no_profile:
            profile(ctx, server, n, "small", ctx.small_file, svg=n == 5 and not args.quick)
            if n == 5 and not args.quick:
                profile(ctx, server, n, "large", ctx.large_file, svg=False)
                if ctx.data.unique:
                    profile(ctx, server, n, "unique", ctx.unique_file, svg=False)
        if not server.alive():
            raise RuntimeError(f"{server.name} died during the run:\n{tail(server.log)}")
    except Exception as exc:  # one contender failing must not sink the others
        log(f"contender {n} failed: {exc}")
        ctx.notes.append(f"Contender {n} ({NAMES[n]}) with {workers} worker(s) failed: "
                         f"{str(exc).splitlines()[0]}")
    finally:
        if own:
            stop(server)


def profile(ctx: Ctx, server: Server, n: int, payload: str, paths_file: Path,
            svg: bool) -> None:
    """py-spy on a filtering path (1 worker) under wrk load at c=16."""
    spy = Path(sys.executable).parent / "py-spy"
    if not spy.exists():
        ctx.notes.append("py-spy missing: no profile.")
        return
    res_dir = Path(ctx.args.results)
    stamp = ctx.stamp
    secs = ctx.args.profile_s
    label = {5: "memory", 6: "redis"}[n] + {"small": "", "large": "-200",
                                             "unique": "-distinct"}[payload]
    raw = res_dir / f"profile-{stamp}-{label}.raw.txt"
    svg_path = res_dir / f"profile-{stamp}-{label}.svg"
    conns = 16 if 16 in ctx.args.concurrency else max(ctx.args.concurrency)
    log(f"  profiling ({label}) with py-spy for {secs}s at c={conns}")
    outputs = [("raw", raw)] + ([("flamegraph", svg_path)] if svg else [])
    for fmt, out in outputs:
        load = subprocess.Popen(
            ["wrk", "-t", "2", "-c", str(conns), "-d", f"{secs + 3}s", "-s", str(ctx.script),
             server.url, "--", str(paths_file), str(ctx.keys_file), "0"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(1)
            res = subprocess.run([str(spy), "record", "--pid", str(server.proc.pid), "--duration",
                                  str(secs), "--rate", "250", "--format", fmt, "-o", str(out),
                                  "--nonblocking"],
                                 capture_output=True, text=True, timeout=secs + 60)
            if res.returncode != 0:
                ctx.notes.append(f"py-spy failed: {(res.stderr or res.stdout).strip()[-300:]}")
                return
        finally:
            load.wait(timeout=secs + 30)
    rows, samples = aggregate_raw(raw)
    ctx.profiles.append(dict(
        contender=n, payload=payload, conns=conns,
        raw=raw, svg=svg_path if svg_path.exists() else None, rows=rows, samples=samples,
        seconds=secs, rate=250,
        inclusive=top_inclusive(raw, ("proxy/", "rules/", "aiohttp/", "orjson", "redis/")),
    ))
    lines = [f"{100 * own / max(samples, 1):5.1f}% own {100 * tot / max(samples, 1):5.1f}% incl"
             f"  {f}" for f, own, tot in rows]
    (res_dir / f"profile-{stamp}-{label}.top.txt").write_text("\n".join(lines) + "\n")


def run_kafka(ctx: Ctx) -> None:
    script = BENCH / "kafka_bench.py"
    if ctx.args.no_kafka or not script.exists():
        ctx.kafka = "" if ctx.args.no_kafka else \
            "bench/kafka_bench.py does not exist yet: no Kafka figures in this run."
        return
    import logging

    from tests.services import KafkaBroker, ServiceError
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # connect retries while it boots
    broker = redis = None
    try:
        log("Kafka: starting a broker and a Redis for bench/kafka_bench.py")
        broker = KafkaBroker(workdir=ctx.work / "kafka")
        broker.start()
        redis = RedisServer(ctx.work / "redis-kafka")
        redis.start()
        argv = [sys.executable, str(script), "--kafka", broker.bootstrap, "--redis", redis.url]
        helptext = subprocess.run([sys.executable, str(script), "--help"], cwd=ROOT,
                                  capture_output=True, text=True, timeout=60).stdout
        if "--allow-flushall" in helptext:  # the Redis here is a private scratch instance
            argv.append("--allow-flushall")
        if ctx.args.quick and "--quick" in helptext:
            argv.append("--quick")
        elif ctx.args.quick and "--values" in helptext:
            argv += ["--values", "100000"]
        log("Kafka: " + " ".join(argv[1:]))
        timeout = 120 if ctx.args.quick else 300
        res = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        ctx.kafka = res.stdout.strip() or "(no output)"
        if res.returncode != 0:
            ctx.kafka += f"\n\nkafka_bench.py exited {res.returncode}:\n" + res.stderr[-2000:]
    except (ServiceError, OSError, subprocess.TimeoutExpired, Exception) as exc:
        ctx.kafka = f"Kafka figures not available: {type(exc).__name__}: {exc}"[:2000]
    finally:
        if redis is not None:
            redis.stop()
        if broker is not None:
            with contextlib.suppress(Exception):
                broker.stop()


async def load_redis(url: str, changes: list[RuleChange]) -> None:
    from rules.store import RedisStore
    store = RedisStore.from_url(url, timeout=30.0)
    try:
        await store.apply(changes)
    finally:
        await store.aclose()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    QUIET["budget"] = args.quiet_budget
    now = dt.datetime.now()
    stamp = now.strftime("%Y-%m-%d-%H%M%S")
    res_dir = Path(args.results)
    res_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="denyproxy-bench-"))
    work.chmod(0o755)  # NGINX workers run as nobody and read the payloads from here
    def on_term(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    redis = None
    ctx = None
    try:
        log(f"workdir {work}; generating payloads and {args.filler_rules} filler rules/tenant")
        data = make_data(work, args.filler_rules, args.unique_docs)
        script = work / "bench.lua"
        script.write_text(WRK_SCRIPT)
        keys_file, small_file, large_file = work / "keys.txt", work / "small.txt", work / "large.txt"
        unique_file = work / "unique.txt"
        unique_file.write_text("\n".join(data.unique) + "\n")
        keys_file.write_text("\n".join(KEYS) + "\n")
        small_file.write_text("\n".join(data.small) + "\n")
        large_file.write_text("\n".join(data.large) + "\n")
        upstream = upstream_nginx(work, data, args.upstream_workers)
        wait_ready(upstream, data.small[0])
        if 6 in args.only or (4 in args.only and 2 in args.workers):
            redis = RedisServer(work / "redis")
            redis.start()
            log(f"loading {data.rule_count} rules into Redis")
            asyncio.run(load_redis(redis.url, data.changes))
        ctx = Ctx(args, work, data, upstream, redis, script, keys_file, small_file, large_file,
                  unique_file)
        ctx.stamp = stamp
        for workers in args.workers:
            for n in args.only:
                if workers > 1 and n not in MULTI and n != 5:
                    continue
                bench_contender(ctx, n, workers)
        if redis is not None:
            redis.stop()
            redis = None
        stop(upstream)
        run_kafka(ctx)
        report = render(ctx, machine(), now, time.monotonic() - started)
        md = res_dir / f"{stamp}.md"
        md.write_text(report)
        (res_dir / f"{stamp}.json").write_text(json.dumps(
            [r.__dict__ for r in ctx.runs], indent=1))
        png = plot(ctx, res_dir / f"{stamp}.png")
        print(report)
        log(f"wrote {md}" + (f" and {png}" if png else "") +
            f" in {time.monotonic() - started:.0f}s")
        return 0
    except KeyboardInterrupt:
        log("interrupted: stopping every server")
        return 130
    finally:
        for server in list(RUNNING):
            stop(server)
        if redis is not None:
            redis.stop()
        shutil.rmtree(work, ignore_errors=True)


# ------------------------------------------------------------------------------ report


def fmt(x: float, digits: int = 0) -> str:
    return f"{x:,.{digits}f}"


def ratio(x: float, base: float | None) -> str:
    return f"{x / base:.2f}×" if base else "–"


def shown_argv() -> list[str]:
    out, skip = [], False
    for arg in sys.argv[1:]:
        if skip:
            skip = False
        elif arg == "--mitmdump":
            skip = True
        elif not arg.startswith("--mitmdump="):
            out.append(arg)
    return out


def summary(ctx: Ctx) -> list[str]:
    """CPU per request at the mid concurrency, 1 worker: the figure least moved by other load."""
    conns = 16 if 16 in ctx.args.concurrency else max(ctx.args.concurrency)
    by = {(r.contender, r.payload): r for r in ctx.runs if r.workers == 1 and
          (r.conns == conns or r.payload in ("large", "unique"))}
    present = sorted({c for c, _ in by})
    if not present:
        return []
    out = ["", "## Summary: CPU cost per request (1 worker)", "",
           f"CPU time of the contender's processes per request at {conns} connections, and the "
           "request rate one core would sustain at that cost (1e6 / µs). Unlike req/s, this "
           "barely moves when other processes share the machine. #1's figure is the upstream "
           "NGINX's own cost.", "",
           "| # | contender | 8-contact µs/req | req/s per core | 200-contact µs/req | "
           "req/s per core | distinct 8-contact µs/req | req/s per core | filters? |",
           "|---|---|--:|--:|--:|--:|--:|--:|---|"]
    for n in present:
        cells = []
        for payload in ("small", "large", "unique"):
            r = by.get((n, payload))
            cells += ([f"{r.cpu_us_req:,.0f}", fmt(1e6 / r.cpu_us_req) if r.cpu_us_req else "–"]
                      if r else ["", ""])
        out.append(f"| {n} | {NAMES[n]} | " + " | ".join(cells) +
                   f" | {ctx.checks.get((n, 1), '?')} |")
    return out


def render(ctx: Ctx, mach: dict[str, str], now: dt.datetime, elapsed: float) -> str:
    a, data = ctx.args, ctx.data
    by = {(r.contender, r.workers, r.payload, r.conns): r for r in ctx.runs}
    out = [f"# denyproxy benchmark — {now:%Y-%m-%d %H:%M}", ""]
    out.append(f"Machine: {mach['nproc']} × {mach['cpu']}, {mach['memory']}, Linux "
               f"{mach['kernel']}; Python {mach['python']}, aiohttp {mach['aiohttp']}, "
               f"{mach['nginx']}, {mach['wrk']}, {mach['redis']}.")
    out.append("")
    out.append(
        f"Command: `bench/run {' '.join(shown_argv())}` — wrk for {a.duration:g} s per cell "
        f"(after a {a.warmup:g} s warm-up per server), X-API-Key rotating over {len(KEYS)} "
        f"keys, GET over {len(data.small)} task results of 8 contacts ({data.small_bytes:,} "
        f"bytes each) at `/api/v1/task/<id>`, served as static files by NGINX "
        f"(worker_processes {a.upstream_workers}). Rules: {a.filler_rules:,} filler rules per "
        f"tenant plus the matching ones ({data.rule_count:,} in all); about 1 in 8 of the "
        f"payload's emails, phones and LinkedIn URLs is denied for each key. Everything "
        f"(wrk, upstream, proxy, Redis) shares the same {mach['nproc']} cores. Took "
        f"{elapsed / 60:.1f} min.")
    out.append("")
    out.append("CPU % = the contender's processes (all workers), from /proc utime+stime "
               "(100 % = one core); for #1 it is the upstream NGINX itself. CPU µs/req = that "
               "CPU time per request. RSS = peak (VmHWM) summed over the processes. aux CPU = "
               "upstream NGINX + Redis. other CPU = whole-machine busy time (/proc/stat) not "
               "accounted for by the contender, aux or wrk: processes outside the bench; ⚠ "
               "marks a cell where they took > 15 % of a core (figures disturbed). Ratios are "
               "to #2 (NGINX proxy_pass) with the same workers and connections.")
    others = [r.other_cpu_pct for r in ctx.runs]
    if others:
        mean_other = sum(others) / len(others)
        out += ["", f"Waited {QUIET['waited']:.0f} s (budget {a.quiet_budget:g} s) for "
                "outside load to drop before cells.", "",
                f"**Foreign load:** outside processes used on average {mean_other:.0f} % "
                f"of a core (max {max(others):.0f} %) during the measurements"
                + (" — this machine was not quiet; compare ratios within a row block rather "
                   "than absolute figures." if mean_other > 10 else ".")]
    out += summary(ctx)
    for workers in a.workers:
        rows = [r for r in ctx.runs if r.workers == workers and r.payload == "small"]
        if not rows:
            continue
        out += ["", f"## 8-contact task result, {workers} worker(s)", "",
                "| # | contender | conns | req/s | × #2 | p50 ms | p99 ms | × #2 p99 | CPU % "
                "| CPU µs/req | peak RSS MB | aux CPU % | wrk CPU % | other CPU % | errors | "
                "filters? |",
                "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|"]
        for conns in a.concurrency:
            anchor = by.get((2, workers, "small", conns))
            for r in sorted((r for r in rows if r.conns == conns), key=lambda r: r.contender):
                out.append(
                    f"| {r.contender} | {NAMES[r.contender]} | {conns} | {fmt(r.rps)} | "
                    f"{ratio(r.rps, anchor.rps if anchor else None)} | {r.p50_ms:.2f} | "
                    f"{r.p99_ms:.2f} | {ratio(r.p99_ms, anchor.p99_ms if anchor else None)} | "
                    f"{r.cpu_pct:.0f} | {r.cpu_us_req:.0f} | {r.rss_mb:.0f} | "
                    f"{r.aux_cpu_pct:.0f} | {r.wrk_cpu_pct:.0f} | {r.other_cpu_pct:.0f}"
                    f"{' ⚠' if r.other_cpu_pct > 15 else ''} | {r.errors} | "
                    f"{ctx.checks.get((r.contender, r.workers), '?')} |")
    large = [r for r in ctx.runs if r.payload == "large"]
    if large:
        anchor = by.get((2, 1, "large", large[0].conns))
        out += ["", f"## 200-contact task result ({data.large_bytes:,} bytes), 1 worker, "
                f"{large[0].conns} connections", "",
                "| # | contender | req/s | × #2 | p50 ms | p99 ms | × #2 p99 | CPU % | "
                "CPU µs/req | peak RSS MB | errors |",
                "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
        for r in sorted(large, key=lambda r: r.contender):
            out.append(
                f"| {r.contender} | {NAMES[r.contender]} | {fmt(r.rps)} | "
                f"{ratio(r.rps, anchor.rps if anchor else None)} | {r.p50_ms:.2f} | "
                f"{r.p99_ms:.2f} | {ratio(r.p99_ms, anchor.p99_ms if anchor else None)} | "
                f"{r.cpu_pct:.0f} | {r.cpu_us_req:.0f} | {r.rss_mb:.0f} | {r.errors} |")
    uniq = [r for r in ctx.runs if r.payload == "unique"]
    if uniq:
        anchor = by.get((2, 1, "unique", uniq[0].conns))
        out += ["", f"## {len(data.unique):,} distinct 8-contact results (no contact repeats: "
                f"cold normalisation caches), 1 worker, {uniq[0].conns} connections", "",
                "The other tables rotate over 16 results, so after the first pass every value "
                "hits rules.normalize's lru_caches; real enrichment traffic is mostly new "
                "contacts, which this cell shows.", "",
                "| # | contender | req/s | × #2 | p50 ms | p99 ms | × #2 p99 | CPU % | "
                "CPU µs/req | peak RSS MB | errors |",
                "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
        for r in sorted(uniq, key=lambda r: r.contender):
            out.append(
                f"| {r.contender} | {NAMES[r.contender]} | {fmt(r.rps)} | "
                f"{ratio(r.rps, anchor.rps if anchor else None)} | {r.p50_ms:.2f} | "
                f"{r.p99_ms:.2f} | {ratio(r.p99_ms, anchor.p99_ms if anchor else None)} | "
                f"{r.cpu_pct:.0f} | {r.cpu_us_req:.0f} | {r.rss_mb:.0f} | {r.errors} |")
    half = [r for r in ctx.runs if r.payload == "half"]
    if half:
        c_low = min(a.concurrency)
        direct = by.get((1, 1, "small", c_low))
        direct_half = next((r for r in half if r.contender == 1), None)
        out += ["", "## Added latency (1 worker, 8-contact result)", "",
                f"Unloaded = wrk with {c_low} connection(s). Half load = wrk with N "
                "connections (N scaled so each pauses ~10 ms), each pausing a random 0–2× pace "
                "between requests (Lua `delay()`) so the offered rate is about half the "
                "contender's own max req/s. wrk2 is not packaged in Debian: this is wrk's closed loop, so the "
                "p99 is *not* corrected for coordinated omission.", "",
                f"| # | contender | unloaded p50 ms | added p50 vs #1 ms | half-load target "
                f"req/s | N | achieved | p99 ms | p99 − #1's half-load p99 ms |",
                "|---|---|--:|--:|--:|--:|--:|--:|--:|"]
        for r in sorted(half, key=lambda r: r.contender):
            low = by.get((r.contender, 1, "small", c_low))
            added = (low.p50_ms - direct.p50_ms) if low and direct else None
            out.append(
                f"| {r.contender} | {NAMES[r.contender]} | "
                f"{low.p50_ms:.3f} | {'' if added is None else f'{added:+.3f}'} | "
                f"{fmt(r.target_rps)} | {r.conns} | {fmt(r.rps)} | {r.p99_ms:.2f} | "
                f"{'' if not direct_half else f'{r.p99_ms - direct_half.p99_ms:+.2f}'} |"
                if low else f"| {r.contender} | {NAMES[r.contender]} | | | | | | | |")
    for p in ctx.profiles:
        if not p.get("rows"):
            continue
        active = p["samples"]
        possible = p["seconds"] * p["rate"]
        what = {"small": "8-contact", "large": "200-contact",
                "unique": "distinct 8-contact (cold caches)"}[p["payload"]]
        out += ["", f"## Profile: {NAMES[p['contender']]}, 1 worker, {what} result, wrk "
                f"{p['conns']} connections", "",
                f"py-spy record --nonblocking, {p['seconds']} s at {p['rate']} Hz: {active} "
                f"samples of the event-loop thread while not idle (≈{100 * active / possible:.0f}"
                f" % busy). Raw stacks: `{Path(p['raw']).name}`"
                + (f", flame graph: `{Path(p['svg']).name}`" if p.get("svg") else "") + ".", "",
                "Top 15 by own time:", "",
                "| own % | incl % | function (file) |", "|--:|--:|---|"]
        for f, n, t in p["rows"]:
            out.append(f"| {100 * n / active:.1f} | {100 * t / active:.1f} | `{f}` |")
        out += ["", "Top 15 by inclusive time (proxy/, rules/, aiohttp, orjson, redis):", "",
                "| incl % | function (file) |", "|--:|---|"]
        for f, t in p["inclusive"]:
            out.append(f"| {100 * t / active:.1f} | `{f}` |")
    if ctx.kafka:
        out += ["", "## Kafka (bench/kafka_bench.py)", "", "```", ctx.kafka, "```"]
    if ctx.notes:
        out += ["", "## Notes", ""] + [f"- {n}" for n in ctx.notes]
    out += ["", "Filtering semantics of #7 and #8 (hand-written for this bench): exact match "
            "of raw strings from a per-key table, no normalisation, no domain rules; a contact "
            "point object (`{\"phone_number\": x, \"line_type\": ...}`) holding a denied value "
            "is removed as denyproxy's strip policy does. #7's lua-cjson re-encodes empty "
            "arrays as `{}`.", ""]
    return "\n".join(out)


def plot(ctx: Ctx, path: Path) -> Path | None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        ctx.notes.append("matplotlib missing: no plot.")
        return None
    panels = [w for w in ctx.args.workers if any(r.workers == w and r.payload == "small"
                                                 for r in ctx.runs)]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.8), squeeze=False)
    for ax, workers in zip(axes[0], panels):
        for n in NAMES:
            rows = sorted((r for r in ctx.runs if r.contender == n and r.workers == workers
                           and r.payload == "small"), key=lambda r: r.conns)
            if rows:
                ax.plot([r.conns for r in rows], [r.rps for r in rows], marker="o",
                        color=f"C{n - 1}", label=f"{n} {NAMES[n]}",
                        linestyle="--" if n in (1, 2, 3) else "-")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(ctx.args.concurrency, [str(c) for c in ctx.args.concurrency])
        ax.set_xlabel("wrk connections")
        ax.set_ylabel("req/s (log)")
        ax.set_title(f"8-contact task result, {workers} worker(s)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="lower left")
    fig.suptitle(f"denyproxy bench {ctx.stamp} ({os.cpu_count()} cores)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


if __name__ == "__main__":
    sys.exit(main())
