"""The lookup's answers kept in process memory, exact while Redis tracks what the link read.

Redis's server-assisted client-side caching (RESP3 `CLIENT TRACKING ON`, default mode): every
key a command on the link names is remembered by the server, and the first write to it sends an
invalidation push on the same socket, in order with the replies. So an answer cached from a
reply is dropped before any reply that could contradict it is read. What is kept, per Redis key:
the values a rule set's answer is known for (a set) and the members among them with their
expiry (few), a completeness marker group seen present, a key's lists version. Set operations
fill and test it in C: a lookup of new values (a miss) costs no per-value Python step. An
invalidation drops everything under its key (an expiry set's under its rule set's), a flush
push (nil) or a lost link drops everything, and answers are served only while the link's
tracking is on and Redis was heard from within `LIVE_WINDOW` (else the lookup reads Redis,
which refreshes it). Bounded by entries and bytes: the least recently used keys go first. A
full cache that seldom hits fills only a sample of its misses (FILL_SAMPLE).
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from collections.abc import Collection, Mapping, Sequence

from prometheus_client import Counter

from rules.model import Lookup, RuleType
from rules.store.keys import switches_key
from rules.store.link import _LinkProtocol

LOG = logging.getLogger(__name__)

LIVE_WINDOW = 1.0
"""Seconds since Redis was last heard on the link within which a cached answer is served."""
ENTRY_OVERHEAD = 80
"""Bytes charged per entry besides its value's characters: the str object's header and the
set slot (measured with tracemalloc, CPython 3.11: ~75 B at 1,000 values per rule set)."""
KEY_OVERHEAD = 360
"""Bytes charged per rule set kept: its set, its OrderedDict node and its key string (measured:
~350 B; a cache of one value per rule set costs ~450 B per entry, not 100)."""
MEMBER_OVERHEAD = 64
"""Bytes charged per member found: its expiry (a float) in the members dict, and that dict."""
VERSION_OVERHEAD = 120
"""Bytes charged per key's lists version besides its key's characters (tracemalloc: ~107 B
with a bytes value)."""
VERSION_SHARE = 8
"""The versions may take up to 1/8 of max_bytes; past it they are all dropped (read again)."""
EXPIRES = ":expires"
SWITCHES = switches_key()
NEVER = math.inf
"""The expiry of a rule that does not expire."""
FILL_WINDOW = 1024
"""Misses per window of the fill's admission (FILL_SAMPLE)."""
FILL_SAMPLE = 8
"""Once the cache has evicted (since it was last cleared), after a window with fewer hits than one
per FILL_SAMPLE misses only one miss in FILL_SAMPLE fills it: values seen once (a stream of new
contacts) would churn it for nothing, and the sampled fills still notice a workload that
repeats."""

Members = dict[str, float]
"""The members of a rule set among the values asked: value -> epoch ms its rule expires
(NEVER)."""

HITS = Counter("denyproxy_store_cache_hits_total", "Lookups answered from the local cache.")
MISSES = Counter("denyproxy_store_cache_misses_total", "Lookups that read Redis (cache on).")
INVALIDATIONS = Counter(
    "denyproxy_store_cache_invalidations_total",
    "Invalidations Redis pushed to the lookup link, by kind (key, flush, lost, off).",
    ["kind"],
)


class TrackedAnswers:
    """The cache and the link's Tracker: told by the link, read by tracked_lookup.py."""

    def __init__(self, max_entries: int = 200_000, max_bytes: int = 32 * 2**20) -> None:
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self._sets: OrderedDict[str, set[str]] = OrderedDict()
        self._members: dict[str, dict[str, float]] = {}  # the members among them: few
        self._charged: dict[str, int] = {}  # bytes charged per rule set: freed as charged
        self._markers: set[tuple[str, ...]] = set()
        self._versions: dict[str, bytes | None] = {}
        self._link: _LinkProtocol | None = None
        self._refused: str | None = None
        self.entries = self.bytes = self.version_bytes = 0
        self.hits = self.misses = 0  # lookups in the fill's admission window
        self.evicted = self.sampling = False
        self.switches_tracked = False
        """The link read the generation switches key since the cache was last cleared: a
        switch (SWAPDB, which invalidates nothing itself) then clears it (generation.py)."""

    def opened(self, link: _LinkProtocol | None, refused: str | None) -> None:
        """A new connection: its tracking is on (`link`) or was refused (logged once)."""
        self.clear("lost")
        self._link = link
        if refused is not None and self._refused is None:
            LOG.warning("store cache off, lookups read Redis: %s", refused)
            INVALIDATIONS.labels("off").inc()
        self._refused = refused

    def lost(self) -> None:
        self._link = None
        self.clear("lost")

    def invalidated(self, keys: list[bytes] | None) -> None:
        if keys is None:
            self.clear("flush")
            return
        INVALIDATIONS.labels("key").inc(len(keys))
        for raw in keys:
            key = raw.decode()
            if key == SWITCHES:
                self.clear("switch")
                continue
            self._drop(key[: -len(EXPIRES)] if key.endswith(EXPIRES) else key)
            if key in self._versions:
                del self._versions[key]
                self.bytes -= len(key) + VERSION_OVERHEAD
                self.version_bytes -= len(key) + VERSION_OVERHEAD
            self._markers = {group for group in self._markers if key not in group}

    def live(self) -> bool:
        """Tracking on, on an open connection that Redis spoke on lately, and a generation
        switch would be heard."""
        return self.switches_tracked and self.live_link()

    def live_link(self) -> bool:
        link = self._link
        return self.tracking() and link is not None and link.heard_within(LIVE_WINDOW)

    def tracking(self) -> bool:
        """An open link with tracking on (quiet or not)."""
        link = self._link
        return link is not None and link.tracking and not link.closed

    def clear(self, kind: str) -> None:
        if self.entries or self._markers or self._versions:
            INVALIDATIONS.labels(kind).inc()
        self._sets.clear()
        self._members.clear()
        self._charged.clear()
        self.evicted = self.sampling = False  # room again: every miss fills until it evicts
        self._markers.clear()
        self._versions.clear()
        self.entries = self.bytes = self.version_bytes = 0
        self.switches_tracked = False

    def answers(self, key: str) -> set[str] | None:
        """The values whose answer is known in rule set `key` (now the most recently used)."""
        known = self._sets.get(key)
        if known is not None:
            self._sets.move_to_end(key)
        return known

    def answer(
        self, markers: tuple[str, ...], rule_sets: Mapping[RuleType, Sequence[str]],
        query: Lookup, version_key: str | None, now_ms: int,
    ) -> tuple[dict[RuleType, set[str]], bytes | None] | None:
        """The values of `query` denied in the sets `rule_sets` names for their type, and
        `version_key`'s version, when the cache holds every part and is live; else None.

        Each value's answer in each set must be known (a subset test); the members among
        them are found by a set intersection (both in C), their expiries compared with
        `now_ms`."""
        if markers not in self._markers or not self.live():
            return None
        version = None
        if version_key is not None:
            if version_key not in self._versions:
                return None
            version = self._versions[version_key]
        sets, found = self._sets, self._members
        denied: dict[RuleType, set[str]] = {}
        for rule_type, values in query.items():
            if not values:
                continue
            for key in rule_sets[rule_type]:
                known = sets.get(key)
                if known is None or not known.issuperset(values):
                    return None
                sets.move_to_end(key)
                members = found.get(key)
                if members:
                    for value in members.keys() & values:  # C: the few asked that are members
                        if members[value] > now_ms:
                            denied.setdefault(rule_type, set()).add(value)
        self.hits += 1
        return denied, version

    def members(self, key: str) -> Members | None:
        """The members among the values known for `key`, with their expiry (often none)."""
        return self._members.get(key)

    def fills(self) -> bool:
        """Whether a miss's answers go in (FILL_SAMPLE); counts the window's misses. Skipping
        a fill is always safe: the values are read from Redis again when asked."""
        self.misses += 1
        if self.misses >= FILL_WINDOW:
            self.sampling = self.evicted and self.hits * FILL_SAMPLE < self.misses
            self.hits = self.misses = 0
        return not self.sampling or self.misses % FILL_SAMPLE == 0

    def keep(
        self, markers: tuple[str, ...], asked: Sequence[tuple[Sequence[str], Collection[str]]],
        found: dict[str, Members], version: tuple[str, bytes | None] | None,
    ) -> None:
        """What one reply said, at its place in the stream; only on a link tracking it: per
        type, the rule sets read and the values `asked` in each, the members `found` among
        them."""
        if not self.live():
            return
        self._markers.add(markers)
        if version is not None:
            self._version(*version)
        for keys, values in asked:
            each = set(values)  # one set per type, the same in every rule set
            size = ENTRY_OVERHEAD + sum(map(len, each)) // len(each) if each else 0
            for key in keys:
                self._add(key, each, size)
        for key, members in found.items():
            held = self._members.setdefault(key, {})
            before = len(held)  # not `members.keys() - held.keys()`: that walks all held
            held.update(members)
            self._charge(key, MEMBER_OVERHEAD * (len(held) - before))
        self._evict()

    def _add(self, key: str, values: set[str], size: int) -> None:
        """`values` into rule set `key`, charged for those not yet there: one set update in
        C, each new one at `size` (their mean; no set of the new ones built)."""
        known = self._sets.get(key)
        if known is None:
            known = self._sets[key] = set(values)
            added, cost = len(known), KEY_OVERHEAD
        else:
            self._sets.move_to_end(key)
            before = len(known)
            known |= values
            added, cost = len(known) - before, 0
        self.entries += added
        self._charge(key, cost + added * size)

    def _charge(self, key: str, cost: int) -> None:
        self.bytes += cost
        self._charged[key] = self._charged.get(key, 0) + cost

    def _version(self, key: str, version: bytes | None) -> None:
        """A key's lists version, charged to the byte bound; over its share, all forgotten."""
        if key not in self._versions:
            cost = len(key) + VERSION_OVERHEAD
            if self.version_bytes + cost > self.max_bytes // VERSION_SHARE:
                self.bytes -= self.version_bytes
                self.version_bytes = 0
                self._versions.clear()
            self.bytes += cost
            self.version_bytes += cost
        self._versions[key] = version

    def _evict(self) -> None:
        while self._sets and (self.entries > self.max_entries or self.bytes > self.max_bytes):
            self._drop(next(iter(self._sets)))
            self.evicted = True

    def _drop(self, key: str) -> None:
        """Rule set `key` forgotten: its entries and the bytes they were charged (no walk)."""
        self._members.pop(key, None)
        known = self._sets.pop(key, None)
        if known is not None:
            self.entries -= len(known)
        self.bytes -= self._charged.pop(key, 0)
