"""The vocabulary every other module shares: rule types, scopes, changes."""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal


class RuleType(StrEnum):
    EMAIL = "email"
    PHONE = "phone"
    DOMAIN = "domain"
    LINKEDIN = "linkedin"
    COMPANY = "company"
    """Company entries as keys (`id:…`, `domain:…`, `namecity:…|…`, `name:…`): rules/company.py."""


RULE_TYPES: tuple[RuleType, ...] = tuple(RuleType)

DEFAULT_REGION = "US"
"""The one default phone region (settings only): every function takes the region explicitly."""

GLOBAL = "*"
"""The scope whose rules apply to every API key."""

Op = Literal["add", "remove"]

MAX_VALUES_PER_CHANGE = 10_000
"""Values in one event, one API call or one Redis command (the schema's `maxItems` too)."""

Lookup = Mapping[RuleType, Collection[str]]
"""Normalised identifiers by type: what a store is asked, and what it answers as denied."""


@functools.lru_cache(maxsize=4096)
def tenant_of(api_key: str) -> str:
    """The scope of an API key: we keep its SHA-256, never the key itself.

    Surrounding white space is not part of a key (a key read from a file ends in a newline);
    an empty key is a ValueError, never the scope of the empty string. Remembered per process
    (bounded): a few keys send every request, and hashing one cost each of them ~3 %. The keys
    stay in this process's memory only, as they already do in every request they came in.
    """
    key = api_key.strip()
    if not key:
        raise ValueError("an API key must not be empty")
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


_TENANT = re.compile(r"[0-9a-f]{64}")


def is_tenant(scope: str) -> bool:
    """A tenant id is 64 lowercase hex digits, or the global scope (a regex: every lookup
    asks, and a generator over 64 characters cost ~4 µs)."""
    return scope == GLOBAL or _TENANT.fullmatch(scope) is not None


@dataclass(frozen=True, slots=True)
class ChangeMeta:
    """Where a change came from and why: what the rule catalogue records beside the rule."""

    at: float
    """The change's event time (epoch seconds): a record's created_at / updated_at."""
    source: str | None = None
    event_id: str | None = None
    reason: str | None = None
    expires_at: float | None = None
    """Epoch seconds at which an added rule stops suppressing; None: never."""


@dataclass(frozen=True, slots=True)
class RuleChange:
    """Add or remove normalised values of one type in one scope."""

    op: Op
    tenant: str
    type: RuleType
    values: tuple[str, ...]
    meta: ChangeMeta | None = field(default=None, compare=False)
    """None: recorded as made now by an unnamed source (tests, tools)."""


ListOp = Literal["create", "update", "delete", "assign"]


@dataclass(frozen=True, slots=True)
class ListChange:
    """An operator's change to a named list itself (its entries are RuleChanges of its scope).

    `assign` replaces the list's tenants with `tenants` (replace-all, like OpenProspect).
    """

    op: ListOp
    list_id: str
    at: float
    name: str | None = None
    description: str | None = None
    tenants: tuple[str, ...] = ()

    @property
    def values(self) -> tuple[str, ...]:
        """What the consumer counts against its per-write budget."""
        return self.tenants


Change = RuleChange | ListChange
"""What a consumer applies: a rule change (of any scope) or a change to a list."""


def chunks(values: Sequence[str], size: int = MAX_VALUES_PER_CHANGE) -> Iterator[Sequence[str]]:
    """Split a long list into pieces of at most `size`, order kept (events, store commands)."""
    for start in range(0, len(values), size):
        yield values[start : start + size]
