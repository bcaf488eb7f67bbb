"""The embedded store: rules in this process only, lost on restart."""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence

from rules.lists.memory import MemoryLists
from rules.model import RULE_TYPES, Change, ListChange, Lookup, RuleChange, RuleType
from rules.scopes import filtering_scopes, has_lists, list_scope
from rules.store.base import Limits, StoreUnavailableError, TooManyRulesError, TooManyWritesError
from rules.store.catalogue_memory import MemoryCatalogue

WINDOW_SECONDS = 60.0


def _live(found: set[str], expiries: Mapping[str, int], now_ms: float) -> set[str]:
    """`found` less the values whose rule has expired; most rules never expire, so a scope
    without expiries costs no check per value."""
    if not expiries or not found:
        return found
    return {v for v in found if (at := expiries.get(v)) is None or at > now_ms}


class MemoryStore:
    """Both reader and writer, private to this process.

    Its completeness marker is `ready`: with a Kafka consumer feeding it, it starts not ready
    and the consumer marks it ready once it has replayed the topic. Nothing outside this
    process can flush it.
    """

    def __init__(self, *, ready: bool = True) -> None:
        self._sets: dict[tuple[str, RuleType], set[str]] = defaultdict(set)
        self._offsets: dict[int, int] = {}
        self._ready = ready
        self._writes: dict[str, tuple[float, int]] = {}  # tenant -> (window end, writes)
        self._heartbeat: dict[int, float] = {}
        self.catalogue = MemoryCatalogue()
        self.lists = MemoryLists(self._entry_count)

    @property
    def shared(self) -> bool:
        return False

    def mirrors(self, topic: str) -> bool:
        return True

    async def lookup(
        self, tenant: str, query: Lookup, *, include_global: bool = True,
        campaign: str | None = None,
    ) -> dict[RuleType, set[str]]:
        if not self._ready:
            raise StoreUnavailableError("suppression store is still loading rules")
        held = self.lists.held(tenant) if has_lists(tenant, include_global) else ()
        scopes = filtering_scopes(
            tenant, include_global=include_global, campaign=campaign, lists=held
        )
        denied: dict[RuleType, set[str]] = {}
        now = time.time() * 1000
        for rule_type, values in query.items():
            hits: set[str] = set()
            for scope in scopes:  # C loops over the values; expiries only of a value found
                members = self._sets.get((scope, rule_type))
                if members and not members.isdisjoint(values):
                    hits |= _live(members.intersection(values),
                                  self.catalogue.expiries(scope, rule_type), now)
            if hits:
                denied[rule_type] = hits
        return denied

    async def apply(
        self, changes: Sequence[Change], offsets: Mapping[int, int] | None = None
    ) -> None:
        for change in changes:
            if isinstance(change, ListChange):
                self._apply_list(change)
            else:
                self.catalogue.apply(change, self._sets[(change.tenant, change.type)])
        self._offsets.update(offsets or {})

    def _apply_list(self, change: ListChange) -> None:
        """A deleted list is unassigned, then its entries and their records go."""
        if self.lists.apply(change) and change.op == "delete":
            scope = list_scope(change.list_id)
            for rule_type in RULE_TYPES:
                self._sets.pop((scope, rule_type), None)
            self.catalogue.drop_scope(scope)

    def cached_lists(self, tenant: str) -> tuple[str, ...]:
        return self.lists.held(tenant)

    def _entry_count(self, list_id: str) -> int:
        scope = list_scope(list_id)
        return sum(len(self._sets.get((scope, t), ())) for t in RULE_TYPES)

    async def write(self, change: RuleChange, limits: Limits) -> None:
        """Check and apply in one step: nothing else runs between them on the event loop."""
        if not self._ready:
            raise StoreUnavailableError("suppression store is still loading rules")
        await self.admit(change, limits)
        await self.apply([change])

    async def release(self, tenant: str, reservation: str) -> None:
        """Nothing is reserved here (admit returns None)."""

    async def admit(self, change: RuleChange, limits: Limits) -> str | None:
        now, writer = time.monotonic(), change.tenant.partition("/")[0]  # a campaign's: its key's
        end, used = self._writes.get(writer, (now + WINDOW_SECONDS, 0))
        if end <= now:
            end, used = now + WINDOW_SECONDS, 0
        if used >= limits.writes_per_minute:
            raise TooManyWritesError(max(1, math.ceil(end - now)), limits.writes_per_minute)
        if change.op == "add":
            self._check_size(change, limits)
        self._writes[writer] = (end, used + 1)
        return None

    def _check_size(self, change: RuleChange, limits: Limits) -> None:
        held = sum(len(self._sets.get((change.tenant, t)) or ()) for t in RULE_TYPES)
        target = self._sets.get((change.tenant, change.type)) or set()
        adding = sum(1 for v in set(change.values) if v not in target)
        if held + adding > limits.max_rules:
            raise TooManyRulesError(held, adding, limits.max_rules)

    async def apply_and_check(
        self, changes: Sequence[Change], offsets: Mapping[int, int]
    ) -> bool:
        await self.apply(changes, offsets)
        return self._ready

    async def offsets(self) -> dict[int, int]:
        return dict(self._offsets)

    async def set_heartbeat(self, fresh: Mapping[int, float]) -> None:
        self._heartbeat.update(fresh)

    async def heartbeat(self) -> dict[int, float]:
        return dict(self._heartbeat)

    async def set_ready(self, ready: bool) -> None:
        self._ready = ready

    async def fence(self) -> None:
        return None  # private to this process: no other writer switches generations

    async def ready(self) -> bool:
        return self._ready

    async def aclose(self) -> None:
        return None
