"""One rule write checked against the key's limits (and the store's marker) in one Lua script.

Redis runs a script atomically, so two proxies cannot both pass a limit check and then both
write. All keys a script touches share the tenant's Cluster slot: the tenant's rule sets,
catalogue and write counter are tagged `{<tenant>}`, and the markers are the ones kept in that
slot. The write itself is the catalogue's `change` (rules/store/catalogue_script.py): sets, records
and indexes in one step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from rules.model import RULE_TYPES, RuleChange
from rules.store.base import (
    Limits,
    StoreFedByKafkaError,
    StoreNotInitialisedError,
    TooManyRulesError,
    TooManyWritesError,
)
from rules.store.catalogue_script import FUNCTIONS, META_ARGS, meta_args
from rules.store.keys import catalogue_keys, claim_key, rule_key, writes_key

WINDOW_MS = 60_000
FIRST_VALUE = META_ARGS + 6  # ARGV index of the first value (Lua counts from 1)
_SETS = 7  # KEYS index of the tenant's first rule set (after the 6 catalogue keys)
_LAST_SET = _SETS + len(RULE_TYPES) - 1
_WRITES, _MUST, _MUST_NOT = _LAST_SET + 1, _LAST_SET + 2, _LAST_SET + 3
_ADMITTED = _MUST  # admit mode has no markers: its reservations take that place

SCRIPT = FUNCTIONS + f"""
-- KEYS: the 6 catalogue keys of the target (rules/store/catalogue_script.py), the tenant's sets
--       (one per rule type),
--       write counter[, marker that must exist, marker that must not exist] (write mode)
--       or [, reservations] (admit mode: ZSET '<count>:<token>' -> expiry ms),
--       and last the scope's topic claim (keys.claim_key)
-- ARGV: the 9 catalogue meta args, max rules, writes per window, window ms, topic ('' for a
--       write without Kafka), mode ('write'|'admit:<token>'), values...
local first = {FIRST_VALUE}
local op, max_rules, mode = ARGV[1], tonumber(ARGV[first - 5]), ARGV[first - 1]
local per_window, window_ms = tonumber(ARGV[first - 4]), tonumber(ARGV[first - 3])
local admit = mode ~= 'write'
local owner = redis.call('GET', KEYS[#KEYS])
if owner and owner ~= ARGV[first - 2] then return {{5, owner}} end
if not admit then
  if redis.call('EXISTS', KEYS[{_MUST_NOT}]) == 1 then return {{3}} end
  if redis.call('EXISTS', KEYS[{_MUST}]) == 0 then return {{4}} end
end
local used = tonumber(redis.call('GET', KEYS[{_WRITES}]) or '0')
if used >= per_window then return {{1, redis.call('PTTL', KEYS[{_WRITES}])}} end
local now, reserved, adding = now_ms(), 0, 0
if admit then  -- adds admitted but not yet applied (or released) count as held
  redis.call('ZREMRANGEBYSCORE', KEYS[{_ADMITTED}], '-inf', now)
  for _, held in ipairs(redis.call('ZRANGE', KEYS[{_ADMITTED}], 0, -1)) do
    reserved = reserved + tonumber(string.match(held, '^(%d+):'))
  end
end
if op == 'add' then
  local held = reserved
  for i = {_SETS}, {_LAST_SET} do held = held + redis.call('SCARD', KEYS[i]) end
  for i = first, #ARGV, 1000 do
    local seen = redis.call('SMISMEMBER', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
    for _, member in ipairs(seen) do adding = adding + 1 - member end
  end
  if held + adding > max_rules then return {{2, held, adding}} end
end
if redis.call('INCR', KEYS[{_WRITES}]) == 1 then
  redis.call('PEXPIRE', KEYS[{_WRITES}], window_ms)
end
if not admit then change(KEYS, first) return {{0}} end
if adding == 0 then return {{0}} end
local reservation = adding .. ':' .. string.sub(mode, 7)
redis.call('ZADD', KEYS[{_ADMITTED}], now + window_ms, reservation)
redis.call('PEXPIRE', KEYS[{_ADMITTED}], window_ms)
return {{0, reservation}}
"""
# unpack() in chunks of 1000: Redis's Lua refuses to unpack more than ~8000 values at once.


def script_keys(change: RuleChange, extra: Sequence[str]) -> list[str]:
    """KEYS of one call, in the order SCRIPT reads them; `extra`: the markers (write mode) or
    the reservations (admit mode)."""
    tenant = change.tenant
    sets = [rule_key(tenant, t) for t in RULE_TYPES]
    return [*catalogue_keys(tenant, change.type), *sets, writes_key(tenant), *extra,
            claim_key(tenant)]


def script_args(
    change: RuleChange, limits: Limits, *, apply: bool, token: str = "", topic: str = ""
) -> list[str | int]:
    """`token` names an admission's reservation (unique per call: a uuid); `topic`: the one
    an admitted change is published to (a write without Kafka has none: a claimed scope is
    refused)."""
    mode = "write" if apply else f"admit:{token}"
    head = [*meta_args(change), limits.max_rules, limits.writes_per_minute, WINDOW_MS]
    return [*head, topic, mode, *change.values]


def raise_for(reply: Sequence[int | bytes | str], limits: Limits, feeder_topic: str) -> None:
    """The script's answer as an error; nothing when the write was admitted (and applied)."""
    code = int(reply[0])
    if code == 1:
        retry_after = max(1, math.ceil(int(reply[1]) / 1000))
        raise TooManyWritesError(retry_after, limits.writes_per_minute)
    if code == 2:
        raise TooManyRulesError(int(reply[1]), int(reply[2]), limits.max_rules)
    if code == 3:
        raise StoreFedByKafkaError(
            f"this rule store is kept by the Kafka consumer of topic {feeder_topic}: write rules"
            " through Kafka (configure --kafka), or a rebuild would drop them; nothing was changed"
        )
    if code == 4:
        raise StoreNotInitialisedError(NOT_INITIALISED + "; nothing was changed")
    if code == 5:
        owner = reply[1].decode() if isinstance(reply[1], bytes) else str(reply[1])
        raise StoreFedByKafkaError(
            f"this key's rules are kept by the Kafka consumer of topic {owner}, which claimed"
            " them on this Redis (one topic per Redis database); nothing was changed"
        )


NOT_INITIALISED = (
    "suppression store not initialised: its rules may have been lost (flushed or restarted"
    " empty); an operator must check and run `denyproxy store init`"
)
