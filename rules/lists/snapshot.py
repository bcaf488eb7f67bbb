"""Named lists as whole records: read back after a write (for the changelog), restored by a
rebuild (issue #15 for #13's lists).

A list's entries are rules of its scope and travel as rule records (rules/store/snapshot.py);
this module carries what is not a rule: a list's metadata and the tenants it is assigned to.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence

import redis.asyncio as aioredis

from rules.changelog import Entry, ListRecord, list_key
from rules.events import partition_of
from rules.model import GLOBAL, RULE_TYPES, Change, ListChange, RuleType
from rules.scopes import list_scope
from rules.store.keys import LISTS, list_tenants_key, lists_meta_key, rule_key

ListRule = tuple[str, RuleType, str]
"""scope, type, normal form (as rules/store/snapshot.Rule)."""


def touched_lists(changes: Sequence[Change]) -> list[str]:
    """The ids of every list a slice changed, once, in first-seen order."""
    return list(dict.fromkeys(c.list_id for c in changes if isinstance(c, ListChange)))


async def deleted_entries(client: aioredis.Redis, changes: Sequence[Change]) -> list[ListRule]:
    """The entries the slice's `list.delete`s are about to purge, read before the write, so
    that the changelog tombstones them with the list (its read-back then finds no record)."""
    ids = list(dict.fromkeys(
        c.list_id for c in changes if isinstance(c, ListChange) and c.op == "delete"
    ))
    if not ids:
        return []
    pipe = client.pipeline(transaction=False)
    wanted = [(list_scope(i), t) for i in ids for t in RULE_TYPES]
    for scope, rule_type in wanted:
        pipe.smembers(rule_key(scope, rule_type))
    replies = await pipe.execute()
    return [(scope, t, str(v)) for (scope, t), got in zip(wanted, replies, strict=True)
            for v in sorted(got)]


async def list_entries(
    client: aioredis.Redis, ids: Sequence[str], partitions: int
) -> list[Entry]:
    """The changelog entries of lists as the store holds them now: metadata and tenants, or a
    tombstone for a list that is gone."""
    if not ids:
        return []
    pipe = client.pipeline(transaction=False)
    for list_id in ids:
        pipe.hget(lists_meta_key(), list_id)
        pipe.smembers(list_tenants_key(list_id))
    replies = await pipe.execute()
    p = partition_of(GLOBAL.encode(), partitions) if partitions else 0
    out: list[Entry] = []
    for n, list_id in enumerate(ids):
        meta, tenants = replies[2 * n], replies[2 * n + 1]
        out.append((list_key(list_id), None if meta is None else _record(list_id, meta,
                                                                          tenants, p)))
    return out


def _record(list_id: str, meta: str, tenants: Iterable[str], partition: int) -> ListRecord:
    data = json.loads(meta)
    return ListRecord(
        list_id, str(data.get("name", "")), str(data.get("description") or "") or None,
        int(data.get("created_at", 0)), int(data.get("updated_at", 0)),
        tuple(sorted(str(t) for t in tenants)), partition,
    )


async def lists_in(client: aioredis.Redis, partitions: int) -> list[Entry]:
    """Every list of a database as changelog entries (seeding a changelog)."""
    ids = sorted(str(i) for i in await client.hkeys(lists_meta_key()))
    return await list_entries(client, ids, partitions)


RESTORE = """
-- KEYS: lists meta. ARGV: key prefix, version floor (ms), list id, name, description,
--       created_at, updated_at, tenants... (the metadata encoded as the list script does)
local base, floor, id = ARGV[1], tonumber(ARGV[2]), ARGV[3]
redis.call('HSET', KEYS[1], id, cjson.encode({name = ARGV[4], description = ARGV[5],
           created_at = tonumber(ARGV[6]), updated_at = tonumber(ARGV[7])}))
for i = 8, #ARGV do
  local t = ARGV[i]
  redis.call('SADD', base .. 'tenants:' .. id, t)
  redis.call('SADD', base .. 'assigned:' .. t, id)
  local v = base .. 'version:' .. t
  if (tonumber(redis.call('GET', v)) or 0) < floor then redis.call('SET', v, floor)
  else redis.call('INCR', v) end
end
return 1
"""
"""What the list script leaves for a live list. A tenant's assignments version starts at the
restore's time in ms, above any version a proxy can have cached from the lost store (versions
are counters from 0, or an earlier restore's ms plus changes): it re-reads the key's lists."""


async def restore_lists(client: aioredis.Redis, records: Iterable[ListRecord]) -> int:
    """Write lists into a store that lost them (or a generation not serving yet)."""
    script = client.register_script(RESTORE)
    floor, pipe, count = round(time.time() * 1000), client.pipeline(transaction=False), 0
    for r in records:
        args: list[str | int] = [LISTS, floor, r.list_id, r.name, r.description or "",
                                 r.created_at, r.updated_at, *r.tenants]
        await script([lists_meta_key()], args, client=pipe)
        count += 1
    if count:
        await pipe.execute()
    return count
