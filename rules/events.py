"""Rule event schema v1/v2: the only module that knows the wire format (see rules/EVENTS.md).

A record's key is the tenant id (or `*`), its value a JSON object:
    {"v": 1, "op": "add", "tenant": "<64 hex or *>", "type": "phone", "region": "FR",
     "values": ["01 23 45 67 89"], "id": "<uuid4>", "ts": "2026-11-25T10:00:00Z", "source": "crm"}
Field checks live in rules/event_fields.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka.partitioner import murmur2

from rules.catalogue.record import MAX_REASON
from rules.event_fields import (
    VERSION,
    InvalidEventError,
    bad_values_reason,
    check_flag,
    check_op,
    check_region,
    check_tenant,
    check_values,
    check_version,
    event_id,
    field,
    format_ts,
    parse_body,
    parse_ts,
    rule_type_of,
    v2_body,
    v2_fields,
)
from rules.lists.events import (
    LIST_OPS,
    LIST_VERSION,
    ParsedListEvent,
    parse_list_event,
    read_scope,
    wire_scope,
)
from rules.model import MAX_VALUES_PER_CHANGE, Change, ChangeMeta, Op, RuleChange, RuleType
from rules.normalize import normalize_all

__all__ = [
    "MAX_EVENT_BYTES", "MAX_REASON", "PARTITIONS_HEADER", "REASONS", "VERSION", "Event",
    "InvalidEventError", "ParsedEvent", "PlacedAheadError", "check_key", "check_partition",
    "check_size", "decode", "decode_event", "encode", "event_of", "key_of", "normalise",
    "parse_event", "partition_of", "partitions_header", "placed_by",
]

MAX_EVENT_BYTES = 8 * 1024 * 1024
"""The topic's max.message.bytes: a larger value is rejected before it is even parsed."""

REASONS = (
    "json", "schema", "version", "too_many_values", "too_large", "values", "key", "partition",
    "topic", "error",
)
"""Reason codes: a bounded set, so they can label a metric (details go in the DLQ header)."""


@dataclass(frozen=True, slots=True)
class Event:
    """A decoded event: the normalised change plus what the metrics and logs need."""

    change: Change
    id: str
    ts: float
    source: str | None


def key_of(tenant: str) -> bytes:
    """The record key: the tenant id, so one tenant's events stay in order in one partition.

    A campaign's events go with its key's; a list's with the global rules (`*`)."""
    return wire_scope(tenant)[0].encode("ascii")


def partition_of(key: bytes, partitions: int) -> int:
    """Kafka's documented default (the Java client's): positive murmur2 of the key bytes,
    modulo the partition count. Every publisher must place a record here (rules/EVENTS.md)."""
    hashed: int = murmur2(key)
    return (hashed & 0x7FFFFFFF) % partitions


PARTITIONS_HEADER = "partitions"
"""Record header: the partition count the publisher placed the record by (decimal ASCII)."""


def partitions_header(partitions: int) -> tuple[str, bytes]:
    return PARTITIONS_HEADER, str(partitions).encode("ascii")


def placed_by(headers: Sequence[tuple[str, bytes | None]] | None) -> int | None:
    """The partition count a record says it was placed by, or None when it does not say."""
    said = [value or b"" for name, value in headers or () if name == PARTITIONS_HEADER]
    if not said:
        return None
    if len(said) > 1 or not said[0].isdigit() or len(said[0]) > 6 or int(said[0]) < 1:
        raise InvalidEventError("partition", f"header {PARTITIONS_HEADER} is not one count")
    return int(said[0])


class PlacedAheadError(InvalidEventError):
    """A record placed by more partitions than the topic has. Partitions are only ever added, so
    that is no count it was placed by, unless our count lags: refresh it and decide again."""

    def __init__(self, placed: int, partitions: int) -> None:
        super().__init__(
            "partition", f"header {PARTITIONS_HEADER} says {placed}, the topic has {partitions}"
        )
        self.placed = placed


def check_partition(
    key: bytes | None, partition: int, partitions: int, placed: int | None = None
) -> None:
    """A record outside its key's partition may overtake or trail its tenant's other events.

    `placed`: the count the publisher placed it by (its header), which may be a count the
    topic had before partitions were added; without it the topic's current count. A count
    above the topic's own raises PlacedAheadError (the consumer refreshes its count first).
    """
    if placed is not None and 0 < partitions < placed:
        raise PlacedAheadError(placed, partitions)
    count = partitions if placed is None else placed
    if key is not None and count > 0 and partition != partition_of(key, count):
        raise InvalidEventError(
            "partition", f"record in partition {partition}, its key maps to "
            f"{partition_of(key, count)} of {count} (murmur2)"
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
    region: str | None,
    allow_freemail: bool = False,
    source: str | None = None,
    event_id: str | None = None,
    ts: datetime | None = None,
    reason: str | None = None,
    expires_at: datetime | None = None,
) -> bytes:
    """The JSON value of one event; raises InvalidEventError for what decode would reject.

    `region`: where the values were read (the publisher's phone region). Required: None
    (no field, read in each consumer's region) must be asked for, never a forgotten default.
    `allow_freemail`: the publisher's explicit word that free-mail domains are meant.
    """
    check_op(op)
    wire_tenant, scoped = wire_scope(tenant)  # a list's or campaign's scope: v3 fields
    check_tenant(wire_tenant)
    kind = rule_type_of(rule_type)
    check_values(values)
    if not all(isinstance(v, str) for v in values):
        raise InvalidEventError("schema", "values must be strings")
    body: dict[str, Any] = {  # v1 consumers read v1 events; only lists and campaigns need v3
        "v": LIST_VERSION if scoped else 1 if reason is None and expires_at is None else 2,
        "op": op, "tenant": wire_tenant, "type": kind.value, "values": list(values),
        "id": event_id or str(uuid.uuid4()), "ts": format_ts(ts or datetime.now(UTC)), **scoped,
    }
    if check_region(region) is not None:
        body["region"] = region
    if allow_freemail:
        body["allow_freemail"] = True
    if source is not None:
        body["source"] = source
    body |= v2_body(reason, expires_at)
    return orjson.dumps(body)


def decode(value: bytes | None, region: str) -> Change:
    """The normalised change carried by a record value, or InvalidEventError."""
    return decode_event(value, region).change


@dataclass(frozen=True, slots=True)
class ParsedEvent:
    """An event checked against the schema, its values not yet normalised (the costly part)."""

    op: Op
    tenant: str
    """The record's tenant (its key); `scope` is where the change applies."""
    kind: RuleType
    raw: list[Any]
    id: str
    ts: float
    source: str | None
    region: str | None
    """Where the publisher read the values; None for events from before this field."""
    allow_freemail: bool = False
    """The publisher allowed free-mail domains (`gmail.com`) in this event."""
    reason: str | None = None
    expires_at: float | None = None
    scope: str | None = None
    """A list's or campaign's scope (v3); None: the tenant's."""

    def normalised(self, default_region: str) -> Event:
        """Values read in the event's region: every consumer stores the same E.164.

        `default_region` (the consumer's own) only reads events that carry no region.
        """
        region = self.region or default_region
        values = normalise(self.raw, self.kind, region, allow_freemail=self.allow_freemail)
        meta = ChangeMeta(self.ts, self.source, self.id, self.reason, self.expires_at)
        change = RuleChange(self.op, self.scope or self.tenant, self.kind, values, meta)
        return Event(change, self.id, self.ts, self.source)


def decode_event(value: bytes | None, region: str) -> Event:
    """Validate and normalise one record value; unknown fields are ignored (forward compat).

    `region` reads events that carry none; an event's own region always wins.
    """
    return event_of(parse_event(value), region)


def parse_event(
    value: bytes | None, max_values: int = MAX_VALUES_PER_CHANGE, max_bytes: int = MAX_EVENT_BYTES
) -> ParsedEvent | ParsedListEvent:
    """Check size, JSON and schema, cheapest first; values are normalised later."""
    check_size(value, max_bytes)
    body = parse_body(value)
    check_version(body.get("v"))
    op = field(body, "op", str)
    if op in LIST_OPS and body["v"] >= LIST_VERSION:
        return parse_list_event(body, op)
    check_op(op)
    tenant = field(body, "tenant", str)
    check_tenant(tenant)
    kind = rule_type_of(field(body, "type", str))
    raw = field(body, "values", list)
    check_values(raw, max_values)
    ident = event_id(field(body, "id", str))
    ts = parse_ts(field(body, "ts", str))
    source = body.get("source")
    if source is not None and not isinstance(source, str):
        raise InvalidEventError("schema", "source must be a string")
    region = check_region(body.get("region"))
    freemail = check_flag(body, "allow_freemail")
    reason, expires_at = v2_fields(body)
    scope = read_scope(body, tenant, body["v"])
    return ParsedEvent(
        op, tenant, kind, raw, ident, ts, source, region, freemail, reason, expires_at,
        None if scope == tenant else scope,
    )


def event_of(parsed: ParsedEvent | ParsedListEvent, region: str) -> Event:
    """The applied form of a parsed event: a rule event's values normalised in `region`."""
    if isinstance(parsed, ParsedListEvent):
        return Event(parsed.change, parsed.id, parsed.ts, parsed.source)
    return parsed.normalised(region)


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
    --allow-freemail-domains`), and its choice travels in the event (`allow_freemail`).
    """
    result = normalize_all(rule_type, raw, region, allow_freemail=allow_freemail)
    if result.rejected:
        bad = [r.index for r in result.rejected]
        raise InvalidEventError("values", bad_values_reason(bad, len(raw), rule_type))
    return result.values
