"""Rule event schema v1/v2: the only module that knows the wire format (see rules/EVENTS.md).

A record's key is the tenant id (or `*`), its value a JSON object:
    {"v": 1, "op": "add", "tenant": "<64 hex or *>", "type": "email",
     "values": ["jane@acme.com"], "id": "<uuid4>", "ts": "2026-11-25T10:00:00Z", "source": "crm"}
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka.partitioner import murmur2

from rules.model import MAX_VALUES_PER_CHANGE, ChangeMeta, Op, RuleChange, RuleType, is_tenant
from rules.normalize import normalize_all

VERSION = 2  # the newest read; v2 adds the optional `reason` and `expires_at` (EVENTS.md)
MAX_REASON = 500
MAX_VALUES = MAX_VALUES_PER_CHANGE
MAX_EVENT_BYTES = 8 * 1024 * 1024
"""The topic's max.message.bytes: a larger value is rejected before it is even parsed."""
_NAMED_BAD_VALUES = 10

REASONS = (
    "json", "schema", "version", "too_many_values", "too_large", "values", "key", "partition",
    "error",
)
"""Reason codes: a bounded set, so they can label a metric (details go in the DLQ header)."""

_OPS: frozenset[str] = frozenset(("add", "remove"))
_TYPES: dict[str, RuleType] = {t.value: t for t in RuleType}


class InvalidEventError(ValueError):
    """A record that is not a valid v1 event; `code` is one of REASONS, `reason` says why.

    Never retriable: the same bytes fail the same way, so the record is dead-lettered.
    The reason names bad values by position, never by content (they may be emails or phones).
    """

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Event:
    """A decoded event: the normalised change plus what the metrics and logs need."""

    change: RuleChange
    id: str
    ts: float
    source: str | None


def key_of(tenant: str) -> bytes:
    """The record key: the tenant id, so one tenant's events stay in order in one partition."""
    return tenant.encode("ascii")


def partition_of(key: bytes, partitions: int) -> int:
    """Kafka's documented default (the Java client's): positive murmur2 of the key bytes,
    modulo the partition count. Every publisher must place a record here (rules/EVENTS.md)."""
    hashed: int = murmur2(key)
    return (hashed & 0x7FFFFFFF) % partitions


def check_partition(key: bytes | None, partition: int, partitions: int) -> None:
    """A record outside its key's partition may overtake or trail its tenant's other events."""
    if key is not None and partitions > 0 and partition != partition_of(key, partitions):
        expected = partition_of(key, partitions)
        raise InvalidEventError(
            "partition", f"record in partition {partition}, its key maps to {expected} (murmur2)"
        )


def check_size(value: bytes | None, max_bytes: int = MAX_EVENT_BYTES) -> None:
    """Refuse an oversized value before parsing it (parsing 11 MB of JSON costs more)."""
    if value is not None and len(value) > max_bytes:
        raise InvalidEventError("too_large", f"{len(value)} bytes (at most {max_bytes})")


def encode(
    op: Op,
    tenant: str,
    rule_type: RuleType | str,
    values: Sequence[str],
    *,
    source: str | None = None,
    event_id: str | None = None,
    ts: datetime | None = None,
    reason: str | None = None,
    expires_at: datetime | None = None,
) -> bytes:
    """The JSON value of one event; raises InvalidEventError for what decode would reject."""
    _check_op(op)
    _check_tenant(tenant)
    kind = _rule_type(rule_type)
    _check_values(values)
    if not all(isinstance(v, str) for v in values):
        raise InvalidEventError("schema", "values must be strings")
    body: dict[str, Any] = {
        "v": 1 if reason is None and expires_at is None else 2,  # v1 consumers read v1 events
        "op": op,
        "tenant": tenant,
        "type": kind.value,
        "values": list(values),
        "id": event_id or str(uuid.uuid4()),
        "ts": _format_ts(ts or datetime.now(UTC)),
    }
    if source is not None:
        body["source"] = source
    body |= {"reason": reason} if reason is not None else {}
    body |= {"expires_at": _format_ts(expires_at)} if expires_at is not None else {}
    _v2_fields(body)
    return orjson.dumps(body)


def decode(value: bytes | None, region: str) -> RuleChange:
    """The normalised change carried by a record value, or InvalidEventError."""
    return decode_event(value, region).change


@dataclass(frozen=True, slots=True)
class ParsedEvent:
    """An event checked against the schema, its values not yet normalised (the costly part)."""

    op: Op
    tenant: str
    kind: RuleType
    raw: list[Any]
    id: str
    ts: float
    source: str | None
    reason: str | None = None
    expires_at: float | None = None

    def normalised(self, region: str) -> Event:
        values = normalise(self.raw, self.kind, region, allow_freemail=True)  # publisher's call
        meta = ChangeMeta(self.ts, self.source, self.id, self.reason, self.expires_at)
        change = RuleChange(self.op, self.tenant, self.kind, values, meta)
        return Event(change, self.id, self.ts, self.source)


def decode_event(value: bytes | None, region: str) -> Event:
    """Validate and normalise one record value; unknown fields are ignored (forward compat)."""
    return parse_event(value).normalised(region)


def parse_event(
    value: bytes | None, max_values: int = MAX_VALUES, max_bytes: int = MAX_EVENT_BYTES
) -> ParsedEvent:
    """Check size, JSON and schema, cheapest first; values are normalised later."""
    check_size(value, max_bytes)
    body = _parse(value)
    _check_version(body.get("v"))
    op = _field(body, "op", str)
    _check_op(op)
    tenant = _field(body, "tenant", str)
    _check_tenant(tenant)
    kind = _rule_type(_field(body, "type", str))
    raw = _field(body, "values", list)
    _check_values(raw, max_values)
    event_id = _event_id(_field(body, "id", str))
    ts = _parse_ts(_field(body, "ts", str))
    source = body.get("source")
    if source is not None and not isinstance(source, str):
        raise InvalidEventError("schema", "source must be a string")
    reason, expires_at = _v2_fields(body)
    return ParsedEvent(op, tenant, kind, raw, event_id, ts, source, reason, expires_at)


def _v2_fields(body: dict[str, Any]) -> tuple[str | None, float | None]:
    """`reason` and `expires_at` (absolute: a replay expires the rule at the same moment)."""
    reason, expires = body.get("reason"), body.get("expires_at")
    if reason is not None and (not isinstance(reason, str) or len(reason) > MAX_REASON):
        raise InvalidEventError("schema", f"reason must be a string of ≤ {MAX_REASON} characters")
    if expires is not None and not isinstance(expires, str):
        raise InvalidEventError("schema", "expires_at must be an RFC 3339 timestamp")
    return reason, None if expires is None else _parse_ts(expires)


def check_key(key: bytes | None, tenant: str) -> None:
    """A record whose key is not its tenant would break per-tenant ordering: reject it."""
    if key != key_of(tenant):
        reason = "record key is missing" if key is None else "record key does not match tenant"
        raise InvalidEventError("key", reason)


def normalise(
    raw: Sequence[str], rule_type: RuleType, region: str, *, allow_freemail: bool = False
) -> tuple[str, ...]:
    """All values in canonical form, duplicates dropped, or InvalidEventError naming the bad.

    Free-mail domains are refused unless allowed: the publisher decides (`rules add
    --allow-freemail-domains`), so the consumer accepts what reaches the topic.
    """
    result = normalize_all(rule_type, raw, region, allow_freemail=allow_freemail)
    if result.rejected:
        bad = [r.index for r in result.rejected]
        raise InvalidEventError("values", _bad_values_reason(bad, len(raw), rule_type))
    return result.values


def chunks(values: Sequence[str], size: int = MAX_VALUES_PER_CHANGE) -> Iterable[Sequence[str]]:
    """Split a long list into event-sized pieces, order kept."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _parse(value: bytes | None) -> dict[str, Any]:
    if value is None:
        raise InvalidEventError("json", "record has no value")
    try:
        body = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise InvalidEventError("json", f"not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidEventError("json", "not a JSON object")
    return body


def _check_version(v: Any) -> None:
    if v is None:
        raise InvalidEventError("schema", "missing field v")
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise InvalidEventError("schema", "v must be an integer")
    if v > VERSION:
        raise InvalidEventError(
            "version", f"unsupported version {v} (this consumer reads {VERSION})"
        )
    if v not in (1, VERSION):
        raise InvalidEventError("schema", f"unknown version {v}")


def _field(body: dict[str, Any], name: str, kind: type) -> Any:
    value = body.get(name)
    if value is None:
        raise InvalidEventError("schema", f"missing field {name}")
    if not isinstance(value, kind):
        raise InvalidEventError("schema", f"{name} must be a {_KIND_NAMES[kind]}")
    return value


_KIND_NAMES: dict[type, str] = {str: "string", list: "list"}


def _check_op(op: str) -> None:
    if op not in _OPS:
        raise InvalidEventError("schema", "op must be add or remove")


def _check_tenant(tenant: str) -> None:
    if not isinstance(tenant, str) or not is_tenant(tenant):
        raise InvalidEventError("schema", "tenant must be 64 lowercase hex digits or *")


def _rule_type(name: RuleType | str) -> RuleType:
    kind = _TYPES.get(name) if isinstance(name, str) else None
    if kind is None:
        raise InvalidEventError("schema", f"type must be one of {', '.join(_TYPES)}")
    return kind


def _check_values(values: Sequence[Any], max_values: int = MAX_VALUES) -> None:
    if not values:
        raise InvalidEventError("schema", "values must not be empty")
    if len(values) > max_values:
        raise InvalidEventError(
            "too_many_values", f"{len(values)} values (at most {max_values} per event)"
        )
    if isinstance(values, (str, bytes)):
        raise InvalidEventError("schema", "values must be a list of strings")


def _event_id(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise InvalidEventError("schema", "id must be a UUID") from None


def _parse_ts(value: str) -> float:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidEventError("schema", "ts must be an RFC 3339 timestamp") from None
    if moment.tzinfo is None:
        raise InvalidEventError("schema", "ts must carry a time zone (use Z for UTC)")
    return moment.timestamp()


def _format_ts(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _bad_values_reason(bad: list[int], total: int, rule_type: RuleType) -> str:
    named = ", ".join(f"values[{i}]" for i in bad[:_NAMED_BAD_VALUES])
    more = f" and {len(bad) - _NAMED_BAD_VALUES} more" if len(bad) > _NAMED_BAD_VALUES else ""
    return f"{len(bad)} of {total} values are not a valid {rule_type.value}: {named}{more}"
