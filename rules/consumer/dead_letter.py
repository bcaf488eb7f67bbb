"""Poison records: to the dead-letter topic (when enabled), counted and logged, never retried.

Only records that cannot be applied go here; a store that is down is retried instead.
Dead-lettering itself never fails for size: a record too large for the dead-letter topic
goes there as a reference (topic, partition, offset, reason, size) without its payload.
Any other failure to dead-letter stops the loop (DeadLetterError, retried with back-off,
visible as a stall) rather than skipping the record.
"""

from __future__ import annotations

import asyncio
import logging

import orjson
from aiokafka.errors import KafkaError, MessageSizeTooLargeError, RecordTooLargeError

from rules import metrics
from rules.consumer.errors import DeadLetterError
from rules.consumer.steps import Record
from rules.events import InvalidEventError
from rules.kafka import MAX_MESSAGE_BYTES, KafkaOptions, Producer, dead_letter_topic, make_producer

log = logging.getLogger("rules.consumer")

Reject = tuple[Record, InvalidEventError]

SIZE_ERRORS = (MessageSizeTooLargeError, RecordTooLargeError)
"""The client's own size check, and the broker's (the DLQ topic's max.message.bytes)."""

_ROOM = 64 * 1024
"""Left for the record's framing and our headers under the producer's request limit."""


class DeadLetters:
    """Sends rejects of `topic` to its dead-letter topic; a None producer only counts them."""

    def __init__(self, topic: str, max_payload: int = MAX_MESSAGE_BYTES - _ROOM) -> None:
        self.topic = topic
        self.producer: Producer | None = None
        self.rejected = 0
        self.max_payload = max_payload

    async def start(self, options: KafkaOptions) -> None:
        self.producer = make_producer(options, "denyproxy-dead-letter")
        await self.producer.start()

    async def stop(self) -> None:
        producer, self.producer = self.producer, None
        if producer is not None:
            await producer.stop()

    async def send(self, rejects: list[Reject]) -> None:
        """Produce every reject (acknowledged before the batch is applied), then count them."""
        if self.producer is not None and rejects:
            producer = self.producer
            try:
                await asyncio.gather(*(self._deliver(producer, r, e) for r, e in rejects))
            except KafkaError as exc:
                raise DeadLetterError(f"cannot dead-letter: {type(exc).__name__}") from exc
        for record, err in rejects:
            self._count(record, err)

    async def drain(self, rejects: list[Reject]) -> None:
        """send(), then empty `rejects`: a write retried after it does not send them again."""
        await self.send(rejects)
        rejects.clear()

    def _count(self, record: Record, err: InvalidEventError) -> None:
        """Metric and one log line: positions and reason codes, never keys or values."""
        self.rejected += 1
        metrics.EVENTS_REJECTED.labels(err.code).inc()
        log.warning(
            "rejected record %s[%d]@%d (%s): %s%s",
            record.topic,
            record.partition,
            record.offset,
            err.code,
            err.reason,
            " -> dead-letter topic" if self.producer is not None else "",
        )

    async def _deliver(
        self, producer: Producer, record: Record, err: InvalidEventError
    ) -> None:
        """The record itself, or a reference to it when it is too large to carry."""
        if record_size(record) <= self.max_payload:
            try:
                await self._produce(producer, record.value, record.key, full_headers(record, err))
                return
            except SIZE_ERRORS as exc:
                log.info("dead letter %s[%d]@%d too large (%s): sending a reference",
                         record.topic, record.partition, record.offset, type(exc).__name__)
        await self._produce(producer, reference(record, err), None, reference_headers(record, err))

    async def _produce(
        self,
        producer: Producer,
        value: bytes | None,
        key: bytes | None,
        headers: list[tuple[str, bytes]],
    ) -> None:
        sent = await producer.send(dead_letter_topic(self.topic), value, key=key, headers=headers)
        await sent


def record_size(record: Record) -> int:
    """Bytes the record would take again: key, value and original headers."""
    headers = sum(len(k) + len(v or b"") for k, v in record.headers or ())
    return len(record.key or b"") + len(record.value or b"") + headers


def dead_letter_headers(record: Record, err: InvalidEventError) -> list[tuple[str, bytes]]:
    """Why and where from: the original headers stay, these are added."""
    return [
        ("reason", err.reason.encode()),
        ("reason-code", err.code.encode()),
        ("source-topic", record.topic.encode()),
        ("source-partition", str(record.partition).encode()),
        ("source-offset", str(record.offset).encode()),
    ]


def full_headers(record: Record, err: InvalidEventError) -> list[tuple[str, bytes]]:
    return [*(record.headers or ()), *dead_letter_headers(record, err)]


def reference_headers(record: Record, err: InvalidEventError) -> list[tuple[str, bytes]]:
    """No original headers (they may be what is too large); `payload: omitted` marks it."""
    return [
        *dead_letter_headers(record, err),
        ("payload", b"omitted"),
        ("source-size", str(record_size(record)).encode()),
    ]


def reference(record: Record, err: InvalidEventError) -> bytes:
    """The value of a reference: where the record is and why it was rejected, no payload."""
    return orjson.dumps(
        {
            "reference": True,
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "reason-code": err.code,
            "reason": err.reason,
            "size": record_size(record),
        }
    )
