"""`"type": "company"` in the deny-rules API: entries as objects (or stored keys) → rule changes.

An entry is `{"external_id"?, "website_url"?, "company_name"?, "city"?, "reason"?}`
(rules/company.py); a string is read as a stored key (`domain:acme.com`), as the CLI and Kafka
carry them. Bad entries are a 400 naming each one by index, and nothing is changed. An entry's
own `reason` wins over the call's; entries are grouped by reason into changes of at most
10,000 values (one entry is up to four values), each counted as one write.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace

from proxy.errors import BadRequestError
from rules.company import company_key, parse_company
from rules.model import ChangeMeta, Op, RuleChange, RuleType, chunks

_SHOWN = 20  # bad entries named in one error


@dataclass(frozen=True, slots=True)
class CompanyInput:
    """The entries of one call: each one's label (for `/check`) and values, in order."""

    labels: list[str]  # aligned with values
    values: list[str]
    reasons: list[str | None]  # aligned with values

    def changes(self, op: Op, tenant: str, meta: ChangeMeta) -> list[RuleChange]:
        """One change per reason (an entry's own, else the call's), ≤ 10,000 values each;
        every change after the first is an event of its own (a new event id)."""
        groups: dict[str | None, dict[str, None]] = {}
        for value, reason in zip(self.values, self.reasons, strict=True):
            groups.setdefault(reason or meta.reason, {})[value] = None
        out: list[RuleChange] = []
        for reason, values in groups.items():
            for part in chunks(list(values)):
                event_id = meta.event_id if not out else str(uuid.uuid4())
                own = replace(meta, reason=reason, event_id=event_id)
                out.append(RuleChange(op, tenant, RuleType.COMPANY, tuple(part), own))
        return out


def company_input(raw: list[object]) -> CompanyInput:
    """Every entry parsed; BadRequestError naming the bad ones (by index and why)."""
    labels: list[str] = []
    values: list[str] = []
    reasons: list[str | None] = []
    bad: list[str] = []
    for index, item in enumerate(raw):
        try:
            keys, reason = _entry(item)
        except ValueError as exc:
            bad.append(f"values[{index}]: {exc}")
            continue
        labels += [" ".join(keys)] * len(keys)
        values += keys
        reasons += [reason] * len(keys)
    if bad:
        more = f" (and {len(bad) - _SHOWN} more)" if len(bad) > _SHOWN else ""
        raise BadRequestError(
            f"{len(bad)} values are not a valid company: {'; '.join(bad[:_SHOWN])}{more}"
        )
    return CompanyInput(labels, values, reasons)


def _entry(item: object) -> tuple[tuple[str, ...], str | None]:
    """An entry's values and reason; a string is one stored key."""
    if not isinstance(item, str):
        entry = parse_company(item)
        return entry.values(), entry.reason
    key = company_key(item)
    if key is None:
        raise ValueError("a string must be a company key (id:…, domain:…, namecity:…|…, name:…)")
    return (key,), None
