"""rules/consumer/placement.py on hand-built records: a `partitions` header above our count is
decided again after one refresh of the count, and a failed refresh decides nothing.

The refresh here is a plain count (the broker's side is tests/test_attack_rules.py's
`test_a_record_placed_by_partitions_added_after_our_metadata_is_applied`)."""

from __future__ import annotations

import pytest
from aiokafka.errors import KafkaTimeoutError

from rules.consumer.placement import decode_current
from rules.consumer.steps import Checks, Record
from rules.events import Event, PlacedAheadError, encode, key_of, partition_of
from rules.model import RuleType, tenant_of
from tests.test_consumer_steps import record

TENANT = next(t for t in (tenant_of(f"placed-{i}") for i in range(1000))
              if partition_of(key_of(t), 5) < 4
              and partition_of(key_of(t), 5) != partition_of(key_of(t), 4))


def placed_by_five(value: str, offset: int = 0) -> Record:
    """A record in its key's partition of 5, which is not its partition of 4."""
    body = encode("add", TENANT, RuleType.EMAIL, [value], region="US")
    return record(body, key=key_of(TENANT), offset=offset,
                  partition=partition_of(key_of(TENANT), 5), headers=(("partitions", b"5"),))


class Counts:
    """The topic's count as a refresh would find it; counts the refreshes asked for."""

    def __init__(self, count: int) -> None:
        self.count, self.calls = count, 0

    async def __call__(self) -> int:
        self.calls += 1
        return self.count


async def test_a_record_placed_by_partitions_we_have_not_seen_is_applied_after_a_refresh() -> None:
    counts = Counts(5)
    decoded = await decode_current([placed_by_five("a@x.io")], Checks("US", 4), counts)
    assert isinstance(decoded[0], Event)
    assert counts.calls == 1


async def test_a_count_still_ahead_after_the_refresh_is_refused_one_refresh_per_batch() -> None:
    counts = Counts(4)
    batch = [placed_by_five("a@x.io"), placed_by_five("b@x.io", offset=1)]
    decoded = await decode_current(batch, Checks("US", 4), counts)
    assert all(isinstance(d, PlacedAheadError) and d.code == "partition" for d in decoded)
    assert counts.calls == 1


async def test_a_batch_with_no_record_ahead_asks_for_no_refresh() -> None:
    counts = Counts(5)
    home = partition_of(key_of(TENANT), 4)
    body = encode("add", TENANT, RuleType.EMAIL, ["a@x.io"], region="US")
    decoded = await decode_current([record(body, key=key_of(TENANT), partition=home)],
                                   Checks("US", 4), counts)
    assert isinstance(decoded[0], Event)
    assert counts.calls == 0


async def test_a_failed_refresh_decides_nothing() -> None:
    """The error reaches the loop, which backs off and fetches again: no dead letter."""

    async def broker_gone() -> int:
        raise KafkaTimeoutError("metadata not refreshed")

    with pytest.raises(KafkaTimeoutError):
        await decode_current([placed_by_five("a@x.io")], Checks("US", 4), broker_gone)

