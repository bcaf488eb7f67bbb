"""`denyproxy doctor`, Redis: version, what this role's ACL allows, the local read path (store
cache), the completeness marker.

The ACL is checked by trying each command the role sends on scratch keys under `denyproxy:`
(the pattern the documented ACL users are limited to), not with ACL DRYRUN: a
least-privilege user may not run ACL commands at all, and DRYRUN needs Redis 7.
A reading role only ever reads; a writing role's scratch keys are deleted again.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from hashlib import sha1
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import NoPermissionError, RedisClusterException, RedisError

from proxy.doctor import Finding
from proxy.settings import Settings
from rules.store.keys import ready_key
from rules.store.link import RedisLink, _LinkProtocol
from rules.store.lookup_script import LOOKUP
from rules.store.redis_connection import connect

MIN_VERSION = (7, 0)
"""EVALSHA_RO, the one-call lookup a read-only user may run, arrived in Redis 7.0."""

Probe = Callable[[aioredis.Redis, str], Awaitable[Any]]


def role(settings: Settings) -> str:
    """What this process does to Redis: `consumer` writes rules, `proxy` only reads them
    (with Kafka); without Kafka the deny-rules API writes to Redis itself."""
    if settings.kafka:
        return "consumer" if settings.consumer else "proxy"
    return "proxy+rules-api"


def probes(who: str) -> dict[str, Probe]:
    """The commands `who` sends, each tried on scratch keys (k is a `denyproxy:{…}:` prefix)."""
    reads: dict[str, Probe] = {
        "SMISMEMBER": lambda r, k: r.smismember(k + "set", ["x"]),
        "GET": lambda r, k: r.get(k + "ready"),
        "HGETALL": lambda r, k: r.hgetall(k + "offsets"),
        # the lookup: a read-only script, loaded when the server lost it (rules/store)
        "SCRIPT LOAD": lambda r, k: r.script_load(LOOKUP),
        "EVALSHA_RO": lambda r, k: r.evalsha_ro(
            sha1(LOOKUP.encode()).hexdigest(), 3, k + "ready", k + "set", k + "expires",
            "1", "0", "1", "1", "x"),
        "ZSCORE": lambda r, k: r.zscore(k + "expires", "x"),  # a hit's expiry, in the script
        # the catalogue's listing, sweeps and counts (Lua)
        "ZRANGE": lambda r, k: r.zrange(k + "created", 0, 0),
        "ZREVRANGE": lambda r, k: r.zrange(k + "created", 0, 0, desc=True),  # newest first
        "ZSCAN": lambda r, k: r.zscan(k + "created", 0),
        "ZCARD": lambda r, k: r.zcard(k + "created"),
        "ZLEXCOUNT": lambda r, k: r.zlexcount(k + "types", "-", "+"),
        # named lists: a key's assigned lists (lookups), list sizes (deny-lists, admin API)
        "SMEMBERS": lambda r, k: r.smembers(k + "assigned"),
        "SCARD": lambda r, k: r.scard(k + "set"),
        # EVAL declares its keys read-write: the proxy's user may write only catalogue records
        "EVAL": lambda r, k: r.eval("return 0", 1, k + "rule:doctor"),
    }
    if who == "proxy":
        return reads
    writes: dict[str, Probe] = {
        "SADD": lambda r, k: r.sadd(k + "set", "x"),
        "SREM": lambda r, k: r.srem(k + "set", "x"),
    }
    if who == "consumer":
        writes |= {
            "HSET": lambda r, k: r.hset(k + "offsets", "0", "0"),
            "SET": lambda r, k: r.set(k + "ready", "1"),
            "EXISTS": lambda r, k: r.exists(k + "ready"),
            "DEL": lambda r, k: r.delete(k + "set", k + "offsets", k + "ready"),
            "INCR": lambda r, k: r.incr(k + "version"),  # list events (one script each)
            "UNLINK": lambda r, k: r.unlink(k + "version"),  # a deleted list's entries
        }
    return reads | writes


async def redis_findings(settings: Settings) -> AsyncIterator[Finding]:
    if not settings.redis:
        yield Finding("skip", "redis", "not configured: rules live in memory")
        return
    client = connect(settings.redis, timeout=max(settings.store_timeout, 2.0),
                     cluster=settings.redis_cluster)
    try:
        yield await _version(client)
        yield await _acl(client, role(settings))
        if settings.store_cache and not settings.redis_cluster:
            yield await _cache(client)
        if settings.kafka:
            yield await _marker(client, settings)
    finally:
        await client.aclose()


async def _version(client: aioredis.Redis) -> Finding:
    """HELLO, not INFO: every authenticated user may run it, even one limited to lookups."""
    try:
        hello = await client.execute_command("HELLO")  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
    except (RedisError, RedisClusterException, OSError, TimeoutError) as exc:
        return Finding("FAIL", "redis", f"unreachable ({_why(exc)})")
    version = str(hello["version"])
    if _parse(version) < MIN_VERSION:
        need = ".".join(map(str, MIN_VERSION))
        return Finding("FAIL", "redis", f"version {version} is too old: SMISMEMBER needs {need}+")
    return Finding("ok", "redis", f"reachable, version {version}")


async def _acl(client: aioredis.Redis, who: str) -> Finding:
    prefix = f"denyproxy:{{doctor-{secrets.token_hex(4)}}}:"
    for command, probe in probes(who).items():
        try:
            await probe(client, prefix)
        except NoPermissionError:
            return Finding("FAIL", "redis ACL", f"this user may not run {command} on denyproxy:* "
                           f"keys, which the {who} role needs (see docs/redis.md)")
        except (RedisError, RedisClusterException, OSError, TimeoutError) as exc:
            return Finding("FAIL", "redis ACL", f"{command} failed ({_why(exc)})")
    return Finding("ok", "redis ACL", f"allows the {who} role: {', '.join(probes(who))}")


class _Opened:
    """The link's Tracker, told only whether tracking was set up (or why not)."""

    def __init__(self) -> None:
        self.refused: str | None = "never set up"

    def opened(self, link: _LinkProtocol | None, refused: str | None) -> None:
        self.refused = refused

    def invalidated(self, keys: list[bytes] | None) -> None:
        pass

    def lost(self) -> None:
        pass


async def _cache(client: aioredis.Redis) -> Finding:
    """The lookup link set up as serve sets it up (HELLO 3, CLIENT TRACKING ON), then the PING
    that waits for invalidations after this process's own writes. A refusal is a warning:
    lookups still read Redis, correct but slower."""
    opened, ping = _Opened(), True
    link = RedisLink.of(client, opened)
    try:
        await link.call([("PING",)])
    except NoPermissionError:
        ping = False
    except (RedisError, OSError, TimeoutError) as exc:
        return Finding("FAIL", "store cache", f"lookup link failed ({_why(exc)})")
    finally:
        await link.aclose()
    need = "the ACL needs +client|tracking +ping (see docs/redis.md)"
    if opened.refused is not None:
        return Finding("warn", "store cache", f"off, every lookup reads Redis "
                       f"({opened.refused}); {need}")
    if not ping:
        return Finding("warn", "store cache", "on, but PING refused: this process's own rule "
                       f"writes may answer before its lookups see them; {need}")
    return Finding("ok", "store cache", "client tracking on: repeated lookups from memory")


async def _marker(client: aioredis.Redis, settings: Settings) -> Finding:
    key = ready_key(settings.topic)
    try:
        present = await client.get(key) is not None
    except (RedisError, RedisClusterException, OSError, TimeoutError) as exc:
        return Finding("FAIL", "rule set", f"cannot read {key} ({_why(exc)})")
    if present:
        return Finding("ok", "rule set", f"marked complete ({key})")
    detail = f"not marked complete ({key} missing): filtered routes answer 503 until the "
    if settings.consumer:
        return Finding("warn", "rule set", detail + "in-process consumer has (re)built it")
    return Finding("FAIL", "rule set", detail + "`denyproxy consume` for this topic has")


def _parse(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split(".")[:2] if p.isdigit())


def _why(exc: BaseException) -> str:
    """Redis errors name host and port, never the password; the class says the rest."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
