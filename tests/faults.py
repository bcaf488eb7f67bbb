"""What every Kafka fault test checks, written once: a ledger of what was published (the
expected final state, folded in publication order per tenant), poison records, the dead-letter
topic read to its end, and a watch that samples readiness and lag while a fault runs.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import RecordMetadata
from prometheus_client import REGISTRY

from rules.consumer import ConsumerTuning
from rules.events import key_of
from rules.kafka import KafkaOptions, dead_letter_topic, partition_ids
from rules.model import RuleType, tenant_of
from rules.publisher import RulePublisher
from rules.store import RuleWriter, StoreUnavailableError, rule_key

TUNING = ConsumerTuning(
    max_records=50, poll_timeout=0.1, check_interval=0.1, backoff=(0.05, 1.0), stall_after=120
)
POISON = b'{"v": 1, "op": "add", "tenant": "not json'


@dataclass
class Ledger:
    """Every event acknowledged by Kafka, and the state the store must end in."""

    state: dict[tuple[str, RuleType], set[str]] = field(default_factory=dict)
    ends: dict[int, int] = field(default_factory=dict)
    """Next offset after the last acknowledged record (events and poison), per partition."""
    events: list[RecordMetadata] = field(default_factory=list)
    poison: int = 0
    imported: int = 0
    """Events sent by an import (counted from its summary, folded in by the test)."""

    def fold(self, op: str, tenant: str, kind: RuleType, values: Sequence[str]) -> None:
        held = self.state.setdefault((tenant, kind), set())
        (held.update if op == "add" else held.difference_update)(values)

    def acked(self, meta: RecordMetadata, *, poison: bool = False) -> None:
        self.ends[meta.partition] = max(self.ends.get(meta.partition, 0), meta.offset + 1)
        if poison:
            self.poison += 1
        else:
            self.events.append(meta)


async def churn(
    pub: RulePublisher, ledger: Ledger, tenants: list[str], rounds: int, seed: int = 0
) -> None:
    """Adds and removes over a small pool of values per tenant: the final state depends on
    the order of every event of a tenant. Each event is folded in when it is sent (send order
    is partition order for the idempotent producer), counted when acknowledged."""
    rng = random.Random(seed)
    pending: list[asyncio.Future[RecordMetadata]] = []
    for _ in range(rounds):
        for tenant in tenants:
            op = rng.choice(("add", "add", "remove"))
            values = [f"v{rng.randrange(8)}@t{tenant[:6]}.io" for _ in range(rng.randint(1, 3))]
            pending.append(await pub.send(op, tenant, "email", values))  # type: ignore[arg-type]  # literal op
            ledger.fold(op, tenant, RuleType.EMAIL, values)
        for meta in await asyncio.gather(*pending):
            ledger.acked(meta)
        pending.clear()


async def poison(options: KafkaOptions, topic: str, ledger: Ledger, tenants: list[str]) -> None:
    """One undecodable record per tenant, on that tenant's partition (key kept)."""
    producer = AIOKafkaProducer(bootstrap_servers=options.bootstrap, acks="all")
    await producer.start()
    try:
        for tenant in tenants:
            ledger.acked(await producer.send_and_wait(topic, POISON, key=key_of(tenant)),
                         poison=True)
    finally:
        await producer.stop()


def new_tenants(count: int) -> list[str]:
    return [tenant_of(f"fault-{i}-{random.random()}") for i in range(count)]


async def assert_state(redis: aioredis.Redis, ledger: Ledger) -> None:
    """The store holds exactly what folding the published events in order gives."""
    wrong = []
    for (tenant, kind), expected in ledger.state.items():
        held = set(await redis.smembers(rule_key(tenant, kind)))
        if held != expected:
            wrong.append((tenant[:8], kind.value, len(held - expected), len(expected - held)))
    assert not wrong, f"(tenant, type, extra, missing) differ from the published order: {wrong}"


async def dead_letters(options: KafkaOptions, topic: str) -> list[bytes]:
    """Every record of the dead-letter topic, read to the end offsets seen now."""
    dlq = dead_letter_topic(topic)
    tps = [TopicPartition(dlq, p) for p in await partition_ids(options, dlq)]
    reader = AIOKafkaConsumer(bootstrap_servers=options.bootstrap, auto_offset_reset="earliest")
    await reader.start()
    try:
        reader.assign(tps)
        ends = await reader.end_offsets(tps)
        found: list[bytes] = []
        while [tp for tp, end in ends.items() if await reader.position(tp) < end]:
            for tp, records in (await reader.getmany(timeout_ms=500)).items():
                found += [r.value for r in records if r.offset < ends[tp]]
        return found
    finally:
        await reader.stop()


def lag_total() -> float:
    """Sum of denyproxy_consumer_lag over the partitions this process reports."""
    return sum(
        s.value
        for metric in REGISTRY.collect()
        if metric.name == "denyproxy_consumer_lag"
        for s in metric.samples
    )


@dataclass
class Watch:
    """Samples `ready()` and the lag while a fault runs: ready while the store is behind the
    offsets published before the consumer started is a lie; lag > 0 while behind is truth."""

    store: RuleWriter
    ready: Callable[[], Awaitable[bool]]
    lag: Callable[[], Awaitable[float]]
    targets: dict[int, int]
    lies: list[str] = field(default_factory=list)
    lag_seen_behind: bool = False
    samples: int = 0

    async def run(self) -> None:
        while True:
            ok = await self._safe(self.ready)
            try:
                mirrored = await self.store.offsets()
            except StoreUnavailableError:
                mirrored = {}
            behind = [p for p, end in self.targets.items() if mirrored.get(p, 0) < end]
            lag = await self.lag()
            if behind and ok:
                self.lies.append(f"ready while partitions {behind} were behind")
            self.lag_seen_behind |= bool(behind) and lag > 0
            self.samples += 1
            await asyncio.sleep(0.02)

    @staticmethod
    async def _safe(check: Callable[[], Awaitable[bool]]) -> bool:
        try:
            return await check()
        except Exception:
            return False
