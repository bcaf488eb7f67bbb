"""rules/consumer/steps.py and dead_letter.py on hand-built records (no broker needed)."""

from __future__ import annotations

import logging

import orjson
import pytest
from aiokafka.structs import ConsumerRecord

from rules import events as events_module
from rules import metrics
from rules.consumer.dead_letter import (
    DeadLetters,
    dead_letter_headers,
    record_size,
    reference,
    reference_headers,
)
from rules.consumer.stall import Progress
from rules.consumer.steps import Checks, Record, decode_all, decode_one, rejects, slices
from rules.events import Event, InvalidEventError, encode, key_of, partition_of
from rules.model import RuleChange, RuleType, tenant_of

TENANT = tenant_of("steps-test-key")


def record(value: bytes | None, *, offset: int = 0, partition: int = 0,
           key: bytes | None = key_of(TENANT),
           headers: tuple[tuple[str, bytes], ...] = ()) -> Record:
    return ConsumerRecord(
        topic="rules", partition=partition, offset=offset, timestamp=0, timestamp_type=0,
        key=key, value=value, checksum=None, serialized_key_size=0, serialized_value_size=0,
        headers=[("trace", b"1"), *headers],
    )


def event(op: str, values: list[str], rule_type: str = "email") -> bytes:
    return encode(op, TENANT, rule_type, values, region="US")  # type: ignore[arg-type]  # op is a literal


def test_decode_normalises_the_values() -> None:
    decoded = decode_one(record(event("add", ["Jane.Doe@ACME.com"])), Checks("US"))
    assert isinstance(decoded, Event)
    assert decoded.change == RuleChange("add", TENANT, RuleType.EMAIL, ("jane.doe@acme.com",))


def test_decode_uses_the_region_for_national_phone_numbers() -> None:
    us = decode_one(record(event("add", ["(415) 555-0100"], "phone")), Checks("US"))
    assert isinstance(us, Event) and us.change.values == ("+14155550100",)


@pytest.mark.parametrize(
    ("value", "key", "code"),
    [
        (b"{not json", key_of(TENANT), "json"),
        (None, key_of(TENANT), "json"),
        (b"sentinel", b"someone-else", "key"),
        (b"sentinel", None, "key"),
    ],
)
def test_poison_records_decode_to_their_reason(
    value: bytes | None, key: bytes | None, code: str
) -> None:
    body = event("add", ["a@b.io"]) if value == b"sentinel" else value
    decoded = decode_one(record(body, key=key), Checks("US"))
    assert isinstance(decoded, InvalidEventError) and decoded.code == code


def test_rejects_are_the_poison_records_in_order() -> None:
    records = [record(event("add", ["a@b.io"]), offset=0), record(b"{", offset=1),
               record(event("add", ["c@d.io"]), offset=2), record(b"[]", offset=3)]
    poison = rejects(records, decode_all(records, Checks("US")))
    assert [r.offset for r, _ in poison] == [1, 3]


def test_slices_keep_order_cut_at_the_value_limit_and_move_poison_offsets_on() -> None:
    records = [
        record(event("add", ["a@b.io", "b@b.io"]), offset=0),
        record(b"{", offset=1),
        record(event("remove", ["a@b.io"]), offset=2, partition=1),
        record(event("add", ["c@b.io", "d@b.io"]), offset=3),
    ]
    parts = slices(records, decode_all(records, Checks("US")), max_values=3)
    assert [[c.op for c in p.changes] for p in parts] == [["add", "remove"], ["add"]]
    assert [p.values for p in parts] == [3, 2]
    assert [p.offsets for p in parts] == [{0: 2, 1: 3}, {0: 4}]


def test_a_batch_of_poison_only_still_advances_its_offsets() -> None:
    records = [record(b"{", offset=7), record(b"{", offset=8)]
    (part,) = slices(records, decode_all(records, Checks("US")), max_values=10)
    assert part.changes == [] and part.offsets == {0: 9}


def test_dead_letter_headers_say_why_and_where_from() -> None:
    bad = record(b"{", offset=5, partition=2)
    err = InvalidEventError("json", "not JSON")
    assert dict(dead_letter_headers(bad, err)) == {
        "reason": b"not JSON", "reason-code": b"json", "source-topic": b"rules",
        "source-partition": b"2", "source-offset": b"5",
    }


async def test_without_a_producer_rejects_are_counted_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    letters = DeadLetters("rules")
    before = metrics.EVENTS_REJECTED.labels("json")._value.get()
    bad = record(b"{", offset=5)
    with caplog.at_level(logging.WARNING, logger="rules.consumer"):
        await letters.send([(bad, InvalidEventError("json", "not JSON"))])
    assert letters.rejected == 1
    assert metrics.EVENTS_REJECTED.labels("json")._value.get() == before + 1
    assert "rules[0]@5 (json)" in caplog.text and "dead-letter topic" not in caplog.text


# Kafka's own vectors (clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java,
# testMurmur2): murmur2 of these bytes as a signed 32-bit int.
JAVA_MURMUR2 = [
    (b"21", -973932308),
    (b"foobar", -790332482),
    (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829),
    (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    (b"abc", 479470107),
]


@pytest.mark.parametrize(("key", "java"), JAVA_MURMUR2)
def test_partition_of_is_the_java_clients_default(key: bytes, java: int) -> None:
    for partitions in (1, 3, 4, 12, 100):
        assert partition_of(key, partitions) == (java & 0x7FFFFFFF) % partitions


def test_a_record_outside_its_keys_partition_is_poison_with_reason_partition() -> None:
    home = partition_of(key_of(TENANT), 4)
    ok = decode_one(record(event("add", ["a@x.io"]), partition=home), Checks("US", partitions=4))
    assert isinstance(ok, Event)
    for wrong in set(range(4)) - {home}:
        misrouted = record(event("add", ["a@x.io"]), partition=wrong)
        bad = decode_one(misrouted, Checks("US", partitions=4))
        assert isinstance(bad, InvalidEventError) and bad.code == "partition"
        assert TENANT not in bad.reason


def moved_tenant() -> str:
    """A tenant whose key maps to different partitions of 2 and of 4."""
    return next(t for t in (tenant_of(f"moved-{i}") for i in range(100))
                if partition_of(key_of(t), 2) != partition_of(key_of(t), 4))


def test_a_record_placed_by_an_earlier_partition_count_is_checked_against_that_count() -> None:
    """Partitions added (2 -> 4): a record names the count its publisher placed it by."""
    tenant = moved_tenant()
    body = encode("add", tenant, "email", ["a@x.io"], region="US")
    old, new = partition_of(key_of(tenant), 2), partition_of(key_of(tenant), 4)
    checks = Checks("US", partitions=4)

    def decoded(partition: int, *headers: tuple[str, bytes]) -> Event | InvalidEventError:
        return decode_one(record(body, partition=partition, key=key_of(tenant),
                                 headers=headers), checks)

    assert isinstance(decoded(old, events_module.partitions_header(2)), Event)
    assert isinstance(decoded(new, events_module.partitions_header(4)), Event)
    assert isinstance(decoded(new), Event), "no header: the current count"
    refused = [decoded(old), decoded(new, events_module.partitions_header(2)),
               decoded(old, events_module.partitions_header(4)),
               decoded(old, ("partitions", b"0")), decoded(old, ("partitions", b"two")),
               decoded(old, events_module.partitions_header(2), ("partitions", b"2"))]
    assert [isinstance(r, InvalidEventError) and r.code for r in refused] == ["partition"] * 6


def test_size_and_value_count_are_checked_before_normalising(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def boom(*args: object) -> None:
        raise AssertionError("normalised an event that was too large")

    monkeypatch.setattr(events_module, "normalise", boom)
    values = [f"u{i}@x.io" for i in range(50)]
    big = decode_one(record(event("add", values)), Checks("US", max_bytes=200))
    many = decode_one(record(event("add", values)), Checks("US", max_values=10))
    assert isinstance(big, InvalidEventError) and big.code == "too_large"
    assert isinstance(many, InvalidEventError) and many.code == "too_many_values"


def test_an_unexpected_exception_on_one_record_is_that_records_dead_letter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*args: object) -> tuple[str, ...]:
        raise KeyError("jane@x.io")

    monkeypatch.setattr(events_module, "normalise", broken)
    decoded = decode_one(record(event("add", ["jane@x.io"])), Checks("US"))
    assert isinstance(decoded, InvalidEventError) and decoded.code == "error"
    assert "jane" not in decoded.reason, "no value in the reason"


def test_a_reference_carries_where_and_why_but_no_payload() -> None:
    rec = record(b'{"values": ["secret@x.io"]}', offset=7, partition=2)
    err = InvalidEventError("too_large", "too large")
    body = orjson.loads(reference(rec, err))
    assert body == {
        "reference": True, "topic": "rules", "partition": 2, "offset": 7,
        "reason-code": "too_large", "reason": "too large", "size": record_size(rec),
    }
    headers = dict(reference_headers(rec, err))
    assert headers["payload"] == b"omitted" and b"secret" not in b"".join(headers.values())


def test_stalled_seconds_grow_only_while_behind_and_stuck() -> None:
    progress = Progress()
    progress.track({0, 1}, now=100.0)
    progress.lagging({0: 0, 1: 5}, now=100.0)
    assert progress.stalled_seconds(now=103.0) == 3.0
    progress.advanced({1}, now=104.0)
    assert progress.stalled_seconds(now=105.0) == 1.0
    progress.lagging({0: 0, 1: 0}, now=106.0)
    assert progress.stalled_seconds(now=500.0) == 0.0
    assert progress.heartbeat() == {0: 106.0, 1: 106.0}
