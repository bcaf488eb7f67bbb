"""`denyproxy rebuild`: the next generation from the changelog, then from the input topic, then
switched in atomically while the current one keeps serving (rules/store/generation.py).

Reading the changelog costs the live rules, not the history; the input topic is read only
from the offsets the changelog recorded. Values are normalised again with the current
normaliser: a rule whose normal form changed is restored under the new form, and the
changelog gets a tombstone for the old key and the record under the new one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from rules import normalize
from rules.changelog import (
    ChangelogWriter,
    Entry,
    RuleRecord,
    ensure_changelog,
    overdue,
    read_changelog,
)
from rules.consumer.claims import refuse_foreign
from rules.consumer.placement import admin_refresh, decode_current
from rules.consumer.steps import Checks, Record, slices
from rules.kafka import KafkaOptions, partition_ids
from rules.lists.snapshot import lists_in, restore_lists
from rules.scopes import list_scope
from rules.store import generation
from rules.store.keys import normaliser_key
from rules.store.mirrored import MirroredRedisStore
from rules.store.redis_connection import connect
from rules.store.snapshot import records_in, restore

log = logging.getLogger("rules.consumer")


@dataclass(slots=True)
class RebuildReport:
    """What a rebuild did; printed by the CLI, read by bench/rebuild.py."""

    generation: str = ""
    restored: int = 0
    """Rules restored from the changelog."""
    lists: int = 0
    """Named lists (metadata and assignments) restored from the changelog."""
    replayed: int = 0
    """Input records read after the changelog's offsets."""
    renamed: int = 0
    dropped: int = 0
    """Changelog values the current normaliser writes differently / no longer accepts."""
    attempts: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    def __str__(self) -> str:
        took = ", ".join(f"{k} {v:.2f} s" for k, v in self.seconds.items())
        return (f"generation {self.generation}: {self.restored} rules from the changelog, "
                f"{self.lists} lists, {self.replayed} input records, {self.renamed} renormalised, "
                f"{self.dropped} dropped; switched after {self.attempts} attempt(s) ({took})")


@dataclass(frozen=True, slots=True)
class RebuildPlan:
    """Where to rebuild from and into."""

    options: KafkaOptions
    topic: str
    redis_url: str
    db: int = 1
    region: str = "US"
    from_changelog: bool = True
    seed_changelog: bool = False
    """Write every rule of the new generation to the changelog before the switch: how a
    changelog starts (with the consumer stopped, so that nothing newer can be overwritten)."""
    timeout: float = 60.0
    """Redis client timeout, s."""
    wait: float = 600.0
    """Bound on each wait, s: reading the changelog or the input topic to an end offset, and
    the switch waiting for the consumer; past it the rebuild fails saying which."""


async def rebuild(plan: RebuildPlan) -> RebuildReport:
    """Fill database `plan.db`, switch it with db 0, delete the old generation."""
    report, started = RebuildReport(), time.monotonic()
    live = connect(plan.redis_url, timeout=plan.timeout)
    target = connect(generation.with_db(plan.redis_url, plan.db), timeout=plan.timeout)
    try:
        report.generation = await generation.prepare(live, target)
        store = MirroredRedisStore(target, plan.topic)
        await store.fence()
        if plan.from_changelog:
            await _from_changelog(plan, store, report)
        report.seconds["changelog"] = time.monotonic() - started
        await target.set(normaliser_key(), generation.NORMALISER_VERSION)
        replayer = Replayer(plan, store, report)
        if plan.seed_changelog:
            await replayer.to(await generation.offsets(live, plan.topic))
            await _seed(plan, target)
        report.attempts = await generation.switch(
            live, target, plan.db, plan.topic, replayer.to, timeout=plan.wait
        )
        report.seconds["total"] = time.monotonic() - started
        await generation.drop_old(target)
    finally:
        await live.aclose()
        await target.aclose()
    log.info("rule store rebuilt: %s", report)
    return report


async def _from_changelog(
    plan: RebuildPlan, store: MirroredRedisStore, report: RebuildReport
) -> None:
    offsets: dict[int, int] = {}
    fixes: list[Entry] = []
    for part in await read_changelog(plan.options, plan.topic, within=plan.wait):
        records = list(renormalised(part.rules.values(), plan.region, fixes, report))
        lists = [list_scope(r.list_id) for r in part.lists.values()]
        await store.claim([r.scope for r in records] + lists)  # claims move with the switch
        report.restored += await restore(store.client, records)
        report.lists += await restore_lists(store.client, part.lists.values())
        offsets.update(part.offsets)
    if fixes:
        writer = ChangelogWriter(plan.options, plan.topic)
        await writer.start()
        try:
            await writer.write(fixes, {})
        finally:
            await writer.stop()
    await store.apply([], offsets)


async def _seed(plan: RebuildPlan, target: aioredis.Redis) -> None:
    """Every rule of the new generation, then its offsets, to the changelog."""
    partitions = len(await partition_ids(plan.options, plan.topic))
    writer = ChangelogWriter(plan.options, plan.topic)
    await ensure_changelog(plan.options, plan.topic, partitions)
    await writer.start()
    try:
        async for chunk in records_in(target, partitions):
            await writer.write(chunk, {})
        await writer.write(await lists_in(target, partitions), {})
        await writer.write([], await generation.offsets(target, plan.topic))
    finally:
        await writer.stop()


def renormalised(
    records: Iterable[RuleRecord], region: str, fixes: list[Entry], report: RebuildReport
) -> Iterable[RuleRecord]:
    """Each record in the current normaliser's form; changed keys are noted in `fixes`."""
    for record in records:
        value = normalize.for_type(record.type, region, allow_freemail=True)(record.value)
        if value == record.value:
            yield record
            continue
        fixes.append((record.key, None))
        if value is None:
            report.dropped += 1
            continue
        report.renamed += 1
        moved = replace(record, value=value)
        fixes.append((moved.key, moved))
        yield moved


class Replayer:
    """Reads the input topic into the new generation up to exactly the offsets asked for."""

    def __init__(self, plan: RebuildPlan, store: MirroredRedisStore, report: RebuildReport) -> None:
        self.plan, self.store, self.report = plan, store, report

    async def to(self, wanted: dict[int, int]) -> None:
        have = await self.store.offsets()
        todo = {p: o for p, o in wanted.items() if have.get(p, -1) < o}
        partitions = len(await partition_ids(self.plan.options, self.plan.topic))
        consumer = AIOKafkaConsumer(enable_auto_commit=False, **self.plan.options.client_kwargs())
        await consumer.start()
        try:
            await self._read(consumer, have, todo, Checks(self.plan.region, partitions))
        finally:
            await consumer.stop()
        await self.store.apply([], todo)

    async def _read(
        self, consumer: AIOKafkaConsumer, have: dict[int, int], todo: dict[int, int],
        checks: Checks,
    ) -> None:
        tps = {p: TopicPartition(self.plan.topic, p) for p in todo}
        consumer.assign(list(tps.values()))
        begin = await consumer.beginning_offsets(list(tps.values()))
        for p, tp in tps.items():
            consumer.seek(tp, max(have.get(p, 0), begin[tp]))
        deadline = time.monotonic() + self.plan.wait
        while behind := [p for p, tp in tps.items() if await consumer.position(tp) < todo[p]]:
            overdue(deadline, f"input topic {self.plan.topic} partitions {behind}")
            batch = await consumer.getmany(timeout_ms=500, max_records=2_000)
            records: list[Record] = [
                r for rs in batch.values() for r in rs if r.offset < todo[r.partition]
            ]
            refresh = admin_refresh(self.plan.options, self.plan.topic)
            for part in slices(records, await decode_current(records, checks, refresh), 100_000):
                await refuse_foreign(self.store, part)  # claims in the new generation too
                await self.store.apply(part.changes, part.offsets)
            self.report.replayed += len(records)


async def renormalise_if_needed(plan: RebuildPlan) -> RebuildReport | None:
    """At start-up: a store normalised by another normaliser version is rebuilt (planned: the
    current generation serves meanwhile); one without a version gets this one recorded."""
    live = connect(plan.redis_url, timeout=plan.timeout)
    try:
        changed = await generation.normaliser_changed(live, generation.NORMALISER_VERSION)
    finally:
        await live.aclose()
    if not changed:
        return None
    log.warning("rule store normalised by another normaliser version: planned rebuild")
    return await rebuild(plan)
