"""`denyproxy doctor`: check, in order, what `serve` needs before it is trusted with traffic.

It reads the same settings as `serve` and prints one line per check: the upstream over TLS,
Redis (version, what this role's ACL allows, the completeness marker), Kafka (auth, topics,
retention as rules/EVENTS.md documents, the dead-letter topic) and the clock against the
broker. It stops at the first failure with exit code 1. Lines never carry a secret: details
are built from settings the operator may see, and every line is scrubbed of the configured
passwords before it is printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Literal, TextIO
from urllib.parse import urlsplit

import aiohttp

from proxy.settings import Settings
from proxy.tls import tls_problem, upstream_ssl_context

Status = Literal["ok", "warn", "skip", "FAIL"]
Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class Finding:
    """One printed line: a check's status, its name and what it saw."""

    status: Status
    check: str
    detail: str

    def line(self) -> str:
        return f"{self.status:<4} {self.check}: {self.detail}"


async def run(settings: Settings, out: TextIO | None = None, clock: Clock = time.time) -> int:
    """Every check in order; 1 at the first failure, else 0 (warnings do not fail)."""
    out = out or sys.stdout
    secrets = _secrets(settings)
    async for finding in findings(settings, clock):
        print(scrub(finding.line(), secrets), file=out, flush=True)
        if finding.status == "FAIL":
            return 1
    return 0


async def findings(settings: Settings, clock: Clock) -> AsyncIterator[Finding]:
    """The checks in the order the brief of `doctor` names them; each may stop the run."""
    from proxy.doctor_kafka import kafka_findings
    from proxy.doctor_redis import redis_findings

    yield await upstream_finding(settings)
    async for finding in redis_findings(settings):
        yield finding
    async for finding in kafka_findings(settings, clock):
        yield finding


def origin(url: str) -> str:
    """scheme://host:port of a URL: what lines show of an address (never user info)."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}"


async def upstream_finding(settings: Settings) -> Finding:
    """A HEAD to the base URL with the proxy's own TLS settings; any HTTP status will do."""
    where = origin(settings.upstream)
    timeout = aiohttp.ClientTimeout(total=settings.connect_timeout + 5)
    connector = aiohttp.TCPConnector(ssl=upstream_ssl_context(settings.upstream_ca_file))
    try:
        async with (
            aiohttp.ClientSession(connector=connector, timeout=timeout) as session,
            session.head(settings.upstream, allow_redirects=False) as response,
        ):
            status = response.status
    except aiohttp.ClientSSLError as exc:
        return Finding("FAIL", "upstream", f"{where}: {tls_problem(exc)}")
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        return Finding("FAIL", "upstream", f"{where} unreachable ({_kind(exc)})")
    tls = "TLS verified" if where.startswith("https:") else "plain HTTP, no TLS"
    return Finding("ok", "upstream", f"{where} reachable (HTTP {status}, {tls})")


def _kind(exc: BaseException) -> str:
    """An exception as a short phrase: its class, and its text when that is an OS error."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        return exc.os_error.strerror or type(exc.os_error).__name__
    return type(exc).__name__


def _secrets(settings: Settings) -> list[str]:
    found = [settings.kafka_sasl_password or ""]
    if settings.redis:
        with contextlib.suppress(ValueError):
            found.append(urlsplit(settings.redis).password or "")
    return [s for s in found if s]


def scrub(line: str, secrets: list[str]) -> str:
    """Belt and braces: a configured secret never reaches the output, whatever a library said."""
    for secret in secrets:
        line = line.replace(secret, "***")
    return line


def main(settings: Settings) -> int:
    return asyncio.run(run(settings))
