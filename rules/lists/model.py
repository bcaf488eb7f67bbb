"""What a list is to its readers (the admin API, `GET /api/v2/deny-lists`, the CLI)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

MAX_NAME = 500
MAX_DESCRIPTION = 2_000


@dataclass(frozen=True, slots=True)
class ListInfo:
    id: str
    name: str
    description: str | None
    entry_count: int
    created_at: int
    """Epoch milliseconds."""
    updated_at: int

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "description": self.description,
            "entry_count": self.entry_count, "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }


@dataclass(frozen=True, slots=True)
class Assigned:
    """A tenant's lists as of an assignments `version` (None: nothing was ever assigned)."""

    version: int | None
    ids: tuple[str, ...]


class ListReader(Protocol):
    """The read side every store offers for lists."""

    async def lists(self, ids: Sequence[str] | None = None) -> list[ListInfo]:
        """The lists with these ids that exist (all lists for None), by name."""

    async def list_tenants(self, list_id: str) -> list[str]:
        """The tenants `list_id` is assigned to, sorted."""

    async def assigned(self, tenant: str) -> Assigned:
        """The list ids assigned to `tenant`, with the assignments version read with them."""


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z"
    )


def by_name(infos: Sequence[ListInfo]) -> list[ListInfo]:
    return sorted(infos, key=lambda info: (info.name.casefold(), info.id))
