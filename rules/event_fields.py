"""The fields of a v1/v2 rule event, one check each: what rules/events.py builds and reads with.

Every failure is an InvalidEventError whose `code` labels a metric and whose reason names bad
values by position, never by content (they may be emails or phones).
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
import phonenumbers

from rules.catalogue.record import MAX_REASON
from rules.model import MAX_VALUES_PER_CHANGE, RuleType, is_tenant

VERSION = 3  # the newest read; v2 adds `reason`, `expires_at`; v3 lists, campaigns (EVENTS.md)
_NAMED_BAD_VALUES = 10
_OPS: frozenset[str] = frozenset(("add", "remove"))
_TYPES: dict[str, RuleType] = {t.value: t for t in RuleType}
_KIND_NAMES: dict[type, str] = {str: "string", list: "list"}


class InvalidEventError(ValueError):
    """A record that is not a valid v1 event; `code` is one of REASONS, `reason` says why.

    Never retriable: the same bytes fail the same way, so the record is dead-lettered.
    The reason names bad values by position, never by content (they may be emails or phones).
    """

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def parse_body(value: bytes | None) -> dict[str, Any]:
    if value is None:
        raise InvalidEventError("json", "record has no value")
    try:
        body = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise InvalidEventError("json", f"not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidEventError("json", "not a JSON object")
    check_unique_keys(value)
    return body


def check_unique_keys(value: bytes) -> None:
    """An object with a repeated field (`"op": "add", "op": "remove"`) means two things.

    orjson keeps the last, other readers the first: dead-letter it rather than pick one.
    (orjson has no hook for this; the standard parser reads the already-validated bytes.)
    """
    json.loads(value, object_pairs_hook=_unique_pairs)


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    counts = Counter(name for name, _ in pairs)
    if len(counts) != len(pairs):
        repeated = sorted(name for name, n in counts.items() if n > 1)
        raise InvalidEventError("json", f"repeated field {', '.join(map(repr, repeated))[:100]}")
    return dict(pairs)


def check_version(v: Any) -> None:
    if v is None:
        raise InvalidEventError("schema", "missing field v")
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise InvalidEventError("schema", "v must be an integer")
    if v > VERSION:
        raise InvalidEventError(
            "version", f"unsupported version {v} (this consumer reads {VERSION})"
        )
    if v not in (1, 2, VERSION):
        raise InvalidEventError("schema", f"unknown version {v}")


def field(body: dict[str, Any], name: str, kind: type) -> Any:
    value = body.get(name)
    if value is None:
        raise InvalidEventError("schema", f"missing field {name}")
    if not isinstance(value, kind):
        raise InvalidEventError("schema", f"{name} must be a {_KIND_NAMES[kind]}")
    return value


def check_op(op: str) -> None:
    if op not in _OPS:
        raise InvalidEventError("schema", "op must be add or remove")


def check_tenant(tenant: str) -> None:
    if not isinstance(tenant, str) or not is_tenant(tenant):
        raise InvalidEventError("schema", "tenant must be 64 lowercase hex digits or *")


def rule_type_of(name: RuleType | str) -> RuleType:
    kind = _TYPES.get(name) if isinstance(name, str) else None
    if kind is None:
        raise InvalidEventError("schema", f"type must be one of {', '.join(_TYPES)}")
    return kind


def check_region(region: Any) -> str | None:
    """The optional `region` (ISO 3166 alpha-2, upper case, a region phonenumbers reads).

    Absent or null: the event is read in the consumer's region (events before this field).
    """
    if region is None:
        return None
    if not isinstance(region, str) or region not in phonenumbers.SUPPORTED_REGIONS:
        raise InvalidEventError(
            "schema", "region must be an ISO 3166 alpha-2 code in upper case (US, FR, …)"
        )
    return region


def check_flag(body: dict[str, Any], name: str) -> bool:
    """An optional boolean field: absent or null is False."""
    value = body.get(name)
    if value is not None and not isinstance(value, bool):
        raise InvalidEventError("schema", f"{name} must be true or false")
    return bool(value)


def v2_fields(body: dict[str, Any]) -> tuple[str | None, float | None]:
    """`reason` and `expires_at` (absolute: a replay expires the rule at the same moment)."""
    reason, expires = body.get("reason"), body.get("expires_at")
    if reason is not None and (not isinstance(reason, str) or len(reason) > MAX_REASON):
        raise InvalidEventError("schema", f"reason must be a string of ≤ {MAX_REASON} characters")
    if expires is not None and not isinstance(expires, str):
        raise InvalidEventError("schema", "expires_at must be an RFC 3339 timestamp")
    return reason, None if expires is None else parse_ts(expires)


def v2_body(reason: str | None, expires_at: datetime | None) -> dict[str, Any]:
    """The v2 fields of a new event (none: it stays v1), checked as `v2_fields` reads them."""
    body: dict[str, Any] = {} if reason is None else {"reason": reason}
    if expires_at is not None:
        body["expires_at"] = format_ts(expires_at)
    v2_fields(body)
    return body


def check_values(values: Sequence[Any], max_values: int = MAX_VALUES_PER_CHANGE) -> None:
    if not values:
        raise InvalidEventError("schema", "values must not be empty")
    if len(values) > max_values:
        raise InvalidEventError(
            "too_many_values", f"{len(values)} values (at most {max_values} per event)"
        )
    if isinstance(values, (str, bytes)):
        raise InvalidEventError("schema", "values must be a list of strings")


def event_id(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise InvalidEventError("schema", "id must be a UUID") from None


def parse_ts(value: str) -> float:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidEventError("schema", "ts must be an RFC 3339 timestamp") from None
    if moment.tzinfo is None:
        raise InvalidEventError("schema", "ts must carry a time zone (use Z for UTC)")
    return moment.timestamp()


def format_ts(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def bad_values_reason(bad: list[int], total: int, rule_type: RuleType) -> str:
    named = ", ".join(f"values[{i}]" for i in bad[:_NAMED_BAD_VALUES])
    more = f" and {len(bad) - _NAMED_BAD_VALUES} more" if len(bad) > _NAMED_BAD_VALUES else ""
    return f"{len(bad)} of {total} values are not a valid {rule_type.value}: {named}{more}"
