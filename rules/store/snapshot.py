"""Rules as whole records: read back after a write (for the changelog), restored by a rebuild.

A restored rule gets exactly the keys the catalogue script gives it (rules/store/
catalogue_script.py): its set membership, record, listing indexes and expiry, so a store
rebuilt from the changelog equals the live one (but for `enforced_at` and suppression counts,
which belong to the store that applied and served the rule).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Sequence

import redis.asyncio as aioredis

from rules.changelog import RECORD_FIELDS, Entry, RuleRecord
from rules.events import key_of, partition_of
from rules.model import Change, RuleChange, RuleType
from rules.store.catalogue_script import rule_id, scope_name
from rules.store.keys import catalogue_keys, prefix, record_key

Rule = tuple[str, RuleType, str]
"""scope, type, normal form."""


def touched(changes: Sequence[Change]) -> list[Rule]:
    """Every rule a slice changed, once, in first-seen order (a list's own changes are not
    rules: see rules/consumer/logged.py)."""
    seen: dict[Rule, None] = {}
    for change in changes:
        if not isinstance(change, RuleChange):
            continue
        for value in change.values:
            seen[(change.tenant, change.type, value)] = None
    return list(seen)


async def entries(
    client: aioredis.Redis, rules: Sequence[Rule], partitions: int, chunk: int = 10_000
) -> list[Entry]:
    """The changelog entries of `rules` as the store holds them now: a record, or a tombstone
    for a rule that is gone (removed, or added already expired)."""
    out: list[Entry] = []
    for i in range(0, len(rules), chunk):
        part = rules[i : i + chunk]
        pipe = client.pipeline(transaction=False)
        for scope, rule_type, value in part:
            pipe.hmget(record_key(scope, rule_id(scope, rule_type, value)), *RECORD_FIELDS)
        for (scope, rule_type, value), got in zip(part, await pipe.execute(), strict=True):
            out.append(_entry(scope, rule_type, value, got, partitions))
    return out


def _entry(
    scope: str, rule_type: RuleType, value: str, got: list[str | None], partitions: int
) -> Entry:
    record = RuleRecord(scope, rule_type, value)
    if got[0] is None:  # no created_at: no record
        return record.key, None
    fields = {k: v for k, v in zip(RECORD_FIELDS, got, strict=True) if v is not None}
    p = partition_of(key_of(scope), partitions)
    return record.key, RuleRecord(scope, rule_type, value, fields, p)


RESTORE = """
-- KEYS: set, expires, created, created:<type>, values, types (keys.catalogue_keys)
-- ARGV: key prefix, scope name, scope, type, enforced ms, then 7 per rule: value,
--       created_at, updated_at, source, event_id, reason, expires_at ('' for none)
local prefix, name, scope, kind, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
for i = 6, #ARGV, 7 do
  local v = ARGV[i]
  local id = redis.sha1hex(scope .. '\\0' .. kind .. '\\0' .. v)
  redis.call('HSET', prefix .. 'rule:' .. id, 'id', id, 'type', kind, 'value', v, 'scope', name,
             'suppressions', 0, 'created_at', ARGV[i + 1], 'updated_at', ARGV[i + 2],
             'enforced_at', now, 'source', ARGV[i + 3], 'event_id', ARGV[i + 4],
             'reason', ARGV[i + 5], 'expires_at', ARGV[i + 6])
  redis.call('SADD', KEYS[1], v)
  redis.call('ZADD', KEYS[3], ARGV[i + 1], id)
  redis.call('ZADD', KEYS[4], ARGV[i + 1], id)
  redis.call('ZADD', KEYS[5], 0, v .. '\\0' .. kind)
  redis.call('ZADD', KEYS[6], 0, kind .. '\\0' .. v)
  if ARGV[i + 6] ~= '' then redis.call('ZADD', KEYS[2], ARGV[i + 6], v) end
end
return 0
"""
"""What the catalogue script leaves for a live rule, from its record: one call per batch of
rules of one scope and type (a command per key from Python costs ~60 us each client-side)."""

BATCH = 500


def _args(records: Sequence[RuleRecord], now_ms: int) -> list[str | int]:
    first = records[0]
    head: list[str | int] = [prefix(first.scope), scope_name(first.scope), first.scope,
                             first.type.value, now_ms]
    for r in records:
        head += [r.value, r.fields.get("created_at") or now_ms]
        head += [r.fields.get(k, "") for k in RECORD_FIELDS[1:]]
    return head


async def restore(client: aioredis.Redis, records: Iterable[RuleRecord], calls: int = 20) -> int:
    """Write records into a generation that is not serving yet; the number written."""
    script = client.register_script(RESTORE)
    batches: dict[tuple[str, RuleType], list[RuleRecord]] = defaultdict(list)
    for record in records:
        batches[(record.scope, record.type)].append(record)
    now_ms, count, pipe, queued = round(time.time() * 1000), 0, None, 0
    for (scope, rule_type), group in batches.items():
        for i in range(0, len(group), BATCH):
            part = group[i : i + BATCH]
            pipe = pipe or client.pipeline(transaction=False)
            await script(catalogue_keys(scope, rule_type), _args(part, now_ms), client=pipe)
            count, queued = count + len(part), queued + 1
            if queued % calls == 0:
                await pipe.execute()
    if pipe is not None:
        await pipe.execute()
    return count


async def records_in(
    client: aioredis.Redis, partitions: int, chunk: int = 1_000
) -> AsyncIterator[list[Entry]]:
    """Every live rule of a database as changelog entries, in chunks (SCAN over records)."""
    keys: list[str] = []
    async for key in client.scan_iter(match="denyproxy:{*}:rule:*", count=chunk):
        keys.append(str(key))
        if len(keys) >= chunk:
            yield await _read_records(client, keys, partitions)
            keys = []
    if keys:
        yield await _read_records(client, keys, partitions)


async def _read_records(client: aioredis.Redis, keys: list[str], partitions: int) -> list[Entry]:
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.hmget(key, "type", "value", *RECORD_FIELDS)
    out: list[Entry] = []
    for key, got in zip(keys, await pipe.execute(), strict=True):
        scope = key[key.index("{") + 1 : key.index("}")]
        if got[0] is not None and got[1] is not None:
            out.append(_entry(scope, RuleType(got[0]), got[1], got[2:], partitions))
    return out
