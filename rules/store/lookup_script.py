"""One lookup as one server-side script: membership, expiry and the completeness marker.

Nine commands a lookup used to send (SMISMEMBER and ZMSCORE per type per scope, EXISTS of the
markers) become one EVALSHA_RO per Cluster slot, and the reply is only the indexes of the denied
values: nothing to zip, and nothing at all to read back when nothing is denied (the usual case).
Scopes are a list (the key's, the global one, and any other a caller adds): all keys of one
scope share its hash tag, so a call holding the scopes of one slot touches one Cluster slot.

KEYS: the markers (one of them must exist), then per scope, per type asked: set, expires.
ARGV: number of markers, now (epoch ms, the proxy's clock), number of types, then per type:
      number of values, the values.
Reply: {1} when no marker exists; else {0, i...}: the 0-based indexes, in the values of all
types laid end to end, of the values denied in any scope (a member whose expiry has come is no
longer denied, even before it is swept).
"""

from __future__ import annotations

import functools
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate

from rules.model import RuleType
from rules.store.keys import expires_key, rule_key

LOOKUP = """
local m, now, types = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if m > 0 and redis.call('EXISTS', unpack(KEYS, 1, m)) == 0 then return {1} end
local scopes = (#KEYS - m) / (2 * types)
local out, base, a = {0}, 0, 4
for t = 1, types do
  local count, hit = tonumber(ARGV[a]), {}
  for s = 1, scopes do
    local k = m + 2 * ((s - 1) * types + t - 1)
    for i = a + 1, a + count, 1000 do
      local last = math.min(i + 999, a + count)
      local seen = redis.call('SMISMEMBER', KEYS[k + 1], unpack(ARGV, i, last))
      for j, member in ipairs(seen) do
        local at = i + j - 1
        if member == 1 and not hit[at] then
          local expiry = redis.call('ZSCORE', KEYS[k + 2], ARGV[at])
          if not expiry or tonumber(expiry) > now then
            hit[at] = true
            out[#out + 1] = at - a - 1 + base
          end
        end
      end
    end
  end
  base, a = base + count, a + count + 1
end
return out
"""
# unpack() in chunks of 1000: Redis's Lua refuses to unpack more than ~8000 values at once.

NOT_COMPLETE = 1
READ_ONLY = "EVALSHA_RO"
"""Redis 7: a script that only reads; its keys need read access only (the proxy's ACL user)."""


@functools.lru_cache(maxsize=1024)  # a few kB each: a few MB at most
def script_keys(
    markers: tuple[str, ...], scopes: tuple[str, ...], types: tuple[RuleType, ...]
) -> tuple[str, ...]:
    """KEYS of a call, each scope once; kept, as a tenant's lookups ask the same (~14 µs to
    name them)."""
    keys = list(markers)
    for scope in dict.fromkeys(scopes):
        for rule_type in types:
            keys += (rule_key(scope, rule_type), expires_key(scope, rule_type))
    return tuple(keys)


@dataclass(frozen=True, slots=True)
class LookupCall:
    """The values asked, by type, laid end to end as the script reads them."""

    types: tuple[RuleType, ...]
    values: tuple[Sequence[str], ...]
    ends: tuple[int, ...]

    @classmethod
    def of(cls, asked: Sequence[tuple[RuleType, Sequence[str]]]) -> LookupCall:
        types = tuple([t for t, _ in asked])
        values = tuple([v for _, v in asked])
        return cls(types, values, tuple(accumulate(map(len, values))))

    def keys(self, markers: Sequence[str], scopes: Sequence[str]) -> tuple[str, ...]:
        return script_keys(tuple(markers), tuple(scopes), self.types)

    def args(self, markers: int, now_ms: int) -> list[str | int]:
        args: list[str | int] = [markers, now_ms, len(self.types)]
        for values in self.values:
            args.append(len(values))
            args.extend(values)
        return args

    def denied(self, indexes: Sequence[int], into: dict[RuleType, set[str]]) -> None:
        """The script's indexes back into values by type (a hit is rare: no table built)."""
        for index in indexes:
            i = bisect_right(self.ends, index)
            start = self.ends[i - 1] if i else 0
            into.setdefault(self.types[i], set()).add(self.values[i][index - start])
