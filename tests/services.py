"""Real Redis and Kafka processes for the test suite, on free ports in throw-away dirs.

Kept free of pytest so the same classes can drive benchmarks or a REPL session.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
KAFKA_LIBS = Path(os.environ.get("DENYPROXY_KAFKA_LIBS", REPO_ROOT / ".cache" / "kafka" / "libs"))
KAFKA_LOG4J2 = REPO_ROOT / "scripts" / "kafka-log4j2.properties"


class ServiceError(RuntimeError):
    """A test service failed to start; the message carries the tail of its log."""


def free_ports(count: int = 1) -> list[int]:
    """Distinct free TCP ports on 127.0.0.1 (all held open together so they cannot repeat)."""
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def free_port() -> int:
    """One free TCP port on 127.0.0.1 (the kernel picks it via bind to port 0)."""
    return free_ports(1)[0]


def tail(path: Path, lines: int = 60) -> str:
    """Last lines of a log file, for error messages; empty if the file does not exist."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""


def _die_with_parent(argv: list[str]) -> list[str]:
    """Prefix argv so the child gets SIGKILL if pytest dies (no orphan brokers after a crash).

    Uses util-linux `setpriv --pdeathsig` (essential on Debian) rather than a preexec_fn, which is
    unsafe once the asyncio loop has started threads. The signal fires when the *thread* that
    spawned the child exits, so call start() from a long-lived thread (the main one in pytest).
    """
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--", *argv] if setpriv else argv


def _spawn(argv: list[str], log: Path, cwd: Path) -> subprocess.Popen[bytes]:
    """Start a daemon-style child with stdout+stderr appended to `log`."""
    with log.open("ab") as out:
        return subprocess.Popen(
            _die_with_parent(argv),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _terminate(proc: subprocess.Popen[bytes] | None, timeout: float) -> None:
    """SIGTERM, then SIGKILL after `timeout` seconds; always reaps the child."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# --------------------------------------------------------------------------------------- Redis


def redis_ping(port: int, timeout: float = 0.5) -> bool:
    """True if a Redis on 127.0.0.1:port answers PING (raw RESP, so no client library needed)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def redis_process_id(port: int, timeout: float = 0.5) -> int | None:
    """PID of the Redis answering on 127.0.0.1:port, to be sure it is ours and not a squatter."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"INFO server\r\n")
            reply = s.makefile("rb")
            header = reply.readline()
            if not header.startswith(b"$"):
                return None
            body = reply.read(int(header[1:]) + 2).decode(errors="replace")
    except (OSError, ValueError):
        return None
    for line in body.splitlines():
        if line.startswith("process_id:"):
            return int(line.split(":", 1)[1])
    return None


@dataclass
class RedisServer:
    """A private redis-server; stop()/start() keep the port so clients can reconnect to it."""

    workdir: Path
    port: int = field(default_factory=free_port)
    binary: str = "redis-server"
    start_timeout: float = 10.0
    unix: bool = False  # also listen on a unix socket in workdir (unix_url)
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        """redis-py URL for database 0."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def unix_url(self) -> str:
        """redis-py URL for database 0 over the unix socket (a server started with `unix`)."""
        return f"unix://{self.workdir / 'redis.sock'}?db=0"

    @property
    def log_path(self) -> Path:
        """Where redis-server writes its log."""
        return self.workdir / "redis.log"

    @property
    def running(self) -> bool:
        """Whether our redis-server process is alive."""
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        """Start (or restart) on the same port with an empty, non-persistent dataset."""
        if self.running:
            return
        exe = shutil.which(self.binary)
        if exe is None:
            raise ServiceError(f"{self.binary} not found on PATH; run scripts/test to install it")
        self.workdir.mkdir(parents=True, exist_ok=True)
        argv = [
            exe,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.workdir),
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--protected-mode",
            "no",
        ]
        if self.unix:
            argv += ["--unixsocket", str(self.workdir / "redis.sock"), "--unixsocketperm", "700"]
        self.proc = _spawn(argv, self.log_path, self.workdir)
        deadline = time.monotonic() + self.start_timeout
        while redis_process_id(self.port) != self.proc.pid:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise ServiceError(
                    f"redis-server on port {self.port} did not answer PING:\n{tail(self.log_path)}"
                )
            time.sleep(0.02)

    def stop(self) -> None:
        """Shut the server down (SIGTERM; no save) and wait until the port is closed."""
        _terminate(self.proc, timeout=5.0)
        self.proc = None


@contextlib.contextmanager
def running_redis(workdir: Path) -> Iterator[RedisServer]:
    """A private redis-server for the block (a fixture's): started, then stopped in any case."""
    server = RedisServer(workdir=workdir)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def redis_command(port: int, command: bytes, timeout: float = 0.5) -> str | None:
    """A bulk-string reply (INFO, CLUSTER INFO) of an inline command, or None on any failure."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(command + b"\r\n")
            reply = s.makefile("rb")
            header = reply.readline()
            if not header.startswith(b"$"):
                return None
            return reply.read(int(header[1:]) + 2).decode(errors="replace")
    except (OSError, ValueError):
        return None


def redis_cluster_state(port: int) -> str | None:
    """`cluster_state` (ok / fail) of the node on 127.0.0.1:port; None if it does not say."""
    for line in (redis_command(port, b"CLUSTER INFO") or "").splitlines():
        if line.startswith("cluster_state:"):
            return line.split(":", 1)[1].strip()
    return None


@dataclass
class RedisCluster:
    """A private Redis Cluster: `size` primaries, no replicas, all slots assigned.

    Each node gets its own dir (nodes-P.conf lives there, so stop_node()/start_node() bring a
    node back with its slots) and an explicit cluster bus port, so no port is guessed as P+10000.
    """

    workdir: Path
    size: int = 3
    binary: str = "redis-server"
    cli: str = "redis-cli"
    start_timeout: float = 20.0
    ports: list[int] = field(default_factory=list)
    bus_ports: list[int] = field(default_factory=list)
    procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.ports:
            picked = free_ports(2 * self.size)
            self.ports, self.bus_ports = picked[: self.size], picked[self.size :]

    @property
    def url(self) -> str:
        """redis-py URL of the first node; a cluster client discovers the others from it."""
        return f"redis://127.0.0.1:{self.ports[0]}"

    @property
    def nodes(self) -> list[str]:
        return [f"127.0.0.1:{port}" for port in self.ports]

    def node_dir(self, port: int) -> Path:
        return self.workdir / f"node-{port}"

    def log_path(self, port: int) -> Path:
        return self.node_dir(port) / "redis.log"

    def start(self) -> None:
        """Start every node, join them into one cluster (first start only), wait for state ok."""
        exe = shutil.which(self.binary)
        cli = shutil.which(self.cli)
        if exe is None or cli is None:
            raise ServiceError(f"{self.binary}/{self.cli} not found on PATH")
        fresh = not any(self.node_dir(p).joinpath(f"nodes-{p}.conf").exists() for p in self.ports)
        for port in self.ports:
            self.start_node(port)
        if fresh:
            res = subprocess.run(
                [cli, "--cluster", "create", *self.nodes, "--cluster-replicas", "0",
                 "--cluster-yes"],
                check=False, capture_output=True, text=True, timeout=60,
            )
            if res.returncode != 0:
                self.stop()
                raise ServiceError(
                    f"redis-cli --cluster create failed ({res.returncode}):\n"
                    f"{res.stdout}\n{res.stderr}"
                )
        self.wait_ok()

    def start_node(self, port: int) -> None:
        """Start (or restart) one node on its port; it rejoins with its saved cluster config."""
        proc = self.procs.get(port)
        if proc is not None and proc.poll() is None:
            return
        exe = shutil.which(self.binary)
        if exe is None:
            raise ServiceError(f"{self.binary} not found on PATH")
        workdir = self.node_dir(port)
        workdir.mkdir(parents=True, exist_ok=True)
        bus_port = self.bus_ports[self.ports.index(port)]
        argv = [
            exe, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir),
            "--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf",
            "--cluster-port", str(bus_port), "--cluster-node-timeout", "2000",
            "--save", "", "--appendonly", "no", "--daemonize", "no", "--protected-mode", "no",
        ]
        proc = self.procs[port] = _spawn(argv, self.log_path(port), workdir)
        deadline = time.monotonic() + self.start_timeout
        while redis_process_id(port) != proc.pid:
            if proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise ServiceError(
                    f"cluster node on port {port} did not start:\n{tail(self.log_path(port))}"
                )
            time.sleep(0.02)

    def wait_ok(self) -> None:
        """Until every node says cluster_state:ok (slots covered, nodes agree)."""
        deadline = time.monotonic() + self.start_timeout
        while not all(redis_cluster_state(port) == "ok" for port in self.ports):
            if time.monotonic() > deadline:
                states = {port: redis_cluster_state(port) for port in self.ports}
                logs = "\n".join(f"--- {p} ---\n{tail(self.log_path(p), 20)}" for p in self.ports)
                self.stop()
                raise ServiceError(f"Redis Cluster not ok after {self.start_timeout:.0f}s: "
                                   f"{states}\n{logs}")
            time.sleep(0.05)

    def stop_node(self, port: int) -> None:
        _terminate(self.procs.pop(port, None), timeout=5.0)

    def stop(self) -> None:
        """Stop every node (SIGTERM, no save)."""
        for port in list(self.procs):
            self.stop_node(port)


# --------------------------------------------------------------------------------------- Kafka


def kafka_cluster_id() -> str:
    """Random KRaft cluster id: 16 bytes as unpadded URL-safe base64 (Kafka's Uuid format)."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):  # Kafka avoids ids that look like CLI flags
            return cid


async def _kafka_metadata_ready(bootstrap: str) -> bool:
    """True once the broker answers metadata with at least one live broker (i.e. unfenced)."""
    # Lazy import: keeps this module importable (e.g. for Redis-only use) without aiokafka.
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    try:
        await admin.start()
        cluster = await admin.describe_cluster()
        return bool(cluster.get("brokers"))
    except Exception:
        return False
    finally:
        await admin.close()


def kafka_ready(bootstrap: str) -> bool:
    """Sync readiness probe; runs in a worker thread so it never touches the caller's event loop."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, _kafka_metadata_ready(bootstrap)).result()


@dataclass
class KafkaBroker:
    """A single-node KRaft Kafka (combined broker+controller) run from the Maven-fetched jars."""

    workdir: Path
    libs: Path = KAFKA_LIBS
    java: str = "java"
    heap: tuple[str, str] = ("256m", "512m")
    start_timeout: float = 60.0
    port: int = 0
    controller_port: int = 0
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        """Pick missing listener ports together so they cannot collide with each other."""
        picked = iter(free_ports(2))
        self.port = self.port or next(picked)
        self.controller_port = self.controller_port or next(picked)

    @property
    def bootstrap(self) -> str:
        """bootstrap_servers string for clients."""
        return f"127.0.0.1:{self.port}"

    @property
    def unix_url(self) -> str:
        """redis-py URL for database 0 over the unix socket (a server started with `unix`)."""
        return f"unix://{self.workdir / 'redis.sock'}?db=0"

    @property
    def log_path(self) -> Path:
        """log4j2 file (WARN+) written by the broker."""
        return self.workdir / "logs" / "server.log"

    @property
    def stdout_path(self) -> Path:
        """JVM stdout/stderr (crashes, class-path problems)."""
        return self.workdir / "kafka.out"

    @property
    def config_path(self) -> Path:
        """Generated server.properties."""
        return self.workdir / "server.properties"

    @property
    def running(self) -> bool:
        """Whether our broker JVM is alive."""
        return self.proc is not None and self.proc.poll() is None

    def server_properties(self) -> dict[str, str]:
        """Broker config: tiny, single node, fast group joins, everything replicated once."""
        return {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.workdir / "data"),
            "num.partitions": "4",
            "auto.create.topics.enable": "true",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "4",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "num.network.threads": "2",
            "num.io.threads": "4",
            "log.retention.check.interval.ms": "3600000",
        }

    def _write_config(self) -> None:
        """Write server.properties into the work dir."""
        body = "".join(f"{k}={v}\n" for k, v in self.server_properties().items())
        self.config_path.write_text(body)

    def _java_argv(
        self, main: str, *args: str, heap: tuple[str, str] = ("64m", "256m")
    ) -> list[str]:
        """java command line for a Kafka main class on the fetched class path."""
        return [
            self.java,
            f"-Xms{heap[0]}",
            f"-Xmx{heap[1]}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:TieredStopAtLevel=1",
            "-Djava.awt.headless=true",
            "-Djava.net.preferIPv4Stack=true",
            f"-Dlog4j2.configurationFile={KAFKA_LOG4J2}",
            f"-Dkafka.logs.dir={self.log_path.parent}",
            "-cp",
            f"{self.libs}/*",
            main,
            *args,
        ]

    def _check_libs(self) -> None:
        """Fail early with a hint when the jars were never fetched."""
        if not any(self.libs.glob("kafka_2.13-*.jar")):
            raise ServiceError(f"no Kafka jars in {self.libs}; run scripts/test to fetch them")
        if shutil.which(self.java) is None:
            raise ServiceError(f"{self.java} not found on PATH (Kafka needs Java >= 17)")

    def _format_storage(self) -> None:
        """Format log.dirs for KRaft with a fresh cluster id (required before first start)."""
        cluster_id, config = kafka_cluster_id(), str(self.config_path)
        argv = self._java_argv(
            "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", config,
            *self.format_args(),
        )
        res = subprocess.run(
            argv, check=False, cwd=self.workdir, capture_output=True, text=True, timeout=60
        )
        if res.returncode != 0:
            raise ServiceError(
                f"kafka storage format failed ({res.returncode}):\n{res.stdout}\n{res.stderr}"
            )

    def format_args(self) -> list[str]:
        """Extra `kafka-storage format` arguments (a secured variant adds SCRAM users here)."""
        return []

    def probe(self) -> bool:
        """One readiness probe; a secured variant connects with its own credentials."""
        return kafka_ready(self.bootstrap)

    def start(self) -> None:
        """Format storage (first time only), launch the broker and wait until it serves metadata."""
        if self.running:
            return
        self._check_libs()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        if not (self.workdir / "data" / "meta.properties").exists():
            self._write_config()
            self._format_storage()
        argv = self._java_argv("kafka.Kafka", str(self.config_path), heap=self.heap)
        self.proc = _spawn(argv, self.stdout_path, self.workdir)
        self._wait_ready()

    def _wait_ready(self) -> None:
        """Poll with an aiokafka admin client until the broker is up, or raise with its log."""
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self.proc is None or self.proc.poll() is not None:
                code = None if self.proc is None else self.proc.returncode
                self.stop()
                raise ServiceError(f"Kafka broker exited early (code {code}):\n{self._logs()}")
            if self.probe():
                return
            if time.monotonic() > deadline:
                self.stop()
                raise ServiceError(
                    f"Kafka broker not ready after {self.start_timeout:.0f}s:\n{self._logs()}"
                )
            time.sleep(0.25)

    def dump_log(self, topic: str, partition: int) -> str:
        """Kafka's own DumpLogSegments over one partition's log: batch headers as the broker
        stored them (producerId, sequence, compresscodec), to check what a producer sent."""
        segments = sorted((self.workdir / "data" / f"{topic}-{partition}").glob("*.log"))
        argv = self._java_argv("kafka.tools.DumpLogSegments", "--files",
                               ",".join(map(str, segments)))
        res = subprocess.run(argv, check=True, cwd=self.workdir, capture_output=True, text=True,
                             timeout=60)
        return res.stdout

    def _logs(self) -> str:
        """Tails of the log4j file and JVM stdout, for failure messages."""
        return (
            f"--- {self.log_path} ---\n{tail(self.log_path)}\n"
            f"--- {self.stdout_path} ---\n{tail(self.stdout_path)}"
        )

    def stop(self) -> None:
        """Stop the broker; SIGTERM allows a clean shutdown, SIGKILL if it takes over 15 s."""
        _terminate(self.proc, timeout=15.0)
        self.proc = None
