"""`denyproxy rules add|remove|import` against the real broker, then the consumer into Redis."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import ssl
import time
import uuid
from pathlib import Path

import orjson
import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, TopicPartition

from proxy.cli import parser
from proxy.settings import Settings, SettingsError, kafka_options
from rules.consumer import ConsumerTuning, RuleConsumer
from rules.csvrows import NOT_UTF8
from rules.kafka import KafkaOptions
from rules.model import GLOBAL, RuleType, tenant_of
from rules.store import RedisStore, rule_key
from tests.mixed_rows import Mix, expected_summary, write_mixed

API_KEY = "sk-live-very-secret-key"


def cli(*argv: str) -> int:
    """The `rules` subcommands as proxy/cli.py wires them: parse, run."""
    args = parser().parse_args(["rules", *argv])
    return int(args.run(args))


async def run_cli(*argv: str) -> int:
    """In a worker thread: the command runs its own event loop, like the real CLI."""
    return await asyncio.to_thread(cli, *argv)


@pytest.fixture
def topic() -> str:
    return f"import-{uuid.uuid4().hex[:12]}"


async def read_events(bootstrap: str, topic: str, count: int) -> list[tuple[bytes, dict]]:
    """(key, JSON value) of the first `count` records of a topic, all partitions."""
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await reader.start()
    try:
        reader.assign([TopicPartition(topic, p) for p in range(4)])
        found: list[tuple[bytes, dict]] = []
        deadline = time.monotonic() + 20
        while len(found) < count and time.monotonic() < deadline:
            for records in (await reader.getmany(timeout_ms=200)).values():
                found += [(r.key, orjson.loads(r.value)) for r in records]
        return found
    finally:
        await reader.stop()


async def test_add_publishes_normalised_values_under_the_key_hash(
    kafka_bootstrap: str, topic: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await run_cli(
        "add",
        "--kafka",
        kafka_bootstrap,
        "--topic",
        topic,
        "--api-key",
        API_KEY,
        "--type",
        "email",
        " Jane@ACME.com ",
        "bob@acme.com",
    )
    assert code == 0
    out = capsys.readouterr()
    assert "partition" in out.out and "offset 0" in out.out
    assert API_KEY not in out.out + out.err and "jane" not in (out.out + out.err).lower()
    [(key, event)] = await read_events(kafka_bootstrap, topic, 1)
    assert key == tenant_of(API_KEY).encode()
    assert event["tenant"] == tenant_of(API_KEY)
    assert event["op"] == "add" and event["type"] == "email" and event["v"] == 1
    assert event["values"] == ["jane@acme.com", "bob@acme.com"]
    assert event["source"] == "denyproxy-cli"


async def test_remove_global_with_auto_type_groups_values_by_type(
    kafka_bootstrap: str, topic: str
) -> None:
    code = await run_cli(
        "remove",
        "--kafka",
        kafka_bootstrap,
        "--topic",
        topic,
        "--global",
        "--type",
        "auto",
        "+44 20 7946 0958",
        "acme.com",
        "x@acme.com",
    )
    assert code == 0
    events = {e["type"]: e for _, e in await read_events(kafka_bootstrap, topic, 3)}
    assert {t: e["values"] for t, e in events.items()} == {
        "phone": ["+442079460958"],
        "domain": ["acme.com"],
        "email": ["x@acme.com"],
    }
    assert all(e["tenant"] == GLOBAL and e["op"] == "remove" for e in events.values())


async def test_settings_come_from_env_vars_too(
    kafka_bootstrap: str, topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DENYPROXY_KAFKA", kafka_bootstrap)
    monkeypatch.setenv("DENYPROXY_TOPIC", topic)
    tenant = tenant_of("env")
    assert await run_cli("add", "--tenant", tenant.upper(), "--type", "domain", "acme.com") == 0
    [(key, event)] = await read_events(kafka_bootstrap, topic, 1)
    assert key == tenant.encode() and event["values"] == ["acme.com"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["add", "--global", "--type", "email", "a@b.co"], "--kafka"),
        (["add", "--kafka", "k:9092", "--tenant", "abc", "--type", "email", "a@b.co"], "--tenant"),
        (
            [
                "add",
                "--kafka",
                "k:9092",
                "--global",
                "--type",
                "email",
                "a@b.co",
                "secret-not-email",
            ],
            "positions 2",
        ),
        (
            [
                "add",
                "--kafka",
                "k:9092",
                "--global",
                "--type",
                "phone",
                "--phone-region",
                "XX",
                "1",
            ],
            "--phone-region",
        ),
        (
            [
                "add",
                "--kafka",
                "k:9092",
                "--global",
                "--type",
                "email",
                "--kafka-security-protocol",
                "SASL_SSL",
                "a@b.co",
            ],
            "--kafka-sasl-mechanism",
        ),
        (["import", "--kafka", "k:9092", "--global", "/no/such/file.csv"], "no such file"),
    ],
)
async def test_bad_usage_exits_2_with_one_line_naming_the_setting(
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DENYPROXY_KAFKA", raising=False)
    assert await run_cli(*argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert "secret-not-email" not in err


async def test_unreachable_kafka_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        await run_cli("add", "--kafka", "127.0.0.1:1", "--global", "--type", "domain", "acme.com")
        == 1
    )
    assert "failed" in capsys.readouterr().err


def test_kafka_security_settings_become_client_options() -> None:
    paths = ssl.get_default_verify_paths()
    cafile = next(
        (f for f in (paths.cafile, paths.openssl_cafile) if f and Path(f).is_file()), None
    )
    settings = Settings(
        kafka="b:9093",
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="u",
        kafka_sasl_password="hunter2",
        kafka_ssl_cafile=cafile,
    )
    options = kafka_options(settings)
    assert "hunter2" not in repr(options)
    kwargs = options.client_kwargs()
    assert kwargs["security_protocol"] == "SASL_SSL"
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (kwargs["sasl_plain_username"], kwargs["sasl_plain_password"]) == ("u", "hunter2")
    assert isinstance(kwargs["ssl_context"], ssl.SSLContext)
    assert KafkaOptions("b:9092").client_kwargs() == {
        "bootstrap_servers": "b:9092",
        "security_protocol": "PLAINTEXT",
    }
    with pytest.raises(SettingsError, match="--kafka-sasl-username"):
        kafka_options(
            Settings(
                kafka="b:9093",
                kafka_security_protocol="SASL_PLAINTEXT",
                kafka_sasl_mechanism="PLAIN",
            )
        )


async def test_import_small_file_with_header_column_and_rejects(
    kafka_bootstrap: str, topic: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "contacts.csv"
    source.write_text(
        "name,Email,notes\n"
        "Jane,Jane@Acme.com,x\n"
        "Bob,not-an-email,\n"
        'Eve,"eve@acme.com",\n'
        "Short\n"
        "Ann,,\n"
        "Joe,joe@acme.com,y\n"
    )
    rejects = tmp_path / "rejects.csv"
    code = await run_cli(
        "import",
        str(source),
        "--kafka",
        kafka_bootstrap,
        "--topic",
        topic,
        "--tenant",
        tenant_of("t"),
        "--column",
        "email",
        "--type",
        "email",
        "--rejected",
        str(rejects),
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "6 rows" in out and "header row skipped" in out
    assert "published: 3 values in 1 add events (email 3)" in out
    assert "rejected:  3 rows" in out and "jane" not in out.lower() and "not-an-email" not in out
    assert list(csv.reader(rejects.open())) == [
        ["line", "reason"],
        ["3", "not a valid email"],
        ["5", "missing column"],
        ["6", "empty"],
    ]
    [(_, event)] = await read_events(kafka_bootstrap, topic, 1)
    assert event["values"] == ["jane@acme.com", "eve@acme.com", "joe@acme.com"]


async def test_import_writes_rejected_values_only_when_asked(
    kafka_bootstrap: str, topic: str, tmp_path: Path
) -> None:
    source = tmp_path / "plain.csv"
    source.write_text("acme.com\nnope\nhttps://linkedin.com/in/jane\n")
    code = await run_cli(
        "import",
        str(source),
        "--kafka",
        kafka_bootstrap,
        "--topic",
        topic,
        "--global",
        "--remove",
        "--rejected-values",
        "--no-progress",
    )
    assert code == 0
    rows = list(csv.reader((tmp_path / "plain.csv.rejected.csv").open()))
    assert rows == [
        ["line", "reason", "value"],
        ["2", "not an email, phone, domain or LinkedIn URL", "nope"],
    ]
    events = {e["type"]: e for _, e in await read_events(kafka_bootstrap, topic, 2)}
    assert events["domain"]["values"] == ["acme.com"] and events["domain"]["op"] == "remove"
    assert events["linkedin"]["values"] == ["linkedin.com/in/jane"]


def import_consumer(
    kafka_bootstrap: str, redis_url: str, topic: str
) -> tuple[RedisStore, RuleConsumer]:
    """The real consumer of `topic` into Redis, polled fast (not started)."""
    store = RedisStore.from_url(redis_url, timeout=5.0, topic=topic)
    tuning = ConsumerTuning(poll_timeout=0.1, check_interval=0.1)
    consumer = RuleConsumer(
        KafkaOptions(kafka_bootstrap), topic, f"{topic}-g", store, "US", tuning=tuning
    )
    return store, consumer


async def consume_into_redis(
    kafka_bootstrap: str, redis_url: str, topic: str, events: int
) -> None:
    """Run the real consumer on `topic` until caught up; every one of `events` is applied."""
    store, consumer = import_consumer(kafka_bootstrap, redis_url, topic)
    try:
        await consumer.start()
        deadline = time.monotonic() + 60
        while not consumer.caught_up:
            assert time.monotonic() < deadline, "consumer did not catch up"
            await asyncio.sleep(0.1)
        assert consumer.applied_events == events and consumer.rejected_events == 0
    finally:
        await consumer.stop()
        await store.aclose()


async def test_import_rejects_rows_that_are_not_utf8_and_publishes_values_clean(
    kafka_bootstrap: str, redis_url: str, topic: str, tmp_path: Path
) -> None:
    source = tmp_path / "mixed.csv"
    source.write_bytes(
        b"\xef\xbb\xbfJane@acme.com\n"  # a BOM at file start: accepted, first row is data
        b"caf\xe9@acme.com\n"  # Latin-1, not UTF-8
        b"bob\xe2\x80\x8b@acme.com\n"  # zero-width space inside the value
        b"\xef\xbb\xbfann@acme.com\n"  # a BOM inside the file (Excel concatenations)
        b"\xff\xfe\n"
        b"joe@acme.com\n"
    )
    tenant = tenant_of(f"utf8-{uuid.uuid4()}")
    code = await run_cli(
        "import", str(source), "--kafka", kafka_bootstrap, "--topic", topic, "--tenant", tenant,
        "--type", "email", "--rejected-values", "--no-progress",
    )
    assert code == 0
    with (tmp_path / "mixed.csv.rejected.csv").open(encoding="utf-8") as rejected:
        rows = list(csv.reader(rejected))
    assert rows == [
        ["line", "reason", "value"],
        ["2", NOT_UTF8, "caf\\xe9@acme.com"],
        ["5", NOT_UTF8, "\\xff\\xfe"],
    ]
    [(_, event)] = await read_events(kafka_bootstrap, topic, 1)
    assert event["values"] == ["jane@acme.com", "bob@acme.com", "ann@acme.com", "joe@acme.com"]
    await consume_into_redis(kafka_bootstrap, redis_url, topic, 1)
    client = aioredis.from_url(redis_url, decode_responses=True)
    try:
        stored = await client.smembers(rule_key(tenant, RuleType.EMAIL))
    finally:
        await client.aclose()
    assert stored == {"jane@acme.com", "bob@acme.com", "ann@acme.com", "joe@acme.com"}


async def test_api_key_from_a_file_is_trimmed_and_never_printed(
    kafka_bootstrap: str, topic: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(API_KEY + "\n")
    code = await run_cli(
        "add", "--kafka", kafka_bootstrap, "--topic", topic, "--api-key-file", str(key_file),
        "--type", "domain", "acme.com",
    )
    assert code == 0
    out = capsys.readouterr()
    # the CLI's own warning (a key on the command line); aiokafka may log a retry on a topic
    # still electing its leader, which is not ours to assert on
    assert API_KEY not in out.out + out.err and "denyproxy rules: warning" not in out.err
    [(key, event)] = await read_events(kafka_bootstrap, topic, 1)
    assert event["tenant"] == tenant_of(API_KEY) == hashlib.sha256(API_KEY.encode()).hexdigest()
    assert key == event["tenant"].encode()


async def test_api_key_from_the_environment_needs_no_flag(
    kafka_bootstrap: str, topic: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DENYPROXY_API_KEY", f" {API_KEY}\r\n")
    code = await run_cli(
        "add", "--kafka", kafka_bootstrap, "--topic", topic, "--type", "domain", "acme.com"
    )
    assert code == 0
    out = capsys.readouterr()
    # the CLI's own warning (a key on the command line); aiokafka may log a retry on a topic
    # still electing its leader, which is not ours to assert on
    assert API_KEY not in out.out + out.err and "denyproxy rules: warning" not in out.err
    [(_, event)] = await read_events(kafka_bootstrap, topic, 1)
    assert event["tenant"] == hashlib.sha256(API_KEY.encode()).hexdigest()


async def test_api_key_in_argv_still_works_with_a_one_line_warning(
    kafka_bootstrap: str, topic: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await run_cli(
        "add", "--kafka", kafka_bootstrap, "--topic", topic, "--api-key", f"  {API_KEY}\n",
        "--type", "domain", "acme.com",
    )
    assert code == 0
    err = capsys.readouterr().err  # aiokafka may log a retry of a new topic's first send too
    [warning] = [line for line in err.splitlines() if line.startswith("denyproxy")]
    assert "warning" in warning and "visible to other users" in warning and API_KEY not in err
    [(_, event)] = await read_events(kafka_bootstrap, topic, 1)
    assert event["tenant"] == hashlib.sha256(API_KEY.encode()).hexdigest()


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--api-key", " \n"], {}, "--api-key must not be empty"),
        (["--api-key-file", "EMPTY"], {}, "is empty"),
        (["--api-key-file", "/no/such/key"], {}, "--api-key-file /no/such/key"),
        ([], {"DENYPROXY_API_KEY": "  "}, "DENYPROXY_API_KEY must not be empty"),
        ([], {}, "whose rules?"),
    ],
)
async def test_missing_or_empty_key_exits_2_with_one_line(
    argv: list[str],
    env: dict[str, str],
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DENYPROXY_API_KEY", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "EMPTY").write_text("\n")
    argv = [str(tmp_path / "EMPTY") if a == "EMPTY" else a for a in argv]
    code = await run_cli("add", "--kafka", "k:9092", *argv, "--type", "domain", "acme.com")
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err


async def test_freemail_domain_rule_needs_the_flag_then_reaches_the_store(
    kafka_bootstrap: str, redis_url: str, topic: str, capsys: pytest.CaptureFixture[str]
) -> None:
    tenant = tenant_of(f"freemail-{uuid.uuid4()}")
    base = ["add", "--kafka", kafka_bootstrap, "--topic", topic, "--tenant", tenant]
    assert await run_cli(*base, "--type", "domain", "gmail.com") == 2
    assert "free-mail" in capsys.readouterr().err
    assert await run_cli(*base, "--type", "auto", "gmail.com") == 2
    assert "free-mail" in capsys.readouterr().err
    assert await run_cli(*base, "--type", "domain", "--allow-freemail-domains", "gmail.com") == 0
    [(_, event)] = await read_events(kafka_bootstrap, topic, 1)
    assert event["type"] == "domain" and event["values"] == ["gmail.com"]
    await consume_into_redis(kafka_bootstrap, redis_url, topic, 1)
    client = aioredis.from_url(redis_url, decode_responses=True)
    try:
        assert await client.smembers(rule_key(tenant, RuleType.DOMAIN)) == {"gmail.com"}
    finally:
        await client.aclose()


async def test_import_rejects_freemail_domains_unless_allowed(
    kafka_bootstrap: str, topic: str, tmp_path: Path
) -> None:
    source = tmp_path / "domains.csv"
    source.write_text("gmail.com\nacme.com\n")
    base = ["import", str(source), "--kafka", kafka_bootstrap, "--topic", topic, "--global",
            "--type", "domain", "--no-progress"]
    assert await run_cli(*base) == 0
    rows = list(csv.reader((tmp_path / "domains.csv.rejected.csv").open()))
    assert [line for line, _ in rows[1:]] == ["1"] and "free-mail" in rows[1][1]
    assert await run_cli(*base, "--allow-freemail-domains", "--rejected", str(tmp_path / "r2")) == 0
    found = [e["values"] for _, e in await read_events(kafka_bootstrap, topic, 2)]
    assert found == [["acme.com"], ["gmail.com", "acme.com"]]
    assert not (tmp_path / "r2").exists()


async def test_auto_type_never_turns_a_url_into_its_host(
    kafka_bootstrap: str, topic: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = "https://twitter.com/x"
    code = await run_cli(
        "add", "--kafka", kafka_bootstrap, "--topic", topic, "--global", "--type", "auto", url
    )
    assert code == 2 and "a URL with a path" in capsys.readouterr().err
    source = tmp_path / "urls.csv"
    source.write_text(f"{url}\nacme.com\n")
    assert await run_cli("import", str(source), "--kafka", kafka_bootstrap, "--topic", topic,
                         "--global", "--no-progress") == 0
    rows = list(csv.reader((tmp_path / "urls.csv.rejected.csv").open()))
    assert rows[1][0] == "1" and "a URL with a path" in rows[1][1]
    [(_, event)] = await read_events(kafka_bootstrap, topic, 1)
    assert event["values"] == ["acme.com"]


# ----------------------------------------------------------------------- 100,000 mixed rows

MIX = Mix(100_000)
"""100,000 rows streamed into 9 add events of 10,000 values (4 email, 2 phone, 2 domain,
1 profile), duplicates and garbage among them: the batching and streaming of the million-row
import at a tenth of its size (bench/import_rows.py runs the million and times it)."""


@pytest.mark.timeout(300)  # a shared 2-core box
async def test_import_mixed_rows_then_consume_into_redis(
    kafka_bootstrap: str,
    redis_url: str,
    redis: aioredis.Redis,
    topic: str,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    source = tmp_path / "mixed.csv"
    garbage_lines = write_mixed(source, MIX)
    tenant = tenant_of(f"mixed-{uuid.uuid4()}")

    assert (
        await run_cli(
            "import", str(source), "--kafka", kafka_bootstrap, "--topic", topic, "--tenant", tenant
        )
        == 0
    )
    captured = capfd.readouterr()
    assert "rows/s" in captured.err and "100.0%" in captured.err, "progress bar"
    for line in expected_summary(MIX):
        assert line in captured.out, f"summary line {line!r} missing"
    with (tmp_path / "mixed.csv.rejected.csv").open() as rejected:
        rows = list(csv.reader(rejected))
    assert rows[0] == ["line", "reason"] and len(rows) == MIX.garbage + 1
    assert {int(line) for line, _ in rows[1:]} == garbage_lines

    store, consumer = import_consumer(kafka_bootstrap, redis_url, topic)
    try:
        await consumer.start()
        deadline = time.monotonic() + 120  # a bound: 90,000 catalogue records, a loaded box
        while not consumer.caught_up:
            assert time.monotonic() < deadline, "consumer did not catch up"
            await asyncio.sleep(0.1)
        assert consumer.applied_events == 9 and consumer.rejected_events == 0
    finally:
        await consumer.stop()
        await store.aclose()
    counts = {t: await redis.scard(rule_key(tenant, t)) for t in RuleType}
    assert counts == {
        RuleType.EMAIL: MIX.emails,
        RuleType.PHONE: MIX.phones,
        RuleType.DOMAIN: MIX.domains,
        RuleType.LINKEDIN: MIX.linkedins,
        RuleType.COMPANY: 0,  # `--type auto` never reads a value as a company key
    }
    assert await redis.sismember(rule_key(tenant, RuleType.PHONE), "+12015550000")
    assert await redis.sismember(rule_key(tenant, RuleType.EMAIL), "a.0@corp0.example.com")
    assert await redis.sismember(rule_key(tenant, RuleType.LINKEDIN), "linkedin.com/in/a-x")
