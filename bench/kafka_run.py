"""Section 5 of the report: run bench/kafka_bench.py against a private broker and Redis."""

from __future__ import annotations

import contextlib
import logging
import subprocess
import sys
from pathlib import Path

from bench.paths import BENCH, ROOT
from tests.services import KafkaBroker, RedisServer

log = logging.getLogger("bench")


def kafka_argv(script: Path, bootstrap: str, redis_url: str, quick: bool) -> list[str]:
    """The script's command line, with only the options its --help says it has."""
    argv = [sys.executable, str(script), "--kafka", bootstrap, "--redis", redis_url]
    helptext = subprocess.run([sys.executable, str(script), "--help"], cwd=ROOT,
                              check=False, capture_output=True, text=True, timeout=60).stdout
    if "--allow-flushall" in helptext:  # the Redis here is a private scratch instance
        argv.append("--allow-flushall")
    if quick and "--quick" in helptext:
        argv.append("--quick")
    elif quick and "--values" in helptext:
        argv += ["--values", "100000"]
    return argv


def run_script(argv: list[str], quick: bool) -> str:
    res = subprocess.run(argv, cwd=ROOT, check=False, capture_output=True, text=True,
                         timeout=120 if quick else 300)
    out = res.stdout.strip() or "(no output)"
    if res.returncode != 0:
        out += f"\n\nkafka_bench.py exited {res.returncode}:\n" + res.stderr[-2000:]
    return out


def kafka_figures(work: Path, quick: bool) -> str:
    """kafka_bench.py's Markdown output, or why there is none."""
    script = BENCH / "kafka_bench.py"
    if not script.exists():
        return "bench/kafka_bench.py does not exist yet: no Kafka figures in this run."
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # connect retries while it boots
    broker: KafkaBroker | None = None
    redis: RedisServer | None = None
    try:
        log.info("Kafka: starting a broker and a Redis for bench/kafka_bench.py")
        broker = KafkaBroker(workdir=work / "kafka")
        broker.start()
        redis = RedisServer(work / "redis-kafka")
        redis.start()
        argv = kafka_argv(script, broker.bootstrap, redis.url, quick)
        log.info("Kafka: " + " ".join(argv[1:]))
        return run_script(argv, quick)
    except Exception as exc:  # no figures is a note in the report, not a failed run
        return f"Kafka figures not available: {type(exc).__name__}: {exc}"[:2000]
    finally:
        if redis is not None:
            redis.stop()
        if broker is not None:
            with contextlib.suppress(Exception):
                broker.stop()
