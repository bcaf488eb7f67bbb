"""rules/consumer/steps.py and dead_letter.py on hand-built records (no broker needed)."""

from __future__ import annotations

import logging

import pytest
from aiokafka.structs import ConsumerRecord

from rules import metrics
from rules.consumer.dead_letter import DeadLetters, dead_letter_headers
from rules.consumer.steps import Record, decode_all, decode_one, rejects, slices
from rules.events import Event, InvalidEventError, encode, key_of
from rules.model import RuleChange, RuleType, tenant_of

TENANT = tenant_of("steps-test-key")


def record(value: bytes | None, *, offset: int = 0, partition: int = 0,
           key: bytes | None = key_of(TENANT)) -> Record:
    return ConsumerRecord(
        topic="rules", partition=partition, offset=offset, timestamp=0, timestamp_type=0,
        key=key, value=value, checksum=None, serialized_key_size=0, serialized_value_size=0,
        headers=[("trace", b"1")],
    )


def event(op: str, values: list[str], rule_type: str = "email") -> bytes:
    return encode(op, TENANT, rule_type, values)  # type: ignore[arg-type]  # op is a literal


def test_decode_normalises_the_values() -> None:
    decoded = decode_one(record(event("add", ["Jane.Doe@ACME.com"])), "US")
    assert isinstance(decoded, Event)
    assert decoded.change == RuleChange("add", TENANT, RuleType.EMAIL, ("jane.doe@acme.com",))


def test_decode_uses_the_region_for_national_phone_numbers() -> None:
    us = decode_one(record(event("add", ["(415) 555-0100"], "phone")), "US")
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
    decoded = decode_one(record(body, key=key), "US")
    assert isinstance(decoded, InvalidEventError) and decoded.code == code


def test_rejects_are_the_poison_records_in_order() -> None:
    records = [record(event("add", ["a@b.io"]), offset=0), record(b"{", offset=1),
               record(event("add", ["c@d.io"]), offset=2), record(b"[]", offset=3)]
    poison = rejects(records, decode_all(records, "US"))
    assert [r.offset for r, _ in poison] == [1, 3]


def test_slices_keep_order_cut_at_the_value_limit_and_move_poison_offsets_on() -> None:
    records = [
        record(event("add", ["a@b.io", "b@b.io"]), offset=0),
        record(b"{", offset=1),
        record(event("remove", ["a@b.io"]), offset=2, partition=1),
        record(event("add", ["c@b.io", "d@b.io"]), offset=3),
    ]
    parts = slices(records, decode_all(records, "US"), max_values=3)
    assert [[c.op for c in p.changes] for p in parts] == [["add", "remove"], ["add"]]
    assert [p.values for p in parts] == [3, 2]
    assert [p.offsets for p in parts] == [{0: 2, 1: 3}, {0: 4}]


def test_a_batch_of_poison_only_still_advances_its_offsets() -> None:
    records = [record(b"{", offset=7), record(b"{", offset=8)]
    (part,) = slices(records, decode_all(records, "US"), max_values=10)
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
