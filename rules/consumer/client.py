"""The consumer's Kafka client, configured in one place."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer

from rules.consumer.tuning import ConsumerTuning


def kafka_consumer(
    kwargs: dict[str, object], group: str | None, tuning: ConsumerTuning
) -> AIOKafkaConsumer:
    """No auto-commit: positions come from the store, commits are for lag tooling only.

    Metadata every few seconds: the group rebalances as soon as partitions are added."""
    return AIOKafkaConsumer(
        group_id=group, enable_auto_commit=False, auto_offset_reset="earliest",
        max_poll_records=tuning.max_records, client_id="denyproxy-consumer",
        metadata_max_age_ms=int(tuning.metadata_max_age * 1000), **kwargs,
    )
