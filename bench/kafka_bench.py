"""Rule ingest benchmark: Kafka → RuleConsumer → Redis, next to redis-benchmark's SADD.

    python bench/kafka_bench.py --kafka 127.0.0.1:9092 --redis redis://127.0.0.1:6379/0 \
        --allow-flushall

(1) publishes 1,000,000 values as 100 events of 10,000, then times a RuleConsumer from its
first poll to all applied (values/s), and runs `redis-benchmark -q -P 100 -t sadd -n 1000000`
against the same Redis; (2) FLUSHALLs that Redis and times the rebuild of the 1 M rules;
(3) measures publish→enforced latency (p50/p99) of single-value adds through a real
`denyproxy serve --kafka --redis` process.
Prints a Markdown table with the machine and the date. It FLUSHALLs the Redis it is given:
point it at a scratch instance.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
import aiokafka
import redis.asyncio as aioredis

from bench.table import table
from rules.consumer import ConsumerTuning, RuleConsumer
from rules.kafka import KafkaOptions, ensure_topic
from rules.model import DEFAULT_REGION, RuleType, tenant_of
from rules.publisher import RulePublisher
from rules.store import RedisStore, rule_key

TUNING = ConsumerTuning(poll_timeout=0.1, check_interval=0.1)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kafka", required=True, help="bootstrap HOST:PORT")
    parser.add_argument("--redis", required=True, help="redis://HOST:PORT/DB (it is FLUSHALLed)")
    parser.add_argument("--values", type=int, default=1_000_000)
    parser.add_argument("--per-event", type=int, default=10_000)
    parser.add_argument("--redis-benchmark", default="redis-benchmark")
    parser.add_argument("--allow-flushall", action="store_true", help="required: (2) flushes Redis")
    parser.add_argument("--latency-samples", type=int, default=200)
    return parser.parse_args()


async def publish(options: KafkaOptions, topic: str, tenant: str, total: int, per: int) -> float:
    """Publish `total` distinct emails in events of `per`; seconds until all acknowledged."""
    await ensure_topic(options, topic)
    started = time.perf_counter()
    async with RulePublisher(options, topic, region=DEFAULT_REGION, linger_ms=20) as publisher:
        futures = []
        for start in range(0, total, per):
            values = [f"u{i}@bench{i % 1000}.example.com" for i in range(start, start + per)]
            futures.append(await publisher.send_normalised("add", tenant, RuleType.EMAIL, values))
        await asyncio.gather(*futures)
    return time.perf_counter() - started


# A bound on a poll of the consumer's state (it offers no event to wait on), not an I/O timeout.
async def until_caught_up(consumer: RuleConsumer, timeout: float = 600) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not consumer.caught_up:
        if time.monotonic() > deadline or (consumer.task and consumer.task.done()):
            raise RuntimeError("the consumer did not catch up")
        await asyncio.sleep(0.01)


async def ingest_and_rebuild(args: argparse.Namespace) -> dict[str, float]:
    options = KafkaOptions(args.kafka)
    topic = f"bench-{uuid.uuid4().hex[:10]}"
    tenant = tenant_of(f"bench-{topic}")
    published = await publish(options, topic, tenant, args.values, args.per_event)
    store = RedisStore.from_url(args.redis, timeout=30.0, topic=topic)
    client = aioredis.from_url(args.redis, decode_responses=True)
    # no group: no group-join wait
    consumer = RuleConsumer(options, topic, None, store, DEFAULT_REGION, tuning=TUNING)
    try:
        await consumer.start()
        started = time.perf_counter()
        await until_caught_up(consumer)
        ingest = time.perf_counter() - started
        stored = await client.scard(rule_key(tenant, RuleType.EMAIL))
        assert stored == args.values, f"{stored} of {args.values} values in Redis"

        applied = consumer.applied_events
        await client.flushall()
        started = time.perf_counter()
        # A poll of a counter: the consumer offers no event to wait on.
        while consumer.applied_events < 2 * applied:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        await until_caught_up(consumer)
        rebuild = time.perf_counter() - started
        assert await client.scard(rule_key(tenant, RuleType.EMAIL)) == args.values
    finally:
        await consumer.stop()
        await store.aclose()
        await client.aclose()
    return {"publish": published, "ingest": ingest, "rebuild": rebuild}


async def enforce_latency(args: argparse.Namespace) -> list[float]:
    """Publish→enforced, through a real `denyproxy serve --kafka --redis` process.

    Each sample: the fake upstream starts returning a new contact; a single-value add is
    published; the proxy is polled until the contact's email is gone from its answer.
    """
    from tests.fake_openmart import person
    from tests.harness import fake_upstream
    from tests.services import free_ports

    options = KafkaOptions(args.kafka)
    topic = f"bench-latency-{uuid.uuid4().hex[:10]}"
    await ensure_topic(options, topic)
    api_key = f"bench-{uuid.uuid4().hex}"
    port, admin = free_ports(2)
    samples: list[float] = []
    async with fake_upstream() as (fake, upstream):
        proc = subprocess.Popen(  # noqa: ASYNC220 - starting it does not block; no waiting here
            [sys.executable, "-m", "proxy.cli", "serve", "--upstream", upstream,
             "--listen", f"127.0.0.1:{port}", "--admin-listen", f"127.0.0.1:{admin}",
             "--kafka", args.kafka, "--redis", args.redis, "--topic", topic,
             "--group", topic, "--log-level", "warning"],
        )
        try:
            async with aiohttp.ClientSession() as client, RulePublisher(
                options, topic, region=DEFAULT_REGION, linger_ms=0
            ) as publisher:
                await _until_ready(client, f"http://127.0.0.1:{admin}/readyz")
                url = f"http://127.0.0.1:{port}/slow/0"
                for i in range(args.latency_samples):
                    fake.people = [person("Late", f"Comer{i}", "latency.example", ["+15125550100"])]
                    email = fake.people[0]["email"]["email"]
                    samples.append(await _one_add(client, publisher, url, api_key, email))
        finally:
            proc.terminate()
            proc.wait()
    return samples


async def _one_add(client: aiohttp.ClientSession, publisher: RulePublisher, url: str,
                   api_key: str, email: str) -> float:
    """Seconds from publishing one denied email until the proxy strips it."""
    started = time.perf_counter()
    await publisher.publish("add", tenant_of(api_key), RuleType.EMAIL, [email])
    while True:
        async with client.get(url, headers={"X-API-Key": api_key}) as r:
            if r.status == 200 and (await r.json())["data"][0]["email"] is None:
                return time.perf_counter() - started


async def _until_ready(client: aiohttp.ClientSession, url: str) -> None:
    for _ in range(600):
        try:
            async with client.get(url) as r:
                if r.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError("the proxy did not become ready")


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def redis_benchmark(binary: str, url: str, requests: int) -> float:
    """requests/s of pipelined SADD (-P 100) from redis-benchmark, same Redis."""
    parts = urlsplit(url)
    argv = [
        binary,
        "-h",
        parts.hostname or "127.0.0.1",
        "-p",
        str(parts.port or 6379),
        "-q",
        "-P",
        "100",
        "-t",
        "sadd",
        "-n",
        str(requests),
    ]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=300).stdout
    match = re.search(r"SADD: ([\d.]+) requests per second", out.replace("\r", "\n"))
    if not match:
        raise RuntimeError(f"unexpected redis-benchmark output: {out!r}")
    return float(match.group(1))


async def redis_version(url: str) -> str:
    client = aioredis.from_url(url)
    try:
        return str((await client.info("server"))["redis_version"])
    finally:
        await client.aclose()


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def rows(n: int, times: dict[str, float], sadd: float, latency: list[float]) -> list[list[str]]:
    def rate(seconds: float) -> str:
        return f"{n / seconds:,.0f} values/s"

    return [
        ["publish 1 M values (100 events, acks=all, gzip)", f"{times['publish']:.2f} s",
         rate(times["publish"])],
        ["ingest: RuleConsumer, first poll → all applied", f"{times['ingest']:.2f} s",
         rate(times["ingest"])],
        ["redis-benchmark -q -P 100 -t sadd -n 1000000", f"{n / sadd:.2f} s",
         f"{sadd:,.0f} SADD/s"],
        ["rebuild 1 M rules after FLUSHALL (detect + replay)", f"{times['rebuild']:.2f} s",
         rate(times["rebuild"])],
        [f"publish → enforced through the proxy, single-value adds ({len(latency)} samples)",
         f"p50 {percentile(latency, 0.5) * 1000:.1f} ms",
         f"p99 {percentile(latency, 0.99) * 1000:.1f} ms"],
    ]


def report(args: argparse.Namespace, times: dict[str, float], sadd: float, version: str,
           latency: list[float]) -> str:
    machine = (
        f"Machine: {os.cpu_count()} CPUs (nproc), {cpu_model()}; Python "
        f"{platform.python_version()}, aiokafka {aiokafka.__version__}, Redis {version}; "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )
    body = table(["Measurement", "Time", "Rate"], "lrr", rows(args.values, times, sadd, latency))
    return "\n".join([machine, "", *body])


def main() -> int:
    args = parse_args()
    if not args.allow_flushall:
        print(
            "kafka_bench: pass --allow-flushall: step (2) flushes the Redis at --redis",
            file=sys.stderr,
        )
        return 2
    times = asyncio.run(ingest_and_rebuild(args))
    sadd = redis_benchmark(args.redis_benchmark, args.redis, args.values)
    latency = asyncio.run(enforce_latency(args))
    print(report(args, times, sadd, asyncio.run(redis_version(args.redis)), latency))
    return 0


if __name__ == "__main__":
    sys.exit(main())
