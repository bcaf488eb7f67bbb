"""Issue #13's bench cell: a fifth API key with 5 named lists of N entries each (100,000;
`--quick` 10,000), written through the store's list writer as an operator's would be.

Each list holds synthetic entries that match nothing in the payloads, plus its share of the
8-contact payloads' values denied for that key (spread round-robin over the lists), so the
`lists` cell filters as much as the `small` one and the lists are really consulted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from rules.model import (
    DEFAULT_REGION,
    Change,
    ListChange,
    RuleChange,
    RuleType,
    chunks,
    tenant_of,
)
from rules.normalize import normalize_all
from rules.scopes import list_scope

LISTS_KEY = "bench-key-lists"
LIST_COUNT = 5
_AREAS = (212, 213, 312, 415, 617, 646, 702, 713, 718, 202, 303, 305, 404, 503, 602, 206)
"""Assigned US area codes, none of the payloads' (512, 737): list phones never match them."""

Doc = dict[str, Any]


@dataclass(frozen=True)
class ListsData:
    """The lists key, its lists as store changes (one batch per list) and what they deny."""

    key: str
    batches: list[list[Change]]
    denied_raw: set[str]  # raw payload values the lists deny for `key`
    entries: int  # per list

    @property
    def count(self) -> int:
        return len(self.batches)


def list_filler(list_no: int, count: int) -> dict[RuleType, list[str]]:
    """`count` raw entries unique to list `list_no` (70 % emails, 20 % phones, 10 % LinkedIn)
    that match no payload value."""
    n_email, n_phone = int(count * 0.7), int(count * 0.2)
    base = list_no * n_phone
    return {
        RuleType.EMAIL: [f"list{list_no}.entry{n}@example{n % 997}.org" for n in range(n_email)],
        RuleType.PHONE: [f"+1{_AREAS[(base + n) % len(_AREAS)]}"
                         f"{200 + (base + n) // 10000 % 700:03d}{(base + n) % 10000:04d}"
                         for n in range(n_phone)],
        RuleType.LINKEDIN: [f"https://linkedin.com/in/list{list_no}-entry-{n}"
                            for n in range(count - n_email - n_phone)],
    }


def spread(denied: dict[str, RuleType], lists: int) -> list[dict[RuleType, list[str]]]:
    """The denied raw values dealt round-robin over `lists` lists, by type (sorted: stable)."""
    out: list[dict[RuleType, list[str]]] = [{} for _ in range(lists)]
    for n, value in enumerate(sorted(denied)):
        out[n % lists].setdefault(denied[value], []).append(value)
    return out


def list_values(list_no: int, own: dict[RuleType, list[str]], entries: int
                ) -> dict[RuleType, tuple[str, ...]]:
    """Normal values of one list: its payload values plus filler up to `entries` in all."""
    filler = list_filler(list_no, entries - sum(map(len, own.values())))
    out = {}
    for rule_type, raw in filler.items():
        result = normalize_all(rule_type, own.get(rule_type, []) + raw, DEFAULT_REGION)
        assert not result.rejected, result.rejected[:3]
        out[rule_type] = tuple(result.values)
    return out


def list_batch(list_id: str, n: int, values: dict[RuleType, tuple[str, ...]], tenant: str
               ) -> list[Change]:
    """Create, entries (≤ 10,000 values per change, as the list writer sends them), assign."""
    now = time.time()
    batch: list[Change] = [ListChange("create", list_id, now, f"bench list {n}")]
    for rule_type, typed in values.items():
        batch += [RuleChange("add", list_scope(list_id), rule_type, tuple(part))
                  for part in chunks(typed)]
    return [*batch, ListChange("assign", list_id, now, tenants=(tenant,))]


def make_lists(denied: dict[str, RuleType], entries: int, count: int = LIST_COUNT
               ) -> ListsData:
    """`count` lists of `entries` entries for LISTS_KEY; `denied`: raw payload values to deny."""
    tenant = tenant_of(LISTS_KEY)
    batches = [list_batch(f"{0xbe7c1 + n:032x}", n, list_values(n, own, entries), tenant)
               for n, own in enumerate(spread(denied, count))]
    return ListsData(LISTS_KEY, batches, set(denied), entries)
