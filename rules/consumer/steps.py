"""The pure steps of the chain: decode (validate and normalise) a batch, then cut it into writes.

Normalising happens inside decoding (rules/events.py): a value that does not normalise makes
its record poison, so it goes to the dead-letter step with the undecodable ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeAlias

from aiokafka.structs import ConsumerRecord

from rules.events import Event, InvalidEventError, check_key, decode_event
from rules.model import RuleChange

Record: TypeAlias = "ConsumerRecord[bytes, bytes]"
"""A record of the rule topic (key and value may be None on the wire; decoding rejects that)."""

Decoded: TypeAlias = Event | InvalidEventError
"""One record after decoding: the event, or why it is poison."""


@dataclass(slots=True)
class Slice:
    """Consecutive records written in one pipeline, with the offsets they bring us to."""

    changes: list[RuleChange] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    offsets: dict[int, int] = field(default_factory=dict)
    values: int = 0


def decode_one(record: Record, region: str) -> Decoded:
    """The event a record carries (normalised), or the reason it is poison."""
    try:
        event = decode_event(record.value, region)
        check_key(record.key, event.change.tenant)
    except InvalidEventError as exc:
        return exc
    return event


def decode_all(records: list[Record], region: str) -> list[Decoded]:
    """Decode a batch (runs in a worker thread: normalising 10,000 phones takes a while)."""
    return [decode_one(record, region) for record in records]


def rejects(
    records: list[Record], decoded: list[Decoded]
) -> list[tuple[Record, InvalidEventError]]:
    """The poison records of a batch, each with why."""
    return [(r, d) for r, d in zip(records, decoded) if isinstance(d, InvalidEventError)]


def slices(records: list[Record], decoded: list[Decoded], max_values: int) -> list[Slice]:
    """Cut a batch into writes of at most ~max_values values, record order kept.

    A poison record adds no change but still moves its partition's offset on.
    """
    parts = [Slice()]
    for record, item in zip(records, decoded):
        part = parts[-1]
        if isinstance(item, Event):
            if part.values and part.values + len(item.change.values) > max_values:
                part = Slice()
                parts.append(part)
            part.changes.append(item.change)
            part.events.append(item)
            part.values += len(item.change.values)
        part.offsets[record.partition] = record.offset + 1
    return parts
