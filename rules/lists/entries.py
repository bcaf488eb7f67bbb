"""A list's entries as an operator sends them: strings whose type is detected, or objects
with a `type`; each read by the one normaliser, each failure named by its index."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from rules.company import parse_company
from rules.model import MAX_VALUES_PER_CHANGE, RuleType
from rules.normalize import classify

MAX_ENTRIES = MAX_VALUES_PER_CHANGE
"""Entries per call: one event per type at most."""


@dataclass(slots=True)
class Entries:
    """Normal values per type (unique, in order), the failures, and repeats within the call."""

    by_type: dict[RuleType, list[str]] = field(default_factory=dict)
    failed: list[tuple[int, str]] = field(default_factory=list)
    repeated: int = 0

    def add(self, rule_type: RuleType, value: str) -> None:
        values = self.by_type.setdefault(rule_type, [])
        if value in values:
            self.repeated += 1
        else:
            values.append(value)


def parse_entries(raw: Sequence[object], region: str) -> Entries:
    """Every entry read; a bad one fails alone (`failed`), never the whole call."""
    entries = Entries()
    for index, entry in enumerate(raw):
        found = read_entry(entry, region)
        if isinstance(found, str):
            entries.failed.append((index, found))
        else:
            for rule_type, value in found:
                entries.add(rule_type, value)
    return entries


def read_entry(entry: object, region: str) -> list[tuple[RuleType, str]] | str:
    """(type, normal value) pairs, or why not: a string is detected, an object names its
    type; a company (`{"type": "company", "external_id"?, "website_url"?, "company_name"?,
    "city"?}`) is one value per matching tier (rules/company.py)."""
    if isinstance(entry, str):
        found = classify(entry, None, region)
        return found if isinstance(found, str) else [found]
    if not isinstance(entry, dict):
        return "an entry must be a string or an object with type and value"
    kind = entry.get("type")
    if kind == RuleType.COMPANY.value:
        try:
            return [(RuleType.COMPANY, v) for v in parse_company(entry).values()]
        except ValueError as exc:
            return str(exc)
    if kind not in tuple(RuleType):
        return f"type must be one of {', '.join(t.value for t in RuleType)}"
    found = classify(entry.get("value"), RuleType(kind), region)
    return found if isinstance(found, str) else [found]
