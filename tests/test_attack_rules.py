"""Adversarial review of the rule side (issues 10 and 17), against the real broker and Redis.

Each test tries one way an opt-out could be lost, silently changed, or applied out of order,
beyond the cases the issues list. An `xfail(strict=True)` test demonstrates a weakness that is
still open (its reason says which); the others hold.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

import orjson
import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions

from rules.consumer import ConsumerTuning, RuleConsumer
from rules.csvrows import SPANS_LINES
from rules.events import key_of, partition_of
from rules.importer import ImportSpec, import_csv
from rules.kafka import KafkaOptions, dead_letter_topic, ensure_topic
from rules.model import Op, RuleChange, RuleType, tenant_of
from rules.publisher import RulePublisher
from rules.store import (
    Limits,
    RedisStore,
    StoreFedByKafkaError,
    StoreUnavailableError,
    TooManyRulesError,
    rule_key,
)
from tests import test_consumer as base
from tests.harness import eventually as wait_for
from tests.test_consumer import FAST, members, read_all, sample, start, wait_applied

options, topic = base.options, base.topic
publisher, running = base.publisher, base.running

Headers = list[tuple[str, bytes]]


def raw_event(tenant: str, op: str = "add", values: Sequence[object] = ("ok@x.io",),
              **extra: object) -> dict[str, object]:
    return {"v": 1, "op": op, "tenant": tenant, "type": "email", "values": list(values),
            "id": str(uuid.uuid4()), "ts": "2026-11-25T10:00:00Z", **extra}


async def produce(
    bootstrap: str, topic: str, records: Sequence[tuple[bytes | None, bytes | None, Headers]]
) -> None:
    """(key, value, headers) records with the default (murmur2) partitioner, in order."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for key, value, headers in records:
            await producer.send_and_wait(topic, value, key=key, headers=headers)
    finally:
        await producer.stop()


# --- the wire format -----------------------------------------------------------------------


async def test_an_event_with_a_repeated_field_is_dead_lettered_not_read_last_wins(
    options: KafkaOptions, topic: str, store: RedisStore, publisher: RulePublisher,
    redis: aioredis.Redis, running: list[RuleConsumer],
) -> None:
    """`"op":"add","op":"remove"`: orjson keeps the last, Jackson/others may keep the first.

    An event that means two things must not be applied as either (fixed: reason `json`).
    """
    tenant = tenant_of(str(uuid.uuid4()))
    first = await publisher.publish("add", tenant, "email", ["keep@x.io", "also@x.io"])
    body = orjson.dumps(raw_event(tenant, "add", ["keep@x.io"])).decode()
    twice_op = body.replace('"op":"add"', '"op":"add","op":"remove"').encode()
    body = orjson.dumps(raw_event(tenant, "remove", ["also@x.io"])).decode()
    twice_values = body.replace('"values":', '"values":["other@x.io"],"values":').encode()
    await produce(options.bootstrap, topic,
                  [(key_of(tenant), twice_op, []), (key_of(tenant), twice_values, [])])
    last = await publisher.publish("add", tenant, "email", ["last@x.io"])

    consumer = await start(running, options, topic, store)
    await wait_applied(store, [first, last])
    assert await members(redis, tenant, RuleType.EMAIL) == {"keep@x.io", "also@x.io", "last@x.io"}
    assert consumer.rejected_events == 2
    dead = await read_all(options.bootstrap, dead_letter_topic(topic), 2)
    assert [h["reason-code"] for h in dead] == ["json", "json"]
    assert all("repeated field" in h["reason"] for h in dead)


async def test_records_that_are_not_events_are_dead_lettered_and_later_ones_applied(
    options: KafkaOptions, topic: str, store: RedisStore, publisher: RulePublisher,
    redis: aioredis.Redis, running: list[RuleConsumer],
) -> None:
    """Null key, tombstone, headers only, key ≠ tenant, upper-case tenant, bad region, `v` as
    a string, non-string values, NaN, a lone surrogate: each a dead letter, none a crash."""
    tenant, other = tenant_of(str(uuid.uuid4())), tenant_of(str(uuid.uuid4()))
    key = key_of(tenant)
    upper = tenant.upper()

    def ev(**kw: object) -> bytes:
        return orjson.dumps(raw_event(tenant, **kw))  # type: ignore[arg-type]

    nan = ev().replace(b'"v":1', b'"v":NaN')
    surrogate = ev().replace(b"ok@x.io", b"\\ud800ok@x.io")
    poison: list[tuple[bytes | None, bytes | None, Headers, str]] = [
        (None, ev(), [], "key"),
        (key, None, [], "json"),
        (key, None, [("h", b"only headers")], "json"),
        (key_of(other), ev(), [], "key"),
        (upper.encode(), orjson.dumps(raw_event(upper)), [], "schema"),
        (key, ev(region="fr"), [], "schema"),
        (key, ev(region="ZZ"), [], "schema"),
        (key, ev(v="1"), [], "schema"),
        (key, ev(values=[4155550100]), [], "values"),
        (key, ev(values=[["ok@x.io"]]), [], "values"),
        (key, nan, [], "json"),
        (key, surrogate, [], "json"),
    ]
    await produce(options.bootstrap, topic, [(k, v, h) for k, v, h, _ in poison])
    good = await publisher.publish("add", tenant, "email", ["good@x.io"])

    consumer = await start(running, options, topic, store)
    await wait_applied(store, [good])
    assert await members(redis, tenant, RuleType.EMAIL) == {"good@x.io"}
    assert await members(redis, other, RuleType.EMAIL) == set()
    dead = await read_all(options.bootstrap, dead_letter_topic(topic), len(poison))
    assert sorted(h["reason-code"] for h in dead) == sorted(code for *_, code in poison)
    # the store passing `good` comes before the loop's next turn marks it complete
    await wait_for(lambda: consumer.caught_up, "the consumer to mark the store complete")
    assert consumer.healthy


async def test_case_collisions_and_add_remove_add_in_one_batch_keep_publish_order(
    options: KafkaOptions, topic: str, store: RedisStore, publisher: RulePublisher,
    redis: aioredis.Redis, running: list[RuleConsumer],
) -> None:
    """Spellings of one value across events of one batch act in publish order, by normal form."""
    tenant = tenant_of(str(uuid.uuid4()))
    steps: list[tuple[Op, str, list[str]]] = [
        ("add", "email", ["A@X.io"]),
        ("remove", "email", ["a@x.io"]),  # removes what `A@X.io` added
        ("add", "email", ["b@x.io", "B@X.IO", "mailto:b@x.io"]),  # one value, three spellings
        ("add", "phone", ["+1 415 555 0100"]),
        ("remove", "phone", ["(415) 555-0100"]),
        ("add", "phone", ["tel:+14155550100"]),
        ("add", "linkedin", ["https://www.linkedin.com/in/Jane-Doe/"]),
        ("remove", "linkedin", ["linkedin.com/in/jane-doe"]),
        ("add", "domain", ["Acme.com"]),
        ("remove", "domain", ["acme.com."]),
        ("add", "domain", ["https://acme.com"]),
    ]
    # all buffered before the consumer starts: one fetch, one batch
    sent = [await publisher.send(op, tenant, kind, values) for op, kind, values in steps]
    metas = await asyncio.gather(*sent)
    assert len({m.partition for m in metas}) == 1
    await start(running, options, topic, store)
    await wait_applied(store, metas)
    assert await members(redis, tenant, RuleType.EMAIL) == {"b@x.io"}
    assert await members(redis, tenant, RuleType.PHONE) == {"+14155550100"}
    assert await members(redis, tenant, RuleType.LINKEDIN) == set()
    assert await members(redis, tenant, RuleType.DOMAIN) == {"acme.com"}


# --- crashes at random points ----------------------------------------------------------------


class Killed(Exception):
    """The process died at a point chosen by the test."""


class DiesAtRandom(RuleConsumer):
    """Dies at write number `at`: before it, halfway (rules without offsets) or after it."""

    at = 1
    how = "after"
    writes = 0

    async def write(self, changes: Sequence[RuleChange], offsets: Mapping[int, int]) -> bool:
        self.writes += 1
        if self.writes < self.at:
            return await super().write(changes, offsets)
        if self.how == "halfway":
            await self.store.apply(changes)
        elif self.how == "after":
            await super().write(changes, offsets)
        raise Killed(self.how)


async def test_deaths_at_random_points_end_in_the_state_of_the_publish_order(
    options: KafkaOptions, topic: str, store: RedisStore, publisher: RulePublisher,
    redis: aioredis.Redis, running: list[RuleConsumer],
) -> None:
    rng = random.Random(1717)
    tenants = [tenant_of(f"crash-{i}-{uuid.uuid4()}") for i in range(4)]
    pool = [f"v{i}@x.io" for i in range(6)]
    expected: dict[str, set[str]] = {t: set() for t in tenants}
    sent = []
    for _ in range(60):
        tenant, op = rng.choice(tenants), rng.choice(("add", "remove"))
        values = rng.sample(pool, rng.randint(1, 3))
        (expected[tenant].update if op == "add" else expected[tenant].difference_update)(values)
        sent.append(await publisher.send(op, tenant, "email", values))  # type: ignore[arg-type]
    metas = await asyncio.gather(*sent)
    small = ConsumerTuning(poll_timeout=0.1, check_interval=0.1, backoff=(0.05, 0.5),
                           max_records=3, max_values_per_write=4)
    for _ in range(6):
        DiesAtRandom.at, DiesAtRandom.how = rng.randint(1, 5), rng.choice(
            ("before", "halfway", "after"))
        doomed = await start(running, options, topic, store, kind=DiesAtRandom, tuning=small)
        with pytest.raises(Killed):
            await asyncio.wait_for(doomed.wait(), 30)
        await doomed.stop()
    survivor = await start(running, options, topic, store, tuning=small)
    await wait_applied(store, metas)
    await wait_for(lambda: survivor.caught_up, "catch-up")
    assert {t: await members(redis, t, RuleType.EMAIL) for t in tenants} == expected


# --- the topic changes under the consumer -----------------------------------------------------


def tenant_moved_by(old: int, new: int) -> str:
    """A tenant whose key maps to a different partition once the topic has `new` partitions."""
    while True:
        tenant = tenant_of(str(uuid.uuid4()))
        if partition_of(key_of(tenant), old) != partition_of(key_of(tenant), new):
            return tenant


async def add_partitions(bootstrap: str, topic: str, count: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_partitions({topic: NewPartitions(total_count=count)})
    finally:
        await admin.close()


async def test_a_rebuild_after_partitions_were_added_keeps_every_rule(
    options: KafkaOptions, topic: str, store: RedisStore,
    redis: aioredis.Redis, running: list[RuleConsumer],
) -> None:
    """The record names the partition count it was placed by: partition 0 or 1 of 2 stays its
    key's partition under that count once the topic has 4 (the `publisher` fixture is not
    used: it would create the topic with 4 partitions first)."""
    await ensure_topic(options, topic, 2)
    tenant = tenant_moved_by(2, 4)
    async with RulePublisher(options, topic, region="US") as publisher:
        old = await publisher.publish("add", tenant, "email", ["before@x.io"])
    await add_partitions(options.bootstrap, topic, 4)
    rejected = sample("denyproxy_rule_events_rejected_total", reason="partition")
    consumer = await start(running, options, topic, store)  # an empty store: the rebuild
    await wait_applied(store, [old])
    await wait_for(lambda: consumer.caught_up, "catch-up")
    assert sample("denyproxy_rule_events_rejected_total", reason="partition") == rejected
    assert await members(redis, tenant, RuleType.EMAIL) == {"before@x.io"}


@pytest.mark.parametrize("group", ["g", None], ids=["group", "no-group"])
async def test_an_event_in_a_partition_added_while_running_is_applied_within_seconds(
    options: KafkaOptions, topic: str, store: RedisStore,
    redis: aioredis.Redis, running: list[RuleConsumer], group: str | None,
) -> None:
    """Metadata is refreshed every few seconds (ConsumerTuning.metadata_max_age, not aiokafka's
    5 minutes): a group rebalances onto the new partitions, a consumer without one assigns them."""
    await ensure_topic(options, topic, 1)
    consumer = await start(running, options, topic, store, group=group)
    await wait_for(lambda: consumer.caught_up, "catch-up")
    await add_partitions(options.bootstrap, topic, 4)
    tenant = tenant_moved_by(1, 4)
    async with RulePublisher(options, topic, region="US") as fresh:  # sees 4 partitions
        meta = await fresh.publish("add", tenant, "email", ["after@x.io"])
    assert meta.partition != 0

    async def applied() -> bool:
        return "after@x.io" in await members(redis, tenant, RuleType.EMAIL)

    await wait_for(applied, "the new partition's event", 15)
    assert consumer.caught_up


@pytest.mark.parametrize("group", ["g", None], ids=["group", "no-group"])
async def test_a_record_placed_by_partitions_added_after_our_metadata_is_applied(
    options: KafkaOptions, topic: str, store: RedisStore,
    redis: aioredis.Redis, running: list[RuleConsumer], group: str | None,
) -> None:
    """Metadata refreshed only on demand (metadata_max_age 5 minutes): the consumer still knows
    4 partitions when a record placed by 5 reaches a partition it reads. A header above its
    count is refused only after a refresh of the count, which finds 5: applied, no dead letter."""
    await ensure_topic(options, topic, 4)
    lagging = dataclasses.replace(FAST, metadata_max_age=300.0)
    consumer = await start(running, options, topic, store, group=group, tuning=lagging)
    await wait_for(lambda: consumer.caught_up, "catch-up")
    await add_partitions(options.bootstrap, topic, 5)
    tenant = next(t for t in (tenant_moved_by(4, 5) for _ in range(1000))
                  if partition_of(key_of(t), 5) < 4)
    known = consumer._kafka().partitions_for_topic(topic)
    assert known == {0, 1, 2, 3}, "the consumer's metadata was refreshed before the record"
    rejected = sample("denyproxy_rule_events_rejected_total", reason="partition")
    async with RulePublisher(options, topic, region="US") as fresh:  # sees 5 partitions
        meta = await fresh.publish("add", tenant, "email", ["placed@x.io"])
    assert meta.partition == partition_of(key_of(tenant), 5) != partition_of(key_of(tenant), 4)

    async def applied() -> bool:
        return "placed@x.io" in await members(redis, tenant, RuleType.EMAIL)

    await wait_for(applied, "the record placed by 5 partitions", 15)
    assert sample("denyproxy_rule_events_rejected_total", reason="partition") == rejected
    assert len(consumer._kafka().partitions_for_topic(topic) or ()) == 5


# --- the deny-rules API's limits -------------------------------------------------------------


async def test_two_concurrent_direct_writes_cannot_both_pass_the_rule_limit(
    redis_url: str, redis: aioredis.Redis,
) -> None:
    store = RedisStore.from_url(redis_url, timeout=5.0)
    tenant = tenant_of(str(uuid.uuid4()))
    try:
        await redis.set("denyproxy:{state}:initialised", "1")
        limits = Limits(max_rules=150, writes_per_minute=100)
        changes = [RuleChange("add", tenant, RuleType.EMAIL,
                              tuple(f"{side}{i}@x.io" for i in range(100))) for side in "ab"]
        results = await asyncio.gather(*(store.write(c, limits) for c in changes),
                                       return_exceptions=True)
        assert sorted(type(r).__name__ for r in results) == ["NoneType", "TooManyRulesError"]
        assert await redis.scard(rule_key(tenant, RuleType.EMAIL)) == 100
    finally:
        await store.aclose()


async def test_two_concurrent_admitted_writes_cannot_both_pass_the_rule_limit(
    redis_url: str,
) -> None:
    store = RedisStore.from_url(redis_url, timeout=5.0)
    tenant = tenant_of(str(uuid.uuid4()))
    try:
        limits = Limits(max_rules=150, writes_per_minute=100)
        changes = [RuleChange("add", tenant, RuleType.EMAIL,
                              tuple(f"{side}{i}@x.io" for i in range(100))) for side in "ab"]
        results = await asyncio.gather(*(store.admit(c, limits) for c in changes),
                                       return_exceptions=True)
        assert any(isinstance(r, TooManyRulesError) for r in results)
    finally:
        await store.aclose()


# --- CSV import ------------------------------------------------------------------------------


class Collect:
    """What an import would publish (the publishing itself is tested in test_import.py)."""

    def __init__(self) -> None:
        self.values: list[str] = []

    async def send_normalised(
        self, op: str, tenant: str, rule_type: RuleType, values: list[str], meta: object = None
    ) -> asyncio.Future[None]:
        self.values += values
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


async def imported(tmp_path: Path, data: bytes, **kw: object) -> tuple[list[str], str]:
    path = tmp_path / "list.csv"
    path.write_bytes(data)
    sink = Collect()
    await import_csv(ImportSpec(path, "*", "US", rule_type=RuleType.EMAIL, **kw), sink)  # type: ignore[arg-type]
    rejected = path.with_name("list.csv.rejected.csv")
    return sink.values, rejected.read_text() if rejected.exists() else ""


@pytest.mark.parametrize(
    ("data", "values", "rejects"),
    [
        (b"a@x.io\r\nb@x.io\r\n", ["a@x.io", "b@x.io"], ""),
        (b"a@x.io\rb@x.io\r", ["a@x.io", "b@x.io"], ""),
        (b"", [], ""),
        (b"email@x.io\nb@x.io\n", ["email@x.io", "b@x.io"], ""),  # a header that is an email
        (bytes(range(256)) * 4, [], "line,reason"),  # not a CSV at all: nothing published
        ("email\na@x.io\n".encode("utf-16"), [], "not valid UTF-8"),
    ],
    ids=["crlf", "cr-only", "empty", "email-header", "binary", "utf-16"],
)
async def test_import_reads_every_line_ending_and_publishes_nothing_from_non_text(
    tmp_path: Path, data: bytes, values: list[str], rejects: str
) -> None:
    got, rejected = await imported(tmp_path, data)
    assert got == values
    assert rejects in rejected


async def test_an_unclosed_quote_is_reported_as_swallowing_lines_not_as_a_bad_email(
    tmp_path: Path,
) -> None:
    """One stray `"` takes every later line into one cell: the operator must be told that,
    not "1 row: not a valid email" (fixed: its own reason)."""
    got, rejected = await imported(tmp_path, b'a@x.io\n"b@x.io\nc@x.io\nd@x.io\n')
    assert got == ["a@x.io"]
    assert rejected.splitlines()[1:] == [f"2,{SPANS_LINES}"]


# --- the store under the consumer -------------------------------------------------------------


async def test_lookups_during_a_rebuild_are_refused_or_complete_never_partial(
    flushable_redis_url: str, options: KafkaOptions, topic: str, store: RedisStore,
    publisher: RulePublisher, redis: aioredis.Redis, running: list[RuleConsumer],
) -> None:
    """Redis emptied while the consumer runs: until the replay is whole, no answer is half."""
    tenants = [tenant_of(f"rebuild-{i}-{uuid.uuid4()}") for i in range(4)]
    asked = {RuleType.EMAIL: [f"u{i}@x.io" for i in range(0, 3_000, 50)]}
    for t in tenants:
        for start_at in range(0, 3_000, 500):
            await publisher.publish(
                "add", t, "email", [f"u{i}@x.io" for i in range(start_at, start_at + 500)])
    slow = ConsumerTuning(poll_timeout=0.1, check_interval=0.1, backoff=(0.05, 0.5),
                          max_records=1)
    consumer = await start(running, options, topic, store, tuning=slow)
    await wait_for(lambda: consumer.caught_up, "first load")
    full = {RuleType.EMAIL: set(asked[RuleType.EMAIL])}

    await redis.flushall()
    answers: list[str] = []

    async def rebuilt() -> bool:
        for t in tenants:
            try:
                found = await store.lookup(t, asked)
            except StoreUnavailableError:
                answers.append("refused")
                continue
            answers.append("complete" if found == full else f"partial {len(found)}")
        return consumer.caught_up and answers[-1] == "complete"

    await wait_for(rebuilt, "the rebuild")
    assert "refused" in answers, "the rebuild was seen"
    assert not [a for a in answers if a.startswith("partial")]


async def test_a_consumer_of_another_topic_cannot_change_this_topics_rules(
    redis_url: str, options: KafkaOptions, topic: str, store: RedisStore,
    publisher: RulePublisher, redis: aioredis.Redis, running: list[RuleConsumer],
) -> None:
    tenant = tenant_of(str(uuid.uuid4()))
    meta = await publisher.publish("add", tenant, "email", ["optout@x.io"])
    await start(running, options, topic, store)
    await wait_applied(store, [meta])

    other = f"{topic}-other"
    await ensure_topic(options, other)
    other_store = RedisStore.from_url(redis_url, timeout=5.0, topic=other)
    try:
        async with RulePublisher(options, other, region="US") as theirs:
            gone = await theirs.publish("remove", tenant, "email", ["optout@x.io"])
        consumer = await start(running, options, other, other_store)
        await wait_for(lambda: consumer.caught_up, "the other topic's consumer")
        await wait_applied(other_store, [gone])
    finally:
        await other_store.aclose()
    assert consumer.rejected_events == 1  # dead-lettered, reason `topic`
    assert await store.ready()
    assert await members(redis, tenant, RuleType.EMAIL) == {"optout@x.io"}


async def test_a_direct_write_or_an_admission_for_another_topic_cannot_touch_a_claimed_scope(
    redis_url: str, options: KafkaOptions, topic: str, store: RedisStore,
    publisher: RulePublisher, redis: aioredis.Redis, running: list[RuleConsumer],
) -> None:
    """The deny-rules API checks the claim in its limit script: without Kafka it writes no
    claim and refuses a claimed scope; with another topic it publishes nothing."""
    tenant = tenant_of(str(uuid.uuid4()))
    meta = await publisher.publish("add", tenant, "email", ["optout@x.io"])
    await start(running, options, topic, store)
    await wait_applied(store, [meta])
    gone = RuleChange("remove", tenant, RuleType.EMAIL, ("optout@x.io",))
    other = RedisStore.from_url(redis_url, timeout=5.0, topic=f"{topic}-other")
    direct = RedisStore.from_url(redis_url, timeout=5.0)
    try:
        with pytest.raises(StoreFedByKafkaError, match=f"topic {topic},"):
            await other.admit(gone, Limits())
        with pytest.raises(StoreFedByKafkaError, match=f"topic {topic},"):
            await direct.write(gone, Limits())
        assert await store.admit(gone, Limits()) is None  # its own topic's API admits it
    finally:
        await other.aclose()
        await direct.aclose()
    assert await members(redis, tenant, RuleType.EMAIL) == {"optout@x.io"}
