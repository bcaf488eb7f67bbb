"""Suppression counts, off the response path: hits gather in this process and are written in
one pipeline every FLUSH_SECONDS (never a store round trip per response).

A count lags by up to FLUSH_SECONDS (plus one flush's round trip); a crash loses at most the
hits of the current window. Distinct contacts fill a window fast (~12 distinct hits per
response: 1,700 responses a second reach MAX_PENDING in 5 s), so FLUSH_AT distinct hits flush
early. A failed flush keeps its hits for the next one (bounded by MAX_PENDING distinct rules;
beyond that new hits are dropped, counted in `dropped` and HITS_DROPPED).
Nothing here is logged: the keys of the batch are identifiers.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Mapping, Sequence

from rules.catalogue.of import Catalogue
from rules.catalogue.record import Hit
from rules.metrics import HITS_DROPPED
from rules.model import GLOBAL, RuleType
from rules.store.base import StoreUnavailableError

FLUSH_SECONDS = 5.0
MAX_PENDING = 100_000
FLUSH_AT = MAX_PENDING // 4
"""Distinct pending hits that start a flush before its time."""


class HitBatch:
    """Counts per (scope, type, value); a rule of the key and a global one with the same value
    both count (the lookup answers which values are denied, not by which scope)."""

    def __init__(self, catalogue: Catalogue, interval: float | None = None) -> None:
        self.catalogue, self.interval = catalogue, interval or FLUSH_SECONDS
        self._pending: Counter[Hit] = Counter()
        self._full = asyncio.Event()  # FLUSH_AT reached: the flusher goes now
        self.dropped = 0

    def record(
        self, tenant: str, denied: Mapping[RuleType, set[str]], also: Sequence[str] = ()
    ) -> None:
        """One response's denied values: a dict update, no I/O. `also`: more scopes that
        filtered it (a campaign's); a scope without the rule counts nothing when flushed."""
        scopes = ((tenant, GLOBAL) if tenant != GLOBAL else (GLOBAL,)) + tuple(also)
        hits = [(scope, rule_type, value)
                for rule_type, values in denied.items() for value in values for scope in scopes]
        if len(self._pending) + len(hits) <= MAX_PENDING:
            self._pending.update(hits)  # one C-level count: the bound cannot be reached
        else:
            for hit in hits:
                self._add(hit)
        if len(self._pending) >= FLUSH_AT:
            self._full.set()

    def _add(self, hit: Hit) -> None:
        if hit in self._pending or len(self._pending) < MAX_PENDING:
            self._pending[hit] += 1
        else:
            self.dropped += 1
            HITS_DROPPED.inc()

    async def flush(self) -> bool:
        """Write what gathered; on a store error put it back for the next flush (False)."""
        batch, self._pending = self._pending, Counter()
        try:
            await self.catalogue.record_hits(batch, time.time())
        except StoreUnavailableError:
            self._pending.update(batch)
            return False
        return True

    async def run(self) -> None:
        """Flush every `interval` or at FLUSH_AT until cancelled, then once more; after a
        failed flush the store has an interval's rest. A flush is shielded and finished first:
        it yields between chunks, and cut there it would lose its batch's rest (taken from
        `_pending`, so the last flush does not hold it)."""
        flushing: asyncio.Task[bool] | None = None
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._full.wait(), self.interval)
                flushing = asyncio.ensure_future(self.flush())
                flushed = await asyncio.shield(flushing)
                self._full.clear()
                if not flushed:
                    await asyncio.sleep(self.interval)
        finally:
            with contextlib.suppress(Exception):
                if flushing is not None and not flushing.done():
                    await asyncio.shield(flushing)
            with contextlib.suppress(Exception):
                await asyncio.shield(self.flush())
