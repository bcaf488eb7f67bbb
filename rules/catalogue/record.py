"""A catalogue record as the API shows it, and what a listing asks for.

Redis keeps times as epoch milliseconds (sortable, compact); they become RFC 3339 only here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from rules.model import RuleType

SortBy = Literal["created_at", "value", "type"]
MAX_LIMIT = 1_000
MAX_REASON = 500
Hit = tuple[str, RuleType, str]
"""(scope, type, normal value) of a rule that removed something from a response."""


@dataclass(frozen=True, slots=True)
class Record:
    """One rule: its identity, where it came from, and what it has suppressed."""

    id: str
    type: RuleType
    value: str
    scope: str
    reason: str | None
    source: str | None
    event_id: str | None
    created_at: int
    updated_at: int
    enforced_at: int
    expires_at: int | None
    suppressions: int
    last_suppressed_at: int | None

    @classmethod
    def of(cls, raw: Mapping[str, str]) -> Record:
        """From the record's Redis hash (or the memory store's dict of the same fields)."""
        return cls(
            raw["id"], RuleType(raw["type"]), raw["value"], raw["scope"],
            raw.get("reason") or None, raw.get("source") or None, raw.get("event_id") or None,
            int(raw["created_at"]), int(raw.get("updated_at") or raw["created_at"]),
            int(raw.get("enforced_at") or raw["created_at"]), _opt_int(raw.get("expires_at")),
            int(raw.get("suppressions") or 0), _opt_int(raw.get("last_suppressed_at")),
        )

    def expired(self, now_ms: float) -> bool:
        return self.expires_at is not None and self.expires_at <= now_ms

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "type": self.type.value, "value": self.value, "scope": self.scope,
            "reason": self.reason, "source": self.source, "event_id": self.event_id,
            "created_at": rfc3339(self.created_at), "updated_at": rfc3339(self.updated_at),
            "enforced_at": rfc3339(self.enforced_at), "expires_at": rfc3339(self.expires_at),
            "suppressions": self.suppressions,
            "last_suppressed_at": rfc3339(self.last_suppressed_at),
        }


@dataclass(frozen=True, slots=True)
class ListQuery:
    """A page of one tenant's catalogue; `search` is a case-insensitive substring of value."""

    type: RuleType | None = None
    search: str | None = None
    sort_by: SortBy = "created_at"
    desc: bool = True
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True, slots=True)
class Page:
    records: list[Record]
    total: int


def rfc3339(epoch_ms: int | None) -> str | None:
    if epoch_ms is None:
        return None
    moment = datetime.fromtimestamp(epoch_ms / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _opt_int(text: str | None) -> int | None:
    return int(text) if text else None


def sort_key(sort_by: SortBy, record: Record) -> tuple[Any, ...]:
    """The order of a listing (ties broken by id, so pages never overlap)."""
    if sort_by == "created_at":
        return (record.created_at, record.id)
    if sort_by == "value":
        return (record.value, record.type.value)
    return (record.type.value, record.value)
