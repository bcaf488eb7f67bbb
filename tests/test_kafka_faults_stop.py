"""A group member stopped while a write is in flight (the flaky counts of test_kafka_faults.py's
rebalance test). A store write that landed is never applied again by the next owner of its
partitions (it starts after it): unless the stopping member waits for it and counts it, no
member counts those events. A dead letter acknowledged before its slice's write: unless the
write follows, the next owner reads the poison record again and dead-letters it twice.
Real broker, real Redis; a stop gives up partitions as a revocation does (assignment.py).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence

import pytest
import redis.asyncio as aioredis

from rules.consumer import RuleConsumer
from rules.consumer.dead_letter import DeadLetters, Reject
from rules.kafka import KafkaOptions, ensure_topic
from rules.model import DEFAULT_REGION, Change, RuleType, tenant_of
from rules.publisher import RulePublisher
from rules.store import RedisStore, rule_key
from tests.faults import POISON, TUNING, Ledger, dead_letters, poison
from tests.harness import eventually

pytestmark = [pytest.mark.timeout(120)]


@pytest.fixture
def topic() -> str:
    return f"stop-{uuid.uuid4().hex[:12]}"


class HeldAfterWrite(RuleConsumer):
    """Its first write reaches Redis, then the reply is held until `release` is set, as a
    slow round trip on a loaded box holds it; notes whether stop() cancelled it there."""

    def __init__(self, options: KafkaOptions, topic: str, store: RedisStore) -> None:
        super().__init__(options, topic, f"{topic}-g", store, "US", tuning=TUNING)
        self.landed, self.release = asyncio.Event(), asyncio.Event()
        self.cancelled_after_landing = False

    async def write(self, changes: Sequence[Change], offsets: Mapping[int, int]) -> bool:
        fresh = await super().write(changes, offsets)
        if self.landed.is_set():
            return fresh
        self.landed.set()
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled_after_landing = True
            raise
        return fresh


@pytest.fixture
async def publisher(kafka_bootstrap: str, topic: str) -> AsyncIterator[RulePublisher]:
    options = KafkaOptions(kafka_bootstrap)
    await ensure_topic(options, topic)
    async with RulePublisher(options, topic, region=DEFAULT_REGION) as pub:
        yield pub


async def test_a_member_stopped_during_a_landed_write_counts_it_and_no_event_is_lost(
    kafka_bootstrap: str, topic: str, store: RedisStore, redis: aioredis.Redis,
    publisher: RulePublisher,
) -> None:
    options = KafkaOptions(kafka_bootstrap)
    tenants = [tenant_of(f"stop-{i}-{uuid.uuid4()}") for i in range(8)]
    metas = [await publisher.publish("add", t, "email", [f"r{r}@stop.example"])
             for r in range(20) for t in tenants]  # 160 events: several batches of 50
    first = HeldAfterWrite(options, topic, store)
    second = RuleConsumer(options, topic, f"{topic}-g", store, "US", tuning=TUNING)
    try:
        await first.start()
        await asyncio.wait_for(first.landed.wait(), 60)
        stopping = asyncio.create_task(first.stop())
        # stop() has either cancelled the held write or is waiting for it (assignment revoked)
        await eventually(lambda: first.cancelled_after_landing or first._slots().current is None,
                         "stop() to reach the write in flight")
        first.release.set()
        await stopping
        assert not first.cancelled_after_landing, "stop() cancelled a write that had landed"
        assert 0 < first.applied_events < len(metas), "stopped in the middle of the load"

        await second.start()

        async def applied() -> bool:
            mirrored = await store.offsets()
            return all(mirrored.get(m.partition, 0) > m.offset for m in metas)

        await eventually(applied, "the second member to apply the rest", timeout=60)
        await eventually(lambda: second.caught_up, "the second member caught up")
    finally:
        first.release.set()
        await first.stop()
        await second.stop()
    assert first.applied_events + second.applied_events == len(metas), "each counted once"
    for t in tenants:
        held = await redis.smembers(rule_key(t, RuleType.EMAIL))
        assert held == {f"r{r}@stop.example" for r in range(20)}, "no event lost"


class HeldDeadLetters(DeadLetters):
    """The first dead letter is acknowledged, then held until `release` (a slow ack)."""

    def __init__(self, topic: str) -> None:
        super().__init__(topic)
        self.sent, self.release = asyncio.Event(), asyncio.Event()

    async def send(self, rejects: list[Reject]) -> None:
        await super().send(rejects)
        if rejects and not self.sent.is_set():
            self.sent.set()
            await self.release.wait()


async def test_a_member_stopped_after_a_dead_letter_writes_its_slice_so_it_is_sent_once(
    kafka_bootstrap: str, topic: str, store: RedisStore, publisher: RulePublisher,
) -> None:
    options, ledger = KafkaOptions(kafka_bootstrap), Ledger()
    tenants = [tenant_of(f"dlq-{i}-{uuid.uuid4()}") for i in range(4)]
    await poison(options, topic, ledger, tenants)  # first on each tenant's partition
    metas = [await publisher.publish("add", t, "email", [f"r{r}@dlq.example"])
             for r in range(20) for t in tenants]
    first = RuleConsumer(options, topic, f"{topic}-g", store, "US", tuning=TUNING)
    held = first.dead_letters = HeldDeadLetters(topic)
    second = RuleConsumer(options, topic, f"{topic}-g", store, "US", tuning=TUNING)
    try:
        await first.start()
        await asyncio.wait_for(held.sent.wait(), 60)
        stopping = asyncio.create_task(first.stop())
        await eventually(lambda: stopping.done() or first._slots().current is None,
                         "stop() to reach the dead letter in flight")
        held.release.set()
        await stopping
        await second.start()

        async def applied() -> bool:
            mirrored = await store.offsets()
            return all(mirrored.get(m.partition, 0) > m.offset for m in metas)

        await eventually(applied, "the second member to apply the rest", timeout=60)
    finally:
        held.release.set()
        await first.stop()
        await second.stop()
    assert first.applied_events + second.applied_events == len(metas)
    assert await dead_letters(options, topic) == [POISON] * ledger.poison, "each sent once"
