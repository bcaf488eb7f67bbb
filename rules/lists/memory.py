"""Named lists in this process: what rules/lists/redis.py keeps in Redis, for MemoryStore."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rules.lists.model import Assigned, ListInfo, by_name
from rules.model import ListChange


@dataclass(slots=True)
class _Meta:
    name: str
    description: str | None
    created_at: int
    updated_at: int


class MemoryLists:
    """Lists, assignments both ways, and a version per tenant like Redis's."""

    def __init__(self, entries: Callable[[str], int]) -> None:
        self._entries = entries
        self._meta: dict[str, _Meta] = {}
        self._tenants: dict[str, set[str]] = defaultdict(set)
        self._assigned: dict[str, set[str]] = defaultdict(set)
        self._versions: dict[str, int] = {}

    def apply(self, change: ListChange) -> bool:
        """The script's semantics; False when the list does not exist (nothing changed)."""
        at = round(change.at * 1000)
        current = self._meta.get(change.list_id)
        if change.op == "create":
            created = current.created_at if current else at
            self._meta[change.list_id] = _Meta(change.name or "", change.description or None,
                                               created, at)
            return True
        if current is None:
            return False
        if change.op == "update":
            current.name = current.name if change.name is None else change.name
            if change.description is not None:
                current.description = change.description or None
            current.updated_at = at
            return True
        self._unassign(change.list_id)
        if change.op == "delete":
            del self._meta[change.list_id]
        for tenant in change.tenants if change.op == "assign" else ():
            self._tenants[change.list_id].add(tenant)
            self._assigned[tenant].add(change.list_id)
            self._bump(tenant)
        return True

    def _unassign(self, list_id: str) -> None:
        for tenant in self._tenants.pop(list_id, set()):
            self._assigned[tenant].discard(list_id)
            self._bump(tenant)

    def _bump(self, tenant: str) -> None:
        self._versions[tenant] = self._versions.get(tenant, 0) + 1

    async def lists(self, ids: Sequence[str] | None = None) -> list[ListInfo]:
        wanted = list(self._meta) if ids is None else [i for i in ids if i in self._meta]
        return by_name([self._info(i) for i in wanted])

    def _info(self, list_id: str) -> ListInfo:
        m = self._meta[list_id]
        return ListInfo(list_id, m.name, m.description, self._entries(list_id), m.created_at,
                        m.updated_at)

    async def list_tenants(self, list_id: str) -> list[str]:
        return sorted(self._tenants.get(list_id, ()))

    async def assigned(self, tenant: str) -> Assigned:
        return Assigned(self._versions.get(tenant), self.held(tenant))

    def held(self, tenant: str) -> tuple[str, ...]:
        return tuple(sorted(self._assigned.get(tenant, ())))
