"""`denyproxy rules import` of a million mixed rows, then the consumer into Redis, timed, in a
private broker and redis-server (the suite proves the same at 100,000 rows, tests/test_import.py).

    .venv/bin/python -m bench.import_rows [--rows 1000000]

Writes the CSV (tests/mixed_rows.py), imports it through the CLI as an operator would, checks
the summary, the rejected rows and the sets in Redis as the test does, and prints rows/s of the
import and values/s of the consumer. Run it on a quiet box: on a shared one the figures are
mostly noise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import io
import tempfile
import time
import uuid
from pathlib import Path

import redis.asyncio as aioredis

from proxy.cli import parser
from rules.consumer import ConsumerTuning, RuleConsumer
from rules.kafka import KafkaOptions, ensure_topic
from rules.model import RuleType, tenant_of
from rules.store import RedisStore, rule_key
from tests.mixed_rows import Mix, expected_summary, write_mixed
from tests.services import KafkaBroker, RedisServer


def run_import(source: Path, bootstrap: str, topic: str, tenant: str) -> str:
    """The CLI's `rules import` with its summary captured; fails unless it exits 0."""
    out = io.StringIO()
    argv = ["rules", "import", str(source), "--kafka", bootstrap, "--topic", topic,
            "--tenant", tenant, "--no-progress"]
    with contextlib.redirect_stdout(out):
        args = parser().parse_args(argv)
        code = int(args.run(args))
    if code != 0:
        raise SystemExit(f"rules import exited {code}:\n{out.getvalue()}")
    return out.getvalue()


async def consume(bootstrap: str, redis_url: str, topic: str) -> int:
    """Run the real consumer until caught up; the events it applied."""
    store = RedisStore.from_url(redis_url, timeout=30.0, topic=topic)
    consumer = RuleConsumer(KafkaOptions(bootstrap), topic, f"{topic}-g", store, "US",
                            tuning=ConsumerTuning(poll_timeout=0.1, check_interval=0.1))
    try:
        await consumer.start()
        deadline = time.monotonic() + 1800
        while not consumer.caught_up:
            assert time.monotonic() < deadline, "the consumer did not catch up in 30 min"
            await asyncio.sleep(0.1)
        return consumer.applied_events
    finally:
        await consumer.stop()
        await store.aclose()


async def counts(redis_url: str, tenant: str) -> dict[RuleType, int]:
    client = aioredis.from_url(redis_url)
    try:
        return {t: await client.scard(rule_key(tenant, t)) for t in RuleType}
    finally:
        await client.aclose()


def check(
    mix: Mix, summary: str, rejected: Path, garbage: set[int], held: dict[RuleType, int]
) -> None:
    """What tests/test_import.py asserts at its size, here at this one."""
    missing = [line for line in expected_summary(mix) if line not in summary]
    assert not missing, f"summary lacks {missing}:\n{summary}"
    with rejected.open() as f:
        assert {int(line) for line, _ in list(csv.reader(f))[1:]} == garbage
    assert held == {RuleType.EMAIL: mix.emails, RuleType.PHONE: mix.phones,
                    RuleType.DOMAIN: mix.domains, RuleType.LINKEDIN: mix.linkedins,
                    RuleType.COMPANY: 0}, held


def measure(mix: Mix, work: Path) -> None:
    source, topic = work / "mixed.csv", f"bench-import-{uuid.uuid4().hex[:8]}"
    tenant = tenant_of(f"bench-{uuid.uuid4()}")
    garbage = write_mixed(source, mix)
    redis, broker = RedisServer(workdir=work / "redis"), KafkaBroker(workdir=work / "kafka")
    redis.start()
    broker.start()
    try:
        asyncio.run(ensure_topic(KafkaOptions(broker.bootstrap), topic))
        started = time.perf_counter()
        summary = run_import(source, broker.bootstrap, topic, tenant)
        imported = time.perf_counter() - started
        started = time.perf_counter()
        events = asyncio.run(consume(broker.bootstrap, redis.url, topic))
        consumed = time.perf_counter() - started
        check(mix, summary, work / "mixed.csv.rejected.csv", garbage,
              asyncio.run(counts(redis.url, tenant)))
    finally:
        broker.stop()
        redis.stop()
    print(f"import: {mix.rows:,} rows in {imported:.1f} s ({mix.rows / imported:,.0f} rows/s)")
    print(f"consume: {events} events in {consumed:.1f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="a multiple of 10,000")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-import-") as work:
        measure(Mix(args.rows), Path(work))


if __name__ == "__main__":
    main()
