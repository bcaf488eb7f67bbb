"""`--max-rule-staleness`: lookups fail closed once the rule consumer has been stuck too long.

The consumer writes, per partition, when it was last fresh (nothing to apply, or advancing);
see rules/consumer/stall.py. A proxy reads that heartbeat at most once a second and, when
the stalest partition is older than the bound, answers 503 instead of filtering with rules
that may be missing opt-outs. Clocks of consumer and proxy hosts must agree to well within
the bound (NTP).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from rules.lists.model import ListReader
from rules.model import Change, Lookup, RuleChange, RuleType
from rules.store.base import Limits, RuleStore, StoreUnavailableError


@runtime_checkable
class HeartbeatStore(RuleStore, Protocol):
    async def heartbeat(self) -> dict[int, float]: ...


class StalenessGuard:
    """A RuleStore whose lookups raise StoreUnavailableError while the rules are too stale."""

    def __init__(
        self,
        store: HeartbeatStore,
        max_age: float,
        *,
        refresh: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store, self.max_age, self._refresh, self._clock = store, max_age, refresh, clock
        self._oldest: float | None = None
        self._read_at = float("-inf")

    async def stale(self) -> str | None:
        """Why lookups cannot be trusted (the consumer stalled beyond the bound), or None."""
        now = self._clock()
        if now - self._read_at >= self._refresh:
            fresh = await self.store.heartbeat()
            self._oldest, self._read_at = (min(fresh.values()) if fresh else None), now
        if self._oldest is None:
            return "no rule consumer heartbeat in the store"
        age = now - self._oldest
        if age > self.max_age:
            bound = f"max-rule-staleness {self.max_age:g} s"
            return f"rules stale: the rule consumer has not advanced for {age:.0f} s ({bound})"
        return None

    @property
    def lists(self) -> ListReader:
        return self.store.lists

    async def lookup(
        self, tenant: str, query: Lookup, *, include_global: bool = True,
        campaign: str | None = None,
    ) -> dict[RuleType, set[str]]:
        why = await self.stale()
        if why is not None:
            raise StoreUnavailableError(why)
        return await self.store.lookup(
            tenant, query, include_global=include_global, campaign=campaign
        )

    async def ready(self) -> bool:
        try:
            return await self.stale() is None and await self.store.ready()
        except StoreUnavailableError:
            return False

    async def apply(self, changes: Sequence[Change]) -> None:
        await self.store.apply(changes)

    async def write(self, change: RuleChange, limits: Limits) -> None:
        await self.store.write(change, limits)

    async def admit(self, change: RuleChange, limits: Limits) -> str | None:
        return await self.store.admit(change, limits)

    async def release(self, tenant: str, reservation: str) -> None:
        await self.store.release(tenant, reservation)

    async def offsets(self) -> dict[int, int]:
        return await self.store.offsets()

    async def aclose(self) -> None:
        await self.store.aclose()
