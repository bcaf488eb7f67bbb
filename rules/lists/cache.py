"""A key's assigned lists as last read, in this process: every lookup reads the key's
assignments version in its own round trip and re-reads the lists only when it moved."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from rules.lists.model import Assigned

MAX_CACHED_TENANTS = 100_000
"""Tenants whose lists are cached (all dropped at once beyond that)."""


class AssignedCache:
    def __init__(self, read: Callable[[str], Awaitable[Assigned]]) -> None:
        self._read = read
        self._held: dict[str, Assigned] = {}

    async def held(self, tenant: str) -> Assigned:
        held = self._held.get(tenant)
        if held is None:
            if len(self._held) >= MAX_CACHED_TENANTS:
                self._held.clear()
            held = self._held[tenant] = await self._read(tenant)
        return held

    def get(self, tenant: str) -> Assigned | None:
        """No I/O: `tenant`'s lists if held (a lookup then awaits nothing to learn them)."""
        return self._held.get(tenant)

    async def refresh(self, tenant: str) -> Assigned:
        self._held.pop(tenant, None)
        return await self.held(tenant)

    def cached(self, tenant: str) -> tuple[str, ...]:
        """No I/O: what the last lookup of `tenant` read (suppression counts)."""
        held = self._held.get(tenant)
        return held.ids if held else ()
