"""A record placed by more partitions than we know: refresh the topic's count, then decide.

Partitions are only ever added, so a `partitions` header above the topic's count is no count the
record was placed by, unless our count lags (partitions added seconds ago, metadata not yet
refreshed). Such records are refused only after one metadata refresh per batch; a refresh that
fails raises a retriable error: nothing of the batch is applied or committed (fail closed).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaTimeoutError

from rules.consumer.steps import Checks, Decoded, Record, decode_all
from rules.events import PlacedAheadError
from rules.kafka import KafkaOptions, partition_ids

Refresh = Callable[[], Awaitable[int]]
"""The topic's partition count from fresh metadata (raises a retriable KafkaError if it cannot)."""


async def decode_current(records: list[Record], checks: Checks, refresh: Refresh) -> list[Decoded]:
    """Decode a batch; records placed ahead of `checks.partitions` are decoded again against
    the refreshed count (and refused if they are still ahead of it)."""
    decoded = await asyncio.to_thread(decode_all, records, checks)
    ahead = [i for i, d in enumerate(decoded) if isinstance(d, PlacedAheadError)]
    if not ahead:
        return decoded
    count = await refresh()
    if count <= checks.partitions:
        return decoded
    again = decode_all([records[i] for i in ahead], dataclasses.replace(checks, partitions=count))
    for i, item in zip(ahead, again, strict=True):
        decoded[i] = item
    return decoded


def consumer_refresh(kafka: AIOKafkaConsumer, topic: str, timeout: float) -> Refresh:
    """A refresh through the consumer's own client: its cached metadata is what lags."""

    async def refresh() -> int:
        try:  # aiokafka has no public call to refresh now (only metadata_max_age_ms)
            updated = await asyncio.wait_for(kafka._client.force_metadata_update(), timeout)
        except TimeoutError as exc:
            raise KafkaTimeoutError(f"metadata of {topic} not refreshed in {timeout}s") from exc
        ids = kafka.partitions_for_topic(topic) if updated else None
        if not ids:
            raise KafkaTimeoutError(f"metadata of {topic} could not be refreshed")
        return len(ids)

    return refresh


def admin_refresh(options: KafkaOptions, topic: str) -> Refresh:
    """A refresh by describing the topic (a rebuild's reader has no metadata of its own to keep)."""

    async def refresh() -> int:
        return len(await partition_ids(options, topic))

    return refresh
