"""The catalogue read from Redis: list, search, get, export, sweep, and suppression counts.

Listing sorted by created_at pages a per-type (or all-types) ZSET by rank; by value or type it
pages the lex-ordered ZSETs (score 0, so rank order is byte order). Search scans the value
index with a server-side MATCH, then sorts the matches here: memory grows with the number of
matches, not with the catalogue. Export walks the created index with ZSCAN in fixed chunks.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from typing import TypeVar, cast

import redis.asyncio as aioredis
from redis.exceptions import NoPermissionError, RedisClusterException, RedisError

from rules.catalogue.record import Hit, ListQuery, Page, Record, sort_key
from rules.model import RULE_TYPES, RuleType
from rules.store.base import StoreUnavailableError
from rules.store.catalogue_script import (
    HITS,
    HITS_CHUNK,
    SWEEP,
    in_turns,
    ms,
    rule_id,
    sweep_args,
)
from rules.store.keys import catalogue_keys, created_key, record_key, types_key, values_key

T = TypeVar("T")
SCAN_CHUNK = 500
SEARCH_CHUNK = 5_000
"""ZSCAN's COUNT for search: matches are few, so larger steps save round trips."""
SWEEP_LIMIT = 1_000


class RedisCatalogue:
    """Reads what the store's scripts write; never writes rules itself (only sweeps, counts)."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client

    async def sweep(self, tenant: str) -> int:
        """Remove the tenant's expired rules (sets, records, indexes) now rather than later."""
        gone = 0
        for rule_type in RULE_TYPES:
            keys = catalogue_keys(tenant, rule_type)
            while True:
                args = sweep_args(tenant, rule_type, SWEEP_LIMIT)
                swept = int(await self._call(self.client.eval(SWEEP, len(keys), *keys, *args)))
                gone += swept
                if swept < SWEEP_LIMIT:
                    break
        return gone

    async def page(self, tenant: str, query: ListQuery) -> Page:
        await self._sweep_if_allowed(tenant)
        if query.search:
            return await self._search(tenant, query)
        if query.sort_by == "created_at":
            ids, total = await self._by_created(tenant, query)
        else:
            ids, total = await self._by_lex(tenant, query)
        return Page(await self.records(tenant, ids), total)

    async def _sweep_if_allowed(self, tenant: str) -> None:
        """A sweep writes the sets: the proxy's least-privilege user may not (docs/redis.md).
        It is skipped then: pages hide expired records, the next write of the scope sweeps."""
        try:
            await self.sweep(tenant)
        except StoreUnavailableError as exc:
            if not isinstance(exc.__cause__, NoPermissionError):
                raise

    async def get(self, tenant: str, rule: str) -> Record | None:
        found = await self.records(tenant, [rule])
        return found[0] if found else None

    async def records(self, tenant: str, ids: Sequence[str]) -> list[Record]:
        """The records of `ids` that exist and have not expired, in the order asked."""
        pipe = self.client.pipeline(transaction=False)
        for rule in ids:
            pipe.hgetall(record_key(tenant, rule))
        raws = await self._call(pipe.execute()) if ids else []
        now = time.time() * 1000
        records = [Record.of(raw) for raw in raws if raw]
        return [r for r in records if not r.expired(now)]

    async def export(self, tenant: str, rule_type: RuleType | None) -> AsyncIterator[list[Record]]:
        """Every record, a chunk at a time (ZSCAN: a rule present throughout appears)."""
        key, cursor = created_key(tenant, rule_type), 0
        while True:
            cursor, pairs = await self._scan(key, cursor)
            if pairs:
                yield await self.records(tenant, [member for member, _ in pairs])
            if cursor == 0:
                return

    async def record_hits(self, hits: Mapping[Hit, int], at: float) -> None:
        """One pipeline for a whole batch (read `in_turns`): count only records that still
        exist."""
        if not hits:
            return
        by_scope: dict[str, tuple[str, list[str], list[int]]] = {}  # head: its prefix, once
        async for chunk in in_turns(hits):
            for (scope, rule_type, value), count in chunk:
                if (held := by_scope.get(scope)) is None:
                    held = by_scope[scope] = (record_key(scope, ""), [], [])
                head, keys, counts = held
                keys.append(head + rule_id(scope, rule_type, value))
                counts.append(count)
        pipe, when = self.client.pipeline(transaction=False), ms(at)
        for _, keys, counts in by_scope.values():  # a scope's keys share its slot
            for i in range(0, len(keys), HITS_CHUNK):
                part = keys[i:i + HITS_CHUNK]
                pipe.eval(HITS, len(part), *part, when, *counts[i:i + HITS_CHUNK])
        await self._call(pipe.execute())

    async def _by_created(self, tenant: str, query: ListQuery) -> tuple[list[str], int]:
        key = created_key(tenant, query.type)
        pipe = self.client.pipeline(transaction=False)
        pipe.zcard(key)
        pipe.zrange(key, query.offset, query.offset + query.limit - 1, desc=query.desc)
        total, ids = await self._call(pipe.execute())
        return list(ids), int(total)

    async def _by_lex(self, tenant: str, query: ListQuery) -> tuple[list[str], int]:
        """Ranks of the lex index; a type filter is a rank range of the type-first index."""
        key = values_key(tenant) if query.sort_by == "value" and not query.type else None
        key = key or types_key(tenant)
        base, total = 0, int(await self._call(self.client.zcard(key)))
        if query.type is not None:
            low, high = f"[{query.type.value}\0", f"({query.type.value}\x01"
            pipe = self.client.pipeline(transaction=False)
            pipe.zlexcount(key, "-", f"({query.type.value}\0")
            pipe.zlexcount(key, low, high)
            base, total = map(int, await self._call(pipe.execute()))
        start, stop = _window(query, total)
        if start > stop:
            return [], total
        found = await self._call(self.client.zrange(key, base + start, base + stop))
        members = cast(list[str], list(reversed(found)) if query.desc else list(found))
        first_is_value = key == values_key(tenant)
        return [_id_of(tenant, m, first_is_value) for m in members], total

    async def _search(self, tenant: str, query: ListQuery) -> Page:
        needle = (query.search or "").lower()
        found: list[tuple[str, RuleType]] = []
        cursor, pattern = 0, f"*{_caseless_glob(needle)}*"
        while True:
            cursor, pairs = await self._scan(values_key(tenant), cursor, pattern, SEARCH_CHUNK)
            for member, _ in pairs:
                value, _, kind = member.partition("\0")
                if needle in value.lower() and (query.type is None or kind == query.type.value):
                    found.append((value, RuleType(kind)))
            if cursor == 0:
                break
        records = await self.records(tenant, [rule_id(tenant, t, v) for v, t in found])
        records.sort(key=lambda r: sort_key(query.sort_by, r), reverse=query.desc)
        return Page(records[query.offset : query.offset + query.limit], len(records))

    async def _scan(
        self, key: str, cursor: int, match: str | None = None, count: int = SCAN_CHUNK
    ) -> tuple[int, list[tuple[str, float]]]:
        reply = await self._call(self.client.zscan(key, cursor, match=match, count=count))
        return cast(tuple[int, list[tuple[str, float]]], reply)

    async def _call(self, awaitable: Awaitable[T]) -> T:
        try:
            return await awaitable
        except (RedisError, RedisClusterException, OSError) as exc:
            raise StoreUnavailableError(f"redis: {type(exc).__name__}") from exc


def _window(query: ListQuery, total: int) -> tuple[int, int]:
    """Ascending ranks (within the range) of the page asked, newest/last first when desc."""
    if not query.desc:
        return query.offset, min(query.offset + query.limit, total) - 1
    stop = total - 1 - query.offset
    return max(0, stop - query.limit + 1), stop


def _id_of(tenant: str, member: str, value_first: bool) -> str:
    first, _, second = member.partition("\0")
    value, kind = (first, second) if value_first else (second, first)
    return rule_id(tenant, RuleType(kind), value)


def _caseless_glob(text: str) -> str:
    """A Redis MATCH pattern for `text` in any case, glob characters escaped."""
    out: list[str] = []
    for char in text:
        if char.lower() != char.upper():
            out.append(f"[{char.lower()}{char.upper()}]")
        else:
            out.append("\\" + char if char in "*?[]\\^" else char)
    return "".join(out)


