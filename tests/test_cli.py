"""`denyproxy` as users run it: a real process, flags and env vars, signals."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid

import aiohttp
import pytest

from rules.model import RuleChange, RuleType, tenant_of
from rules.store import RedisStore
from tests.harness import eventually, fake_upstream
from tests.services import free_ports

DENYPROXY = [sys.executable, "-m", "proxy.cli"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*DENYPROXY, *args], capture_output=True, text=True, timeout=30,
                          env={**os.environ, **(env or {})})


@pytest.mark.parametrize(
    ("args", "env", "names"),
    [
        (["serve", "--listen", "nope"], {}, "--listen"),
        (["serve", "--policy", "redact"], {}, "--policy"),
        (["serve"], {"DENYPROXY_UPSTREAM_TIMEOUT": "-1"}, "DENYPROXY_UPSTREAM_TIMEOUT"),
        (["serve"], {"DENYPROXY_PHONE_REGION": "XX"}, "DENYPROXY_PHONE_REGION"),
        (["serve", "--upstream", "ftp://x"], {}, "--upstream"),
        (["serve", "--workers", "2"], {}, "--workers"),
        (["consume"], {}, "--kafka"),
        (["rules", "add", "--kafka", "k:9092", "--api-key", " \n", "--type", "domain", "acme.com"],
         {}, "--api-key must not be empty"),
        (["rules", "add", "--kafka", "k:9092", "--type", "domain", "acme.com"],
         {"DENYPROXY_API_KEY": ""}, "DENYPROXY_API_KEY must not be empty"),
    ],
)
def test_bad_configuration_is_one_line_naming_the_setting_exit_2(args, env, names):
    result = run(*args, env=env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and names in lines[0], result.stderr


class Proxy:
    """A `denyproxy serve` process on free ports."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.port, self.admin_port = free_ports(2)
        self.url = f"http://127.0.0.1:{self.port}"
        self.admin = f"http://127.0.0.1:{self.admin_port}"
        self.proc = subprocess.Popen(
            [*DENYPROXY, "serve", *args],
            env={**os.environ, "DENYPROXY_LISTEN": f"127.0.0.1:{self.port}",
                 "DENYPROXY_ADMIN_LISTEN": f"127.0.0.1:{self.admin_port}",
                 "DENYPROXY_LOG_FORMAT": "json", **(env or {})},
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )

    async def ready(self, client: aiohttp.ClientSession) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.proc.stderr.read()
            try:
                async with client.get(f"{self.admin}/readyz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
        raise TimeoutError("proxy not ready")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)


async def refuses(url: str) -> bool:
    """True once nothing accepts connections on the proxy's port any more."""
    host, port = url.removeprefix("http://").split(":")
    try:
        _, writer = await asyncio.open_connection(host, int(port))
    except OSError:
        return True
    writer.close()
    await writer.wait_closed()
    return False


async def test_sigterm_drains_in_flight_requests_then_exits():
    async with fake_upstream() as (fake, upstream), aiohttp.ClientSession() as client:
        proxy = Proxy("--upstream", upstream, "--shutdown-timeout", "10")
        try:
            await proxy.ready(client)
            in_flight = asyncio.create_task(client.get(f"{proxy.url}/held-json",
                                                       headers={"X-API-Key": "k"}))
            await asyncio.wait_for(fake.held_arrived.wait(), 30)  # the request is upstream
            proxy.proc.send_signal(signal.SIGTERM)
            await eventually(lambda: refuses(proxy.url), "the listener to close")
            assert not in_flight.done()  # still held by the upstream
            fake.release.set()
            response = await in_flight
            assert response.status == 200 and len((await response.json())["data"]) == 8
            response.release()
            assert await asyncio.to_thread(proxy.proc.wait, 15) == 0
        finally:
            fake.release.set()
            proxy.stop()


async def test_workers_share_the_port_and_redis_and_metrics_add_up(redis_url):
    api_key = f"om_{uuid.uuid4().hex}"
    store = RedisStore.from_url(redis_url, timeout=2)
    rule = RuleChange("add", tenant_of(api_key), RuleType.EMAIL, ("jane.doe@acme.com",))
    await store.apply([rule])
    await store.mark_initialised()  # the operator's `denyproxy store init`
    await store.aclose()
    async with fake_upstream() as (fake, upstream), aiohttp.ClientSession() as client:
        proxy = Proxy("--upstream", upstream, "--redis", redis_url, "--workers", "2")
        try:
            await proxy.ready(client)
            for _ in range(40):
                async with (
                    aiohttp.ClientSession() as fresh,  # new connections spread over workers
                    fresh.get(f"{proxy.url}/slow/0", headers={"X-API-Key": api_key}) as r,
                ):
                    assert r.status == 200
                    assert (await r.json())["data"][0]["email"] is None
            async with client.get(f"{proxy.admin}/metrics") as r:
                text = await r.text()
            ok = 'denyproxy_http_requests_total{method="GET",status="200"}'
            served = [line for line in text.splitlines() if line.startswith(ok)]
            assert served and float(served[0].split()[-1]) == 40.0
            assert len(workers_of(proxy.proc.pid)) == 2
            assert proxy.stop() == 0
        finally:
            proxy.stop()


def workers_of(pid: int) -> list[int]:
    """Child processes started by multiprocessing's spawn (not its resource tracker)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if ppid == pid and b"spawn_main" in cmdline:
            found.append(int(entry))
    return found
