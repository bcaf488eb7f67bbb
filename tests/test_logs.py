"""Logs as operators get them: `denyproxy serve` as a real process, its stderr read after SIGTERM.

Every line is one JSON object; the access line has request id, route template, status,
duration, tenant hash prefix and suppressed count; no line holds an API key, email or phone.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import pty
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import aiohttp
import phonenumbers
import pytest

from proxy import logs
from rules.model import GLOBAL, RuleType, tenant_of
from tests.fake_openmart import FakeOpenmart
from tests.harness import fake_upstream
from tests.services import REPO_ROOT, free_ports
from tests.test_suppression import add

ACCESS_FIELDS = {"request_id", "route", "status", "duration_ms", "tenant", "suppressed"}
BASE_FIELDS = {"ts", "level", "event"}


@dataclass
class Proc:
    proc: subprocess.Popen[bytes]
    url: str
    admin: str
    stderr: Path
    stdout: Path

    def lines(self) -> list[str]:
        return self.stderr.read_text().splitlines()


def _env() -> dict[str, str]:
    """The test runner's env without DENYPROXY_* (a developer's settings must not leak in)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("DENYPROXY_")}


@asynccontextmanager
async def denyproxy_serve(tmp_path: Path, *args: str) -> AsyncIterator[Proc]:
    """`python -m proxy.cli serve …` on free ports; stopped with SIGTERM on exit."""
    port, admin = free_ports(2)
    stderr, stdout = tmp_path / "stderr.log", tmp_path / "stdout.log"
    argv = [sys.executable, "-m", "proxy.cli", "serve", "--listen", f"127.0.0.1:{port}",
            "--admin-listen", f"127.0.0.1:{admin}", *args]
    with stderr.open("wb") as err, stdout.open("wb") as out:
        proc = subprocess.Popen(  # noqa: ASYNC220 - starting it does not block; waits in a thread
            argv, cwd=REPO_ROOT, env=_env(), stdin=subprocess.DEVNULL,
            stdout=out, stderr=err,
        )
    running = Proc(proc, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{admin}", stderr, stdout)
    try:
        await _wait_ready(running)
        yield running
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(proc.wait, 20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def _wait_ready(running: Proc) -> None:
    """Ready, and the proxy port answering (with --workers, readiness does not wait for it)."""
    async with aiohttp.ClientSession() as client:
        for _ in range(300):
            if running.proc.poll() is not None:
                raise AssertionError(f"denyproxy exited {running.proc.returncode}:\n"
                                     f"{running.stderr.read_text()}")
            try:
                async with client.get(f"{running.admin}/readyz") as r:
                    ready = r.status == 200
                if ready:
                    _, writer = await asyncio.open_connection(*running.url[7:].split(":"))
                    writer.close()
                    await writer.wait_closed()
                    return
            except (aiohttp.ClientError, OSError):
                pass
            await asyncio.sleep(0.05)
    raise AssertionError(f"denyproxy not ready:\n{running.stderr.read_text()}")


def strings(doc: object) -> Iterator[str]:
    """Every string in a JSON document, keys included."""
    if isinstance(doc, str):
        yield doc
    elif isinstance(doc, dict):
        for k, v in doc.items():
            yield k
            yield from strings(v)
    elif isinstance(doc, list):
        for v in doc:
            yield from strings(v)


def phone_forms(raw: str) -> set[str]:
    """A phone as sent and in every format it is commonly written in."""
    number = phonenumbers.parse(raw, "US")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    national = str(number.national_number)
    area, exchange, line = national[:3], national[3:6], national[6:]
    return {
        raw,
        e164,
        e164[1:],  # 15125551003
        national,  # 5125551003
        phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL),
        phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL),
        f"{area}-{exchange}-{line}",
        f"{area}.{exchange}.{line}",
        f"{area} {exchange} {line}",
        f"{exchange}-{line}",
        quote(raw, safe=""),
        quote(e164, safe=""),
    }


@pytest.mark.parametrize("workers", [1, 2])
async def test_json_logs_of_a_filtered_flow_carry_fields_and_no_identifiers(
    redis_url: str, tmp_path: Path, workers: int
) -> None:
    api_key = f"om_{uuid.uuid4().hex}"
    other_key = f"om_{uuid.uuid4().hex}"
    tenant = tenant_of(api_key)
    await add(redis_url, tenant, RuleType.EMAIL, "jane.doe@acme.com")
    await add(redis_url, tenant, RuleType.PHONE, "(512) 555-1003")  # Karl's second phone
    await add(redis_url, GLOBAL, RuleType.EMAIL, f"nobody-{uuid.uuid4().hex[:8]}@globex.com")
    fake = FakeOpenmart()
    fake.search_rows = [{"id": "r1", "content": {
        "business_name": "Acme Store", "business_emails": ["info@acme.com", "owner@acme.com"],
        "business_phones": ["(512) 555-0100", "512.555.0101"]}}]
    sent_emails = {"jane.doe@acme.com", "karl.marx@acme.com", "owner@acme.com",
                   "ada.lovelace@acme.com"}
    sent_phones = {"(512) 555-1003", "512-555-1003", "+1 512 555 1005", "5125551002",
                   "+15125550100", "512.555.1007"}
    request_id = f"client-{uuid.uuid4().hex}"
    auth = {"X-API-Key": api_key}
    bodies: list[object] = []
    returned_ids: list[str] = []
    expected_requests = 0

    async with fake_upstream(fake) as (_, upstream), denyproxy_serve(
        tmp_path, "--upstream", upstream, "--redis", redis_url, "--log-format", "json",
        "--log-level", "info", "--workers", str(workers),
    ) as proxy, aiohttp.ClientSession() as client:

        async def call(method: str, path: str, **kwargs: object) -> aiohttp.ClientResponse:
            nonlocal expected_requests
            expected_requests += 1
            async with client.request(method, f"{proxy.url}{path}", **kwargs) as r:
                await r.read()
                returned_ids.append(r.headers["X-Request-Id"])
                if r.content_type == "application/json":
                    bodies.append(await r.json())
                return r

        # the documented batch flow, with identifiers in query strings and bodies
        query = (f"?email={quote('jane.doe@acme.com')}&phone={quote('(512) 555-1003')}"
                 f"&contact=karl.marx@acme.com&tel=512-555-1003")
        r = await call("POST", f"/api/v1/task/batch/find_people{query}", headers=auth,
                       json=[{"domain": "acme.com", "company_name": "Acme",
                              "email": "jane.doe@acme.com", "phone": "(512) 555-1003",
                              "tracking_id": "+1 512 555 1005"}])
        assert r.status == 200
        batch = bodies[-1]["batch_id"]
        r = await call("GET", f"/api/v1/task/batch/{batch}/task_ids?status=COMPLETED",
                       headers=auth)
        (task_id,) = bodies[-1]
        r = await call("GET", f"/api/v1/task/{task_id}?email=ada.lovelace@acme.com"
                       f"&phone=5125551002", headers={**auth, "X-Request-Id": request_id})
        assert r.status == 200
        suppressed = int(r.headers["X-Denyproxy-Suppressed"])
        assert suppressed >= 2  # Jane's email, Karl's second phone
        assert r.headers["X-Request-Id"] == request_id
        result = bodies[-1]
        assert result["data"][0]["email"] is None

        # more routes: search (filtered body), deny-rules API, a streamed path carrying an
        # email and phone, an upstream error, a request id that is itself an email, Bearer
        r = await call("POST", "/api/v1/search?q=owner@acme.com", headers=auth,
                       json={"query": "owner@acme.com", "phone": "+15125550100"})
        assert r.status == 200
        r = await call("POST", "/api/v2/deny-rules", headers=auth,
                       json={"type": "phone", "values": ["+15125550100", "512.555.1007"]})
        assert r.status == 200
        r = await call("POST", "/api/v2/deny-rules/check", headers=auth,
                       json={"type": "email", "values": ["owner@acme.com"]})
        assert r.status == 200
        r = await call("POST", "/api/v2/deny-rules", headers=auth,
                       json={"type": "email", "values": ["not-an-email", "owner@acme.com"]})
        assert r.status == 400  # the detail names bad values: to the caller, never to the log
        r = await call("GET", "/echo/jane.doe@acme.com/512-555-1003?phone=%2B15125551003",
                       headers={"Authorization": f"Bearer {api_key}"})
        assert r.status == 200
        r = await call("GET", "/bad-json?email=jane.doe@acme.com", headers=auth)
        assert r.status == 502
        r = await call("GET", "/api/v1/search",
                       headers={**auth, "X-Request-Id": "jane.doe@acme.com"})
        r = await call("GET", "/api/v2/credit-balance", headers={"X-API-Key": other_key})
        assert r.status == 200
        generated_id = returned_ids[-1]
        proxy.proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proxy.proc.wait, 20) == 0

    lines = proxy.lines()
    assert proxy.stdout.read_text() == ""
    assert lines, "no log lines at all"
    entries = []
    for line in lines:
        entry = json.loads(line)  # every line is one JSON object …
        assert isinstance(entry, dict), line
        assert entry.keys() >= BASE_FIELDS, line  # … with timestamp, level and event
        datetime.fromisoformat(entry["ts"])
        assert entry["level"] in ("debug", "info", "warning", "error", "critical"), line
        entries.append(entry)
    events = [e["event"] for e in entries]
    if workers == 1:
        assert "listening" in events and "draining" in events
    else:
        assert "workers" in events  # the supervisor; the workers' access lines are JSON too

    access = [e for e in entries if e["event"] == "request"]
    assert len(access) == expected_requests
    for entry in access:
        assert entry.keys() >= ACCESS_FIELDS, entry
        assert isinstance(entry["duration_ms"], float | int) and entry["duration_ms"] >= 0
        assert isinstance(entry["suppressed"], int)
        assert len(entry["tenant"]) <= 8
    assert sorted(e["request_id"] for e in access) == sorted(returned_ids)
    (result_line,) = [e for e in access if e["request_id"] == request_id]
    assert result_line["route"] == "/api/v1/task/{id}"
    assert result_line["status"] == 200 and result_line["method"] == "GET"
    assert result_line["suppressed"] == suppressed > 0
    assert result_line["tenant"] == tenant[:8]
    routes = {e["route"] for e in access}
    assert "/api/v1/task/batch/{id}/task_ids" in routes and "/echo/{id}/{id}" in routes
    assert "/api/v1/task/batch/find_people" in routes
    assert {e["status"] for e in access} >= {200, 400, 502}
    assert "jane.doe@acme.com" not in returned_ids  # an id that is not an id is replaced
    (generated,) = [e for e in access if e["request_id"] == generated_id]
    assert generated["tenant"] == tenant_of(other_key)[:8]

    # Nothing identifying in any line: keys, full tenant hashes, emails, phones in all forms.
    response_strings = {s for doc in bodies for s in strings(doc)}
    emails = sent_emails | {s for s in response_strings if "@" in s}
    phones = set(sent_phones)
    for person in fake.people:
        for phone in person["phones"]:
            phones.add(phone["phone_number"])
    phones |= {"(512) 555-0100", "512.555.0101"}
    forbidden = {api_key, other_key, tenant, tenant_of(other_key)}
    forbidden |= emails | {quote(e, safe="") for e in emails}
    for phone in phones:
        forbidden |= phone_forms(phone)
    text = proxy.stderr.read_text()
    leaked = sorted(f for f in forbidden if f in text)
    assert not leaked, f"log lines carry {leaked}:\n{text}"


# ----------------------------------------------------------------------- format choice


def test_format_decision() -> None:
    controller, terminal = pty.openpty()
    try:
        with os.fdopen(terminal, "w", closefd=False) as tty:
            assert logs.use_json("auto", tty) is False
            assert logs.use_json("json", tty) is True
            assert logs.use_json("text", tty) is False
        assert logs.use_json("auto", io.StringIO()) is True
        assert logs.use_json("text", io.StringIO()) is False
    finally:
        os.close(controller)
        os.close(terminal)


_EMIT = (
    "import logging; from proxy import logs; logs.configure('info', {fmt!r}); "
    "logging.getLogger('denyproxy.access').info('request', extra={{'fields': "
    "{{'request_id': 'abc', 'status': 200, 'suppressed': 2}}}})"
)


def _read_all(fd: int) -> bytes:
    out = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO once the child closed the terminal
            return out
        if not chunk:
            return out
        out += chunk


def test_auto_format_is_text_on_a_terminal_and_json_elsewhere() -> None:
    controller, terminal = pty.openpty()
    try:
        proc = subprocess.Popen([sys.executable, "-c", _EMIT.format(fmt="auto")], cwd=REPO_ROOT,
                                env=_env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=terminal)
        os.close(terminal)
        terminal = -1
        output = _read_all(controller).decode()
        assert proc.wait(10) == 0
    finally:
        os.close(controller)
        if terminal >= 0:
            os.close(terminal)
    line = output.strip()
    assert not line.startswith("{"), line
    assert "INFO" in line and "request" in line and "status=200" in line and "suppressed=2" in line

    piped = subprocess.run([sys.executable, "-c", _EMIT.format(fmt="auto")], cwd=REPO_ROOT,
                           env=_env(), capture_output=True, text=True, timeout=10, check=True)
    entry = json.loads(piped.stderr)
    assert entry["event"] == "request" and entry["status"] == 200 and entry["request_id"] == "abc"


def test_warnings_and_crashes_are_json_lines_without_identifiers() -> None:
    code = (
        "import warnings; from proxy import logs; logs.configure('info', 'json'); "
        "warnings.warn('odd value jane.doe@acme.com'); "
        "raise RuntimeError('cannot handle jane.doe@acme.com / (512) 555-1003')"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=_env(),
                         capture_output=True, text=True, timeout=10)
    assert res.returncode == 1
    entries = [json.loads(line) for line in res.stderr.splitlines()]
    assert [e["level"] for e in entries] == ["warning", "critical"]
    assert entries[1]["event"] == "crashed" and "RuntimeError" in entries[1]["error"]
    assert "jane.doe" not in res.stderr and "555-1003" not in res.stderr


def test_scrub_keeps_addresses_and_small_numbers() -> None:
    text = "connect to 127.0.0.1:6379 failed after 3 tries (line 123); user +1 (512) 555-1003"
    assert logs.scrub(text) == (
        "connect to 127.0.0.1:6379 failed after 3 tries (line 123); user <redacted>"
    )
    assert logs.scrub("KeyError: 'jane.doe@acme.com'") == "KeyError: '<redacted>'"


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("/api/v1/task/3f2a9c1e-0b7d-4f4e-9a55-1c2d3e4f5a6b", "/api/v1/task/{id}"),
        ("/api/v1/task/batch/lookup_business_email", "/api/v1/task/batch/lookup_business_email"),
        ("/api/v2/deny-rules/check", "/api/v2/deny-rules/check"),
        ("/echo/jane.doe@acme.com/+15125551003", "/echo/{id}/{id}"),
        ("/keys/" + "k" * 40, "/keys/{id}"),
    ],
)
def test_route_template(path: str, template: str) -> None:
    assert logs.route_template(path) == template
