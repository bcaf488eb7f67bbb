"""Poison records: to the dead-letter topic (when enabled), counted and logged, never retried.

Only records that cannot be decoded go here; a store that is down is retried instead.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaProducer
from aiokafka.structs import RecordMetadata

from rules import metrics
from rules.consumer.steps import Record
from rules.events import InvalidEventError
from rules.kafka import MAX_MESSAGE_BYTES, dead_letter_topic

log = logging.getLogger("rules.consumer")

Reject = tuple[Record, InvalidEventError]


class DeadLetters:
    """Sends rejects of `topic` to its dead-letter topic; a None producer only counts them."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.producer: AIOKafkaProducer | None = None
        self.rejected = 0

    async def start(self, kwargs: dict[str, object]) -> None:
        self.producer = dead_letter_producer(kwargs)
        await self.producer.start()

    async def stop(self) -> None:
        producer, self.producer = self.producer, None
        if producer is not None:
            await producer.stop()

    async def send(self, rejects: list[Reject]) -> None:
        """Produce every reject (acknowledged before the batch is applied), then count them."""
        if self.producer is not None and rejects:
            futures = [await self._send_one(self.producer, r, err) for r, err in rejects]
            await asyncio.gather(*futures)
        for record, err in rejects:
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

    async def _send_one(
        self, producer: AIOKafkaProducer, record: Record, err: InvalidEventError
    ) -> asyncio.Future[RecordMetadata]:
        headers = [*(record.headers or ()), *dead_letter_headers(record, err)]
        future: asyncio.Future[RecordMetadata] = await producer.send(
            dead_letter_topic(self.topic), record.value, key=record.key, headers=headers
        )
        return future


def dead_letter_headers(record: Record, err: InvalidEventError) -> list[tuple[str, bytes]]:
    """Why and where from: the original headers stay, these are added."""
    return [
        ("reason", err.reason.encode()),
        ("reason-code", err.code.encode()),
        ("source-topic", record.topic.encode()),
        ("source-partition", str(record.partition).encode()),
        ("source-offset", str(record.offset).encode()),
    ]


def dead_letter_producer(kwargs: dict[str, object]) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        acks="all",
        enable_idempotence=True,
        compression_type="gzip",
        max_request_size=MAX_MESSAGE_BYTES,
        client_id="denyproxy-dead-letter",
        **kwargs,
    )
