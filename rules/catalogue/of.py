"""The catalogue beside a rule store: what the API reads and the suppression counter writes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Protocol

from rules.catalogue.record import Hit, ListQuery, Page, Record
from rules.catalogue.redis import RedisCatalogue
from rules.model import RuleType
from rules.store import MemoryStore, RedisStore, RuleStore
from rules.store.staleness import StalenessGuard


class Catalogue(Protocol):
    async def page(self, tenant: str, query: ListQuery) -> Page: ...

    async def get(self, tenant: str, rule: str) -> Record | None: ...

    async def records(self, tenant: str, ids: Sequence[str]) -> list[Record]: ...

    def export(self, tenant: str, rule_type: RuleType | None) -> AsyncIterator[list[Record]]: ...

    async def record_hits(self, hits: Mapping[Hit, int], at: float) -> None: ...


def catalogue_of(store: RuleStore) -> Catalogue:
    """Redis stores share their client with the catalogue; the memory store keeps its own."""
    inner = store.store if isinstance(store, StalenessGuard) else store
    if isinstance(inner, RedisStore):
        return RedisCatalogue(inner.client)
    if isinstance(inner, MemoryStore):
        return inner.catalogue
    raise TypeError(f"no catalogue for {type(inner).__name__}")
