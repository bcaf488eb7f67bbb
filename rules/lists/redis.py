"""Named lists in Redis: their metadata and assignments in the slot {lists}, changed by one
script per change (atomic on a Cluster too); their entries in the list's own scope.

Deleting a list unassigns it first (its entries stop suppressing at once), then drops its
entries and their catalogue records (PURGE) in the same pipeline.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from redis.asyncio.client import Pipeline

from rules.lists.model import Assigned, ListInfo, by_name
from rules.model import RULE_TYPES, ListChange
from rules.scopes import list_scope
from rules.store.base import StoreUnavailableError
from rules.store.keys import (
    LISTS,
    assigned_key,
    catalogue_keys,
    created_key,
    list_tenants_key,
    lists_meta_key,
    lists_version_key,
    prefix,
    rule_key,
)

if TYPE_CHECKING:
    from rules.store.redis import RedisStore

CHANGE = """
local meta, base, op, id, at = KEYS[1], ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
-- every tenant whose lists change gets its version bumped: its cached lists are re-read
local tkey = base .. 'tenants:' .. id
local function unassign()
  for _, t in ipairs(redis.call('SMEMBERS', tkey)) do
    redis.call('SREM', base .. 'assigned:' .. t, id)
    redis.call('INCR', base .. 'version:' .. t)
  end
  redis.call('DEL', tkey)
end
local cur = redis.call('HGET', meta, id)
if op == 'create' then
  local created = at
  if cur then created = cjson.decode(cur).created_at end
  redis.call('HSET', meta, id, cjson.encode({name = ARGV[5], description = ARGV[6],
                                             created_at = created, updated_at = at}))
  return 1
end
if not cur then return 0 end
if op == 'update' then
  local m = cjson.decode(cur)
  if ARGV[7] == '1' then m.name = ARGV[5] end
  if ARGV[8] == '1' then m.description = ARGV[6] end
  m.updated_at = at
  redis.call('HSET', meta, id, cjson.encode(m))
  return 1
end
unassign()
if op == 'delete' then
  redis.call('HDEL', meta, id)
else
  for i = 9, #ARGV do
    redis.call('SADD', tkey, ARGV[i])
    redis.call('SADD', base .. 'assigned:' .. ARGV[i], id)
    redis.call('INCR', base .. 'version:' .. ARGV[i])
  end
end
return 1
"""
"""KEYS: meta. ARGV: key prefix, op, list id, at ms, name, description, name given,
description given, tenants... (keys under the prefix are the {lists} slot's, undeclared)."""

PURGE = """
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
for i = 1, #ids, 1000 do
  local batch = {}
  for j = i, math.min(i + 999, #ids) do batch[#batch + 1] = ARGV[1] .. 'rule:' .. ids[j] end
  redis.call('UNLINK', unpack(batch))
end
redis.call('UNLINK', unpack(KEYS))
return #ids
"""
"""KEYS: the list scope's `created` index first, then every other key of its catalogue."""


def queue_list_change(pipe: Pipeline, change: ListChange) -> None:
    """The change's script call; a delete also purges the list's entries."""
    name, description = change.name or "", change.description or ""
    pipe.eval(
        CHANGE, 1, lists_meta_key(), LISTS, change.op, change.list_id,
        round(change.at * 1000), name, description, int(change.name is not None),
        int(change.description is not None), *change.tenants,
    )
    if change.op == "delete":
        scope = list_scope(change.list_id)
        keys = {key for t in RULE_TYPES for key in catalogue_keys(scope, t)}
        keys.discard(created_key(scope))
        pipe.eval(PURGE, len(keys) + 1, created_key(scope), *sorted(keys), prefix(scope))


class RedisLists:
    """The read side of lists in a RedisStore (its errors mapped like its lookups)."""

    def __init__(self, store: RedisStore) -> None:
        self.store = store

    async def lists(self, ids: Sequence[str] | None = None) -> list[ListInfo]:
        client = self.store.client
        if ids is None:
            raw = await self.store._call(client.hgetall(lists_meta_key()))
            found = {_text(k): _text(v) for k, v in raw.items()}
        elif not ids:
            return []
        else:
            values = await self.store._call(client.hmget(lists_meta_key(), list(ids)))
            found = {i: _text(v) for i, v in zip(ids, values, strict=True) if v is not None}
        counts = await self._counts(list(found))
        return by_name([_info(i, found[i], counts[i]) for i in found])

    async def _counts(self, ids: list[str]) -> dict[str, int]:
        """Entries per list: one SCARD per type, all in one pipeline."""
        if not ids:
            return {}
        pipe = self.store.client.pipeline(transaction=False)
        for list_id in ids:
            for rule_type in RULE_TYPES:
                pipe.scard(rule_key(list_scope(list_id), rule_type))
        replies = await self.store._run(pipe)
        size = len(RULE_TYPES)
        return {i: sum(replies[n * size : (n + 1) * size]) for n, i in enumerate(ids)}

    async def list_tenants(self, list_id: str) -> list[str]:
        members = await self.store._call(self.store.client.smembers(list_tenants_key(list_id)))
        return sorted(_text(m) for m in members)

    async def assigned(self, tenant: str) -> Assigned:
        """The version, the set, the version again (plain reads: a read-only ACL user may
        run them): the set is the version's when both reads agree (a change bumps it in the
        same script)."""
        for _ in range(3):
            pipe = self.store.client.pipeline(transaction=False)
            pipe.get(lists_version_key(tenant))
            pipe.smembers(assigned_key(tenant))
            pipe.get(lists_version_key(tenant))
            before, members, after = await self.store._run(pipe)
            if before == after:
                return Assigned(_version(before), tuple(sorted(_text(m) for m in members)))
        raise StoreUnavailableError("the key's list assignments kept changing")


def _info(list_id: str, raw: str, entries: int) -> ListInfo:
    meta: dict[str, Any] = json.loads(raw)
    return ListInfo(
        list_id, str(meta.get("name", "")), str(meta.get("description") or "") or None,
        entries, int(meta.get("created_at", 0)), int(meta.get("updated_at", 0)),
    )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _version(value: bytes | str | None) -> int | None:
    return None if value is None else int(value)
