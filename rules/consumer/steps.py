"""The pure steps of the chain: decode (validate and normalise) a batch, then cut it into writes.

Normalising happens inside decoding (rules/events.py): a value that does not normalise makes
its record poison, so it goes to the dead-letter step with the undecodable ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeAlias

from aiokafka.structs import ConsumerRecord

from rules.consumer.tuning import ConsumerTuning
from rules.events import (
    MAX_EVENT_BYTES,
    Event,
    InvalidEventError,
    check_key,
    check_partition,
    event_of,
    parse_event,
    placed_by,
)
from rules.model import MAX_VALUES_PER_CHANGE, Change

Record: TypeAlias = "ConsumerRecord[bytes, bytes]"
"""A record of the rule topic (key and value may be None on the wire; decoding rejects that)."""

Decoded: TypeAlias = Event | InvalidEventError
"""One record after decoding: the event, or why it is poison."""


@dataclass(slots=True)
class Slice:
    """Consecutive records written in one pipeline, with the offsets they bring us to."""

    changes: list[Change] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)
    """The record of each event (so an event refused later can be dead-lettered)."""
    offsets: dict[int, int] = field(default_factory=dict)
    values: int = 0
    rejects: list[tuple[Record, InvalidEventError]] = field(default_factory=list)
    """Its poison records: dead-lettered with its write, so a revocation drops both or neither."""


@dataclass(frozen=True, slots=True)
class Checks:
    """What every record is held to before it may touch the store."""

    region: str
    """The consumer's --phone-region: reads only events that carry no `region` of their own."""
    partitions: int = 0
    """The topic's partition count; 0 skips the partition check (not yet known)."""
    max_values: int = MAX_VALUES_PER_CHANGE
    max_bytes: int = MAX_EVENT_BYTES

    @classmethod
    def of(cls, tuning: ConsumerTuning, region: str, partitions: int) -> Checks:
        return cls(region, partitions, tuning.max_event_values, tuning.max_event_bytes)


def decode_one(record: Record, checks: Checks) -> Decoded:
    """The event a record carries (normalised), or the reason it is poison.

    Cheap checks first (size, schema, key, partition), normalisation last, in the event's
    region (the publisher's), else the consumer's. Any other
    exception is poison too (reason `error`): one record must never stop the pipeline.
    """
    try:
        parsed = parse_event(record.value, checks.max_values, checks.max_bytes)
        check_key(record.key, parsed.tenant)
        placed = placed_by(record.headers)
        check_partition(record.key, record.partition, checks.partitions, placed)
        return event_of(parsed, checks.region)
    except InvalidEventError as exc:
        return exc
    except Exception as exc:  # a bug on one record is that record's dead letter
        return InvalidEventError("error", f"unexpected {type(exc).__name__} while decoding")


def decode_all(records: list[Record], checks: Checks) -> list[Decoded]:
    """Decode a batch (runs in a worker thread: normalising 10,000 phones takes a while)."""
    return [decode_one(record, checks) for record in records]


def rejects(
    records: list[Record], decoded: list[Decoded]
) -> list[tuple[Record, InvalidEventError]]:
    """The poison records of a batch, each with why."""
    pairs = zip(records, decoded, strict=True)
    return [(r, d) for r, d in pairs if isinstance(d, InvalidEventError)]


def slices(records: list[Record], decoded: list[Decoded], max_values: int) -> list[Slice]:
    """Cut a batch into writes of at most ~max_values values, record order kept.

    A poison record adds no change but still moves its partition's offset on.
    """
    parts = [Slice()]
    for record, item in zip(records, decoded, strict=True):
        part = parts[-1]
        if isinstance(item, Event):
            if part.values and part.values + len(item.change.values) > max_values:
                part = Slice()
                parts.append(part)
            part.changes.append(item.change)
            part.events.append(item)
            part.records.append(record)
            part.values += len(item.change.values)
        else:
            part.rejects.append((record, item))
        part.offsets[record.partition] = record.offset + 1
    return parts
