"""Rebuild benchmark: N live rules after M events of churn, from the changelog vs the topic.

    python bench/rebuild.py --kafka 127.0.0.1:9092 --redis redis://127.0.0.1:6379/0 \
        --allow-flushall [--live 1000000 --churn 10000000]

(1) publishes `--live` emails to keep plus (churn - live) values added then removed, and lets a
RuleConsumer with the changelog apply them; (2) Redis memory per live rule and changelog bytes
per record; (3) a planned rebuild from the changelog and (4) one from the input topic, each
while lookups run as a proxy makes them (503 = the store refused; leak = a live value not
denied); (5) FLUSHALL, then the consumer's own rebuild (from the changelog, then the topic): 503
until done, never a leak.
It FLUSHALLs the Redis it is given (and uses its db 1): point it at a scratch instance.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.table import table
from rules.changelog import changelog_topic
from rules.consumer import ConsumerTuning, RuleConsumer
from rules.consumer.rebuild import RebuildPlan, rebuild
from rules.kafka import KafkaOptions, ensure_topic, partition_ids
from rules.model import DEFAULT_REGION, RuleType, chunks, tenant_of
from rules.publisher import RulePublisher
from rules.store import MirroredRedisStore, RedisStore, StoreNotInitialisedError

TUNING = ConsumerTuning(poll_timeout=0.1, check_interval=0.1)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kafka", required=True, help="bootstrap HOST:PORT")
    parser.add_argument("--redis", required=True, help="redis://HOST:PORT/0 (it is FLUSHALLed)")
    parser.add_argument("--live", type=int, default=1_000_000, help="rules live at the end")
    parser.add_argument("--churn", type=int, default=10_000_000, help="values published in all")
    parser.add_argument("--per-event", type=int, default=10_000)
    parser.add_argument("--allow-flushall", action="store_true", help="required")
    return parser.parse_args()


@dataclass
class Probe:
    """Lookups of live values, as a proxy makes them, while something else happens."""

    store: RedisStore
    tenant: str
    sample: list[str]
    answered: int = 0
    refused: int = 0
    leaked: int = 0

    async def run(self, done: asyncio.Event) -> None:
        while not done.is_set():
            try:
                hits = await self.store.lookup(self.tenant, {RuleType.EMAIL: self.sample})
            except StoreNotInitialisedError:
                self.refused += 1
            else:
                self.answered += 1
                self.leaked += len(self.sample) - len(hits.get(RuleType.EMAIL, ()))
            await asyncio.sleep(0.002)


async def during(probe: Probe, work: Callable[[], Awaitable[object]]) -> float:
    """Seconds `work` took while `probe` ran."""
    done = asyncio.Event()
    task = asyncio.create_task(probe.run(done))
    started = time.perf_counter()
    await work()
    took = time.perf_counter() - started
    done.set()
    await task
    return took


async def publish(args: argparse.Namespace, options: KafkaOptions, topic: str, tenant: str) -> int:
    """The live values, then churn: values added and removed again. Values published."""
    await ensure_topic(options, topic)
    sent = 0
    async with RulePublisher(options, topic, region=DEFAULT_REGION) as pub:
        live = [f"live{i}@acme.com" for i in range(args.live)]
        for part in chunks(live, args.per_event):
            await pub.send("add", tenant, "email", list(part))
            sent += len(part)
        gone, i = max(args.churn - args.live, 0) // 2, 0
        while i < gone:
            part = [f"gone{n}@acme.com" for n in range(i, min(i + args.per_event, gone))]
            await pub.send("add", tenant, "email", part)
            await pub.send("remove", tenant, "email", part)
            sent, i = sent + 2 * len(part), i + len(part)
        await (await pub.send("add", tenant, "email", live[:1]))
    return sent


async def changelog_bytes(options: KafkaOptions, topic: str) -> tuple[int, int]:
    """Records and bytes (key + value) in the changelog as read now (before compaction)."""
    consumer = AIOKafkaConsumer(enable_auto_commit=False, **options.client_kwargs())
    await consumer.start()
    try:
        name = changelog_topic(topic)
        tps = [TopicPartition(name, p) for p in await partition_ids(options, name)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends, count, size = await consumer.end_offsets(tps), 0, 0
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            for rs in (await consumer.getmany(timeout_ms=500, max_records=10_000)).values():
                count += len(rs)
                size += sum(len(r.key or b"") + len(r.value or b"") for r in rs)
        return count, size
    finally:
        await consumer.stop()


async def until_ready(store: MirroredRedisStore, consumer: RuleConsumer) -> None:
    while not (consumer.caught_up and await store.ready()):  # noqa: ASYNC110 - another task's state
        await asyncio.sleep(0.05)


@dataclass
class Loaded:
    """The store after ingest, with what was measured on the way."""

    options: KafkaOptions
    topic: str
    store: MirroredRedisStore
    consumer: RuleConsumer
    sent: int
    rows: list[list[str]]


async def load(args: argparse.Namespace, client: aioredis.Redis, tenant: str) -> Loaded:
    """(1) and (2): publish, ingest with the changelog, memory and changelog size."""
    options, topic = KafkaOptions(args.kafka), f"bench-rebuild-{uuid.uuid4().hex[:8]}"
    base = int((await client.info("memory"))["used_memory"])
    store = RedisStore.from_url(args.redis, timeout=30.0, topic=topic)
    sent = await publish(args, options, topic, tenant)
    consumer = RuleConsumer(options, topic, f"{topic}-g", store, "US", tuning=TUNING,
                            changelog=True)
    started = time.perf_counter()
    await consumer.start()
    await until_ready(store, consumer)
    ingest = time.perf_counter() - started
    per_rule = (int((await client.info("memory"))["used_memory"]) - base) / args.live
    records, size = await changelog_bytes(options, topic)
    rows = [
        ["ingest (consumer + changelog)", f"{sent:,} values", f"{ingest:.1f} s",
         f"{sent / ingest:,.0f} values/s"],
        ["Redis memory per live rule", f"{args.live:,} rules", f"{per_rule:,.0f} B",
         "sets + catalogue"],
        ["changelog bytes per record", f"{records:,} records", f"{size / max(records, 1):.0f} B",
         f"{size / args.live:.0f} B per live rule before compaction"],
    ]
    return Loaded(options, topic, store, consumer, sent, rows)


async def rebuilds(args: argparse.Namespace, loaded: Loaded, probe: Probe) -> list[list[str]]:
    """(3) and (4): planned rebuilds from the changelog and from the input topic."""
    rows = []
    for label, changelog, size in (("changelog", True, f"{args.live:,} live"),
                                   ("input topic", False, f"{loaded.sent:,} values")):
        plan = RebuildPlan(loaded.options, loaded.topic, args.redis, 1, "US",
                           from_changelog=changelog)
        probe.refused = probe.leaked = 0
        took = await during(probe, lambda plan=plan: show(rebuild(plan)))  # type: ignore[misc]
        rows.append([f"planned rebuild, {label}", size, f"{took:.2f} s",
                     f"503s {probe.refused}, leaks {probe.leaked}"])
    return rows


async def run(args: argparse.Namespace) -> list[list[str]]:
    tenant = tenant_of("bench-rebuild")
    client = aioredis.from_url(args.redis, decode_responses=True)
    await client.flushall()
    loaded = await load(args, client, tenant)
    sample = [f"live{i}@acme.com" for i in range(0, args.live, max(args.live // 20, 1))]
    reader = RedisStore.from_url(args.redis, timeout=30.0, feeder_topic=loaded.topic)
    probe = Probe(reader, tenant, sample)
    rows = loaded.rows + await rebuilds(args, loaded, probe)
    probe.refused = probe.leaked = 0
    await client.flushall()  # (5) the consumer notices and replays the input topic
    flushed = await during(probe, lambda: until_ready(loaded.store, loaded.consumer))
    rows.append(["after FLUSHALL (consumer: changelog, topic)", f"{loaded.sent:,} values",
                 f"{flushed:.2f} s", f"503s {probe.refused}, leaks {probe.leaked}"])
    await loaded.consumer.stop()
    for closing in (reader, loaded.store):
        await closing.aclose()
    await client.aclose()
    return rows


async def show(work: Awaitable[object]) -> None:
    """The rebuild's own report (phases) on stderr."""
    print(await work, file=sys.stderr)


def main() -> int:
    args = parse_args()
    if not args.allow_flushall:
        print("bench/rebuild.py FLUSHALLs --redis; pass --allow-flushall", file=sys.stderr)
        return 2
    rows = asyncio.run(run(args))
    print("\n".join(table(["step", "size", "time", "figures"], "lrrl", rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
