"""Server processes: start, wait until they answer, stop; one supervisor per run owns them all."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

from bench.paths import ROOT
from bench.proctree import tree_pids


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def pids(self) -> list[int]:
        return tree_pids(self.proc.pid) if self.alive() else []

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM to the process group, then SIGKILL to whatever of it is left."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # stragglers of the group (workers)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)


@dataclass
class Supervisor:
    """Starts servers (logs in `work`) and stops every one still running when the run ends,
    also on Ctrl-C or an error: use it as a context manager."""

    work: Path
    running: list[Server] = field(default_factory=list)

    def spawn(self, name: str, argv: list[str], port: int,
              env: dict[str, str] | None = None) -> Server:
        logf = self.work / f"{name}.log"
        setpriv = shutil.which("setpriv")  # the server dies with us even on SIGKILL
        full = [setpriv, "--pdeathsig", "KILL", "--", *argv] if setpriv else argv
        with logf.open("ab") as out:
            proc = subprocess.Popen(full, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True,
                                    env={**os.environ, **(env or {})})
        server = Server(name, proc, port, logf)
        self.running.append(server)
        return server

    def stop(self, server: Server) -> None:
        server.stop()
        if server in self.running:
            self.running.remove(server)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        for server in list(self.running):
            self.stop(server)


def http_get(url: str, key: str | None = None, timeout: float = 5.0) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers={"X-API-Key": key} if key else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return int(resp.status), bytes(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_ready(server: Server, url_path: str, key: str, timeout: float = 60.0) -> None:
    """Poll until `url_path` answers 200 (raises with the log's tail if the server exits)."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if not server.alive():
            raise RuntimeError(f"{server.name} exited:\n{tail(server.log)}")
        try:
            status, _ = http_get(server.url + url_path, key, timeout=2)
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
