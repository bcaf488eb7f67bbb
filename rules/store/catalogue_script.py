"""The Lua that keeps a rule's record, its expiry and the listing indexes in step with its set.

Every write path runs it: the consumer's and `apply`'s pipelines (APPLY), the direct write
behind its limit checks (write_script.py embeds FUNCTIONS), expiry sweeps (SWEEP).
All keys of one scope share its hash tag, so one script touches one Cluster slot.

KEYS (catalogue_keys): set, expires, created, created:<type>, values, types.
ARGV (meta_args): op, scope, type, key prefix, at ms, source, event id, reason, expires ms;
then the values (APPLY) or the sweep limit (SWEEP). Empty strings stand for "none".
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Mapping

from rules.catalogue.record import Hit
from rules.model import ChangeMeta, RuleChange, RuleType
from rules.scopes import scope_kind
from rules.store.keys import prefix

META_ARGS = 9
CHUNK = 1_000
"""Values per script call from a pipeline: each value costs ~2 commands plus batched ones."""

FUNCTIONS = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function scope_kind(s)
  if s == '*' then return 'global' end
  if string.sub(s, 1, 5) == 'list:' then return 'list' end
  if string.find(s, '/', 1, true) then return 'campaign' end
  return 'key'
end
local function rule_id(v)
  return redis.sha1hex(ARGV[2] .. '\\0' .. ARGV[3] .. '\\0' .. v)
end
local function batch(command, key, items)
  for i = 1, #items, 1000 do
    redis.call(command, key, unpack(items, i, math.min(i + 999, #items)))
  end
end
local function drop(K, values)
  local ids, keys, by_value, by_type = {}, {}, {}, {}
  for i, v in ipairs(values) do
    ids[i] = rule_id(v)
    keys[i] = ARGV[4] .. 'rule:' .. ids[i]
    by_value[i], by_type[i] = v .. '\\0' .. ARGV[3], ARGV[3] .. '\\0' .. v
  end
  batch('SREM', K[1], values)
  batch('ZREM', K[2], values)
  batch('ZREM', K[3], ids)
  batch('ZREM', K[4], ids)
  batch('ZREM', K[5], by_value)
  batch('ZREM', K[6], by_type)
  for i = 1, #keys, 1000 do redis.call('DEL', unpack(keys, i, math.min(i + 999, #keys))) end
end
local function keep(K, values, now)
  local at, scope = ARGV[5], scope_kind(ARGV[2])
  local created, by_value, by_type, expiring = {}, {}, {}, {}
  local update = {'updated_at', at, 'enforced_at', now, 'source', ARGV[6], 'event_id', ARGV[7],
                  'reason', ARGV[8], 'expires_at', ARGV[9]}
  for _, v in ipairs(values) do
    local id = rule_id(v)
    local rk = ARGV[4] .. 'rule:' .. id
    if redis.call('EXISTS', rk) == 0 then
      redis.call('HSET', rk, 'id', id, 'type', ARGV[3], 'value', v, 'scope', scope,
                 'suppressions', 0, 'created_at', at, unpack(update))
      local n = #created
      created[n + 1], created[n + 2] = at, id
      by_value[n + 1], by_value[n + 2] = 0, v .. '\\0' .. ARGV[3]
      by_type[n + 1], by_type[n + 2] = 0, ARGV[3] .. '\\0' .. v
    else
      redis.call('HSET', rk, unpack(update))
    end
    if ARGV[9] ~= '' then expiring[#expiring + 1] = ARGV[9]; expiring[#expiring + 1] = v end
  end
  batch('SADD', K[1], values)
  batch('ZADD', K[3], created)
  batch('ZADD', K[4], created)
  batch('ZADD', K[5], by_value)
  batch('ZADD', K[6], by_type)
  if ARGV[9] == '' then batch('ZREM', K[2], values) else batch('ZADD', K[2], expiring) end
end
local function sweep(K, now, limit)
  local gone = redis.call('ZRANGEBYSCORE', K[2], '-inf', now, 'LIMIT', 0, limit)
  drop(K, gone)
  return #gone
end
local function change(K, first)
  local now = now_ms()
  sweep(K, now, 100)
  local values = {}
  for i = first, #ARGV do values[#values + 1] = ARGV[i] end
  local expired = ARGV[9] ~= '' and tonumber(ARGV[9]) <= now
  if ARGV[1] == 'add' and not expired then keep(K, values, now) else drop(K, values) end
end
"""
# An add that arrives already expired (a replay of an old event) removes the rule, as its
# expiry would have: a live store and a rebuild from the topic end with the same catalogue.

APPLY = FUNCTIONS + f"change(KEYS, {META_ARGS + 1})\nreturn 0\n"
SWEEP = FUNCTIONS + f"return sweep(KEYS, now_ms(), tonumber(ARGV[{META_ARGS + 1}]))\n"
HITS = """
for i, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then
    redis.call('HINCRBY', key, 'suppressions', ARGV[i + 1])
    redis.call('HSET', key, 'last_suppressed_at', ARGV[1])
  end
end
return 0
"""
"""Suppression counts of one scope's records (KEYS; ARGV: at ms, then each key's count): only
a record that still exists is counted (never re-created). One call per scope and chunk, not
one per record: a flush of distinct hits cost a pipelined EVAL (redis-py packing) each."""
HITS_CHUNK = 500


async def in_turns(hits: Mapping[Hit, int]) -> AsyncIterator[list[tuple[Hit, int]]]:
    """A flush's hits in chunks of HITS_CHUNK, yielding to the loop between them: a second of
    distinct contacts' hits, hashed in one go, held every request 25+ ms. Chunks, not items:
    an async generator's step per hit cost more than hashing it. A copy: the batch may change
    meanwhile."""
    items = list(hits.items())
    for start in range(0, len(items), HITS_CHUNK):
        if start:
            await asyncio.sleep(0)
        yield items[start:start + HITS_CHUNK]


def rule_id(scope: str, rule_type: RuleType, value: str) -> str:
    """Stable for (scope, type, value): the same as the script's redis.sha1hex."""
    return hashlib.sha1(f"{scope}\0{rule_type}\0{value}".encode()).hexdigest()  # StrEnum


def ms(seconds: float) -> int:
    return round(seconds * 1000)


def meta_args(change: RuleChange) -> list[str | int]:
    """ARGV 1..9 of the scripts for `change` (a change without meta is made now)."""
    meta = change.meta or ChangeMeta(at=time.time())
    expires = "" if meta.expires_at is None else ms(meta.expires_at)
    return [
        change.op, change.tenant, change.type.value, prefix(change.tenant), ms(meta.at),
        meta.source or "", meta.event_id or "", meta.reason or "", expires,
    ]


def sweep_args(tenant: str, rule_type: RuleType, limit: int) -> list[str | int]:
    return [*meta_args(RuleChange("remove", tenant, rule_type, ())), limit]


def scope_name(tenant: str) -> str:
    return scope_kind(tenant)
