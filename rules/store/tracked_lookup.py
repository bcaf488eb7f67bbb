"""The lookup with a local read path: answered from TrackedAnswers when every part of it is
there (no I/O), else by one script call on a tracking link whose reply also fills the cache.

Redis tracks the keys a script call declares (KEYS), read or not (verified on Redis 7.0: a
declared key the script never reads is invalidated too, a key read but not declared is not):
so one EVALSHA_RO still makes a miss, and every key the answer rests on is tracked by it.
TRACKED reads what LOOKUP (lookup_script.py) reads but answers every member found in each scope
with its expiry, so answers are cached per rule set and expiries compared with the proxy's
clock at use.

KEYS: as LOOKUP's. ARGV: number of markers, number of types, then per type: count, values.
Reply: {1} when no marker exists; else {0, s, i, e, ...}: per member found, its scope's index
s and the value's index i (all types' values end to end; both 0-based), and its expiry e (the
ZSCORE, a string) or 0 when it has none.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import time
from bisect import bisect_right
from collections.abc import Sequence
from typing import cast

import hiredis
import redis.asyncio as aioredis
from redis.exceptions import NoScriptError, RedisError

from rules.model import RULE_TYPES, Lookup, RuleType
from rules.store.keys import rule_key
from rules.store.link import RedisLink
from rules.store.lookup_calls import Found, get_command, script_head
from rules.store.lookup_script import LookupCall
from rules.store.resp import Reply
from rules.store.tracked_cache import HITS, MISSES, NEVER, SWITCHES, Members, TrackedAnswers

TRACKED = """
local m, types = tonumber(ARGV[1]), tonumber(ARGV[2])
if m > 0 and redis.call('EXISTS', unpack(KEYS, 1, m)) == 0 then return {1} end
local scopes = (#KEYS - m) / (2 * types)
local out, base, a = {0}, 0, 3
for t = 1, types do
  local count = tonumber(ARGV[a])
  for s = 1, scopes do
    local k = m + 2 * ((s - 1) * types + t - 1)
    for i = a + 1, a + count, 1000 do
      local last = math.min(i + 999, a + count)
      local seen = redis.call('SMISMEMBER', KEYS[k + 1], unpack(ARGV, i, last))
      for j, member in ipairs(seen) do
        if member == 1 then
          local at = i + j - 1
          out[#out + 1] = s - 1
          out[#out + 1] = at - a - 1 + base
          out[#out + 1] = redis.call('ZSCORE', KEYS[k + 2], ARGV[at]) or 0
        end
      end
    end
  end
  base, a = base + count, a + count + 1
end
return out
"""

SWITCHES_GET = get_command(SWITCHES)
Hit = tuple[int, RuleType, str, float]
"""A member found: its scope's index, type, value and expiry."""


class TrackedLookup:
    """The cache (also the link's Tracker) and the link that keeps it exact."""

    def __init__(self, client: aioredis.Redis, answers: TrackedAnswers | None = None) -> None:
        self.client = client
        self.answers = answers or TrackedAnswers()
        self.link = RedisLink.of(client, self.answers)
        self.sha = hashlib.sha1(TRACKED.encode()).hexdigest()

    def cached(
        self, markers: tuple[str, ...], scopes: tuple[str, ...], query: Lookup,
        version_key: str | None,
    ) -> tuple[dict[RuleType, set[str]], int | None] | None:
        """The answer and the key's lists version from memory when every part of it is there
        and its tracking is live (no I/O, no LookupCall built: the usual lookup of a repeated
        query); None: fetch it."""
        now_ms = int(time.time() * 1000)
        found = self.answers.answer(markers, rule_sets(scopes), query, version_key, now_ms)
        if found is None:
            return None
        HITS.inc()
        return found[0], None if found[1] is None else int(found[1])

    async def fetch(
        self, markers: tuple[str, ...], scopes: Sequence[str], call: LookupCall,
        version_key: str | None, now_ms: int,
    ) -> Found | None:
        """One script call (and the version's GET) on the link; None: no marker exists."""
        MISSES.inc()
        keys = call.keys(markers, scopes)
        packed = [script_head(self.sha, keys).command(arguments(len(markers), call))]
        if version_key is not None:
            packed.append(get_command(version_key))
        if not self.answers.switches_tracked:  # read once: tracked until a switch writes it
            packed.append(SWITCHES_GET)
        parsed: list[list[Hit]] = []  # the hook's reading of the reply, shared with this
        hook = functools.partial(self._keep, markers, scopes, call, version_key, parsed)
        try:
            replies = await self.link.call_packed(b"".join(packed), len(packed), hook)
        except NoScriptError:
            await self.client.script_load(TRACKED)
            replies = await self.link.call_packed(b"".join(packed), len(packed), hook)
        reply = cast(list[Reply], replies[0])  # an error reply was raised
        if reply[0] != 0:
            return None
        denied: dict[RuleType, set[str]] = {}
        for _, rule_type, value, expiry in parsed[-1] if parsed else hits(reply, call):
            if expiry > now_ms:
                denied.setdefault(rule_type, set()).add(value)
        version = replies[1] if version_key is not None else None
        return denied, version if isinstance(version, bytes) else None

    def _keep(
        self, markers: tuple[str, ...], scopes: Sequence[str], call: LookupCall,
        version_key: str | None, parsed: list[list[Hit]], replies: list[Reply],
    ) -> None:
        """The reply into the cache, where it stands in the stream (link.Hook); its hits go
        to `parsed` too (the caller reads them, not the reply again)."""
        if len(replies) > 1 + (version_key is not None):  # it read the switches key
            self.answers.switches_tracked = self.answers.live_link()
        reply = replies[0]
        if not isinstance(reply, list) or not reply or reply[0] != 0:
            return
        parsed.append(hits(reply, call))
        version = None
        if version_key is not None and not isinstance(replies[1], hiredis.ReplyError):
            version = (version_key, replies[1] if isinstance(replies[1], bytes) else None)
        if not self.answers.fills():  # the markers and version only
            self.answers.keep(markers, [], {}, version)
            return
        sets = rule_sets(tuple(scopes))
        asked = [(sets[t], values) for t, values in zip(call.types, call.values, strict=True)]
        found: dict[str, Members] = {}
        for scope, rule_type, value, expiry in parsed[-1]:
            found.setdefault(sets[rule_type][scope], {})[value] = expiry
        self.answers.keep(markers, asked, found, version)

    async def sync(self) -> bool:
        """A PING on the link: its reply comes after every invalidation a write made before it
        (this process's writes are then seen by its next lookup). Whether it was answered;
        errors only fail the link (its cache cleared)."""
        if self.answers.tracking():  # quiet too: a lookup in flight may cache what it read
            with contextlib.suppress(RedisError, OSError):
                await self.link.call([("PING",)])
                return True
        return False

    async def aclose(self) -> None:
        await self.link.aclose()


async def fence(client: aioredis.Redis, tracked: TrackedLookup | None) -> None:
    """A write returns only once every proxy caching what it changed was told: Redis queues a
    write's invalidations before its reply but sends its queue last in, first out, and serves
    a second round trip only after that turn's queue went out (tests/test_write_fence.py). On
    the lookup link that round trip also orders this process's next lookup after them."""
    if tracked is None or not await tracked.sync():
        await client.ping()


@functools.lru_cache(maxsize=1024)
def rule_sets(scopes: tuple[str, ...]) -> dict[RuleType, tuple[str, ...]]:
    """Per type, its rule set in each of `scopes` (once each, in order): the sets a cached
    answer is read from; kept per scope tuple (a tenant's lookups ask the same). Not to be
    changed by a caller."""
    unique = dict.fromkeys(scopes)
    return {rule_type: tuple([rule_key(scope, rule_type) for scope in unique])
            for rule_type in RULE_TYPES}


def arguments(markers: int, call: LookupCall) -> list[str | int]:
    args: list[str | int] = [markers, len(call.types)]
    for values in call.values:
        args.append(len(values))
        args.extend(values)
    return args


def hits(reply: Sequence[Reply], call: LookupCall) -> list[Hit]:
    """The script's (scope, index, expiry) triples as values by type."""
    out: list[Hit] = []
    for at in range(1, len(reply), 3):
        scope, index, expiry = cast(int, reply[at]), cast(int, reply[at + 1]), reply[at + 2]
        i = bisect_right(call.ends, index)
        start = call.ends[i - 1] if i else 0
        when = float(expiry) if isinstance(expiry, bytes) else NEVER
        out.append((scope, call.types[i], call.values[i][index - start], when))
    return out
