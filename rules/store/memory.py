"""The embedded store: rules in this process only, lost on restart."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

from rules.model import GLOBAL, Lookup, RuleChange, RuleType
from rules.store.base import StoreUnavailableError


class MemoryStore:
    """Both reader and writer, private to this process.

    With a Kafka consumer feeding it, it starts not ready and the consumer marks it ready
    once it has replayed the topic.
    """

    def __init__(self, *, ready: bool = True) -> None:
        self._sets: dict[tuple[str, RuleType], set[str]] = defaultdict(set)
        self._offsets: dict[int, int] = {}
        self._ready = ready
        self._heartbeat: dict[int, float] = {}

    @property
    def shared(self) -> bool:
        return False

    def mirrors(self, topic: str) -> bool:
        return True

    async def lookup(self, tenant: str, query: Lookup) -> dict[RuleType, set[str]]:
        if not self._ready:
            raise StoreUnavailableError("suppression store is still loading rules")
        denied: dict[RuleType, set[str]] = {}
        for rule_type, values in query.items():
            own, shared = self._sets.get((tenant, rule_type)), self._sets.get((GLOBAL, rule_type))
            hits = {v for v in values if (own and v in own) or (shared and v in shared)}
            if hits:
                denied[rule_type] = hits
        return denied

    async def apply(
        self, changes: Sequence[RuleChange], offsets: Mapping[int, int] | None = None
    ) -> None:
        for change in changes:
            target = self._sets[(change.tenant, change.type)]
            if change.op == "add":
                target.update(change.values)
            else:
                target.difference_update(change.values)
        self._offsets.update(offsets or {})

    async def apply_and_check(
        self, changes: Sequence[RuleChange], offsets: Mapping[int, int]
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

    async def ready(self) -> bool:
        return self._ready

    async def aclose(self) -> None:
        return None
