"""The catalogue of the embedded store: the Lua script's semantics (catalogue_script.py) in
Python, kept by MemoryStore.apply beside its sets."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import AsyncIterator, Mapping, Sequence

from rules.catalogue.record import Hit, ListQuery, Page, Record, sort_key
from rules.model import ChangeMeta, RuleChange, RuleType
from rules.store.catalogue_script import in_turns, ms, rule_id, scope_name

Raw = dict[str, str]
_NONE: Mapping[str, int] = {}


class MemoryCatalogue:
    """Records per tenant by id, and expiries per (tenant, type) by value."""

    def __init__(self) -> None:
        self._records: dict[str, dict[str, Raw]] = defaultdict(dict)
        self._expiry: dict[tuple[str, RuleType], dict[str, int]] = defaultdict(dict)

    def apply(self, change: RuleChange, target: set[str]) -> None:
        """What the script's `change` does: an add already expired removes the rule."""
        now = ms(time.time())
        self._sweep(change.tenant, change.type, target, now)
        meta = change.meta or ChangeMeta(at=time.time())
        expires = None if meta.expires_at is None else ms(meta.expires_at)
        for value in change.values:
            if change.op == "add" and (expires is None or expires > now):
                target.add(value)
                self._keep(change, value, meta, now)
            else:
                target.discard(value)
                self._drop(change.tenant, change.type, value)

    def drop_scope(self, scope: str) -> None:
        """Every record and expiry of `scope` (a deleted list's)."""
        self._records.pop(scope, None)
        for key in [k for k in self._expiry if k[0] == scope]:
            del self._expiry[key]

    def expiries(self, tenant: str, rule_type: RuleType) -> Mapping[str, int]:
        """Expiry (ms) by value of the rules of (tenant, type) that expire; empty if none do."""
        return self._expiry.get((tenant, rule_type), _NONE)

    def _keep(self, change: RuleChange, value: str, meta: ChangeMeta, now: int) -> None:
        rule = rule_id(change.tenant, change.type, value)
        raw = self._records[change.tenant].setdefault(rule, {
            "id": rule, "type": change.type.value, "value": value,
            "scope": scope_name(change.tenant), "suppressions": "0",
            "created_at": str(ms(meta.at)),
        })
        expires = "" if meta.expires_at is None else str(ms(meta.expires_at))
        raw.update(updated_at=str(ms(meta.at)), enforced_at=str(now), source=meta.source or "",
                   event_id=meta.event_id or "", reason=meta.reason or "", expires_at=expires)
        expiries = self._expiry[(change.tenant, change.type)]
        if expires:
            expiries[value] = int(expires)
        else:
            expiries.pop(value, None)

    def _drop(self, tenant: str, rule_type: RuleType, value: str) -> None:
        self._records[tenant].pop(rule_id(tenant, rule_type, value), None)
        self._expiry[(tenant, rule_type)].pop(value, None)

    def _sweep(self, tenant: str, rule_type: RuleType, target: set[str], now: int) -> None:
        expiries = self._expiry.get((tenant, rule_type), {})
        for value in [v for v, at in expiries.items() if at <= now]:
            target.discard(value)
            self._drop(tenant, rule_type, value)

    def _live(self, tenant: str, rule_type: RuleType | None) -> list[Record]:
        now = time.time() * 1000
        records = [Record.of(raw) for raw in self._records.get(tenant, {}).values()]
        return [r for r in records
                if not r.expired(now) and (rule_type is None or r.type == rule_type)]

    async def page(self, tenant: str, query: ListQuery) -> Page:
        records = self._live(tenant, query.type)
        if query.search:
            records = [r for r in records if query.search.lower() in r.value.lower()]
        records.sort(key=lambda r: sort_key(query.sort_by, r), reverse=query.desc)
        return Page(records[query.offset : query.offset + query.limit], len(records))

    async def get(self, tenant: str, rule: str) -> Record | None:
        found = await self.records(tenant, [rule])
        return found[0] if found else None

    async def records(self, tenant: str, ids: Sequence[str]) -> list[Record]:
        now = time.time() * 1000
        raws = [self._records.get(tenant, {}).get(rule) for rule in ids]
        return [r for r in (Record.of(raw) for raw in raws if raw) if not r.expired(now)]

    async def export(self, tenant: str, rule_type: RuleType | None) -> AsyncIterator[list[Record]]:
        yield self._live(tenant, rule_type)

    async def record_hits(self, hits: Mapping[Hit, int], at: float) -> None:
        """Each existing record's count, the batch read `in_turns`."""
        when = str(ms(at))
        async for chunk in in_turns(hits):
            for (scope, rule_type, value), count in chunk:
                records = self._records.get(scope)
                raw = records.get(rule_id(scope, rule_type, value)) if records else None
                if raw is not None:
                    raw["suppressions"] = str(int(raw["suppressions"]) + count)
                    raw["last_suppressed_at"] = when
