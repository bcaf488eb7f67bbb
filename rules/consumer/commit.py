"""The last step: commit to Kafka what the store already holds (advisory, for lag tooling)."""

from __future__ import annotations

import logging

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from aiokafka.structs import TopicPartition

from rules.consumer.errors import describe

log = logging.getLogger("rules.consumer")


async def commit(kafka: AIOKafkaConsumer, topic: str, offsets: dict[int, int]) -> None:
    """Commit the offsets of partitions still assigned; positions come from the store, so a
    failed commit is logged, never retried."""
    assigned = kafka.assignment()
    mine = {TopicPartition(topic, p): o for p, o in offsets.items()}
    mine = {tp: o for tp, o in mine.items() if tp in assigned}
    if not mine:
        return
    try:
        await kafka.commit(mine)
    except (CommitFailedError, IllegalStateError) as exc:
        log.info("commit skipped after a rebalance: %s", describe(exc))
    except KafkaError as exc:
        log.warning("commit failed (%s); the store's offsets stay authoritative", describe(exc))
