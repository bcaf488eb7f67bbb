"""proxy.heap: what start-up leaves to the collector (the bench figures are in bench/)."""

from __future__ import annotations

import asyncio
import gc
from collections import OrderedDict
from collections.abc import Iterator

import pytest

from proxy import heap


@pytest.fixture
def restored() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restored")
def test_settle_freezes_what_start_up_built_and_raises_the_young_threshold() -> None:
    gc.unfreeze()
    built_at_start_up = [object(), {"a": 1}]  # tracked containers alive before settle
    heap.settle()
    assert gc.get_freeze_count() > 0
    assert not any(gc.is_tracked(o) and o in gc.get_objects() for o in built_at_start_up[1:])
    assert gc.get_threshold()[0] == heap.GEN0_THRESHOLD > 700


@pytest.mark.usefixtures("restored")
def test_cyclic_garbage_is_still_collected_after_settle() -> None:
    heap.settle()
    cycle: list[object] = []
    cycle.append(cycle)
    del cycle
    assert gc.collect() >= 1


async def _churn(entries: int, rounds: int) -> int:
    """A full bounded cache whose every new entry evicts an old one, as the normalise caches
    do under distinct contacts; the largest young generation seen between steps."""
    cache: OrderedDict[int, tuple[str, list[int]]] = OrderedDict()
    largest = 0
    for i in range(entries * rounds):
        cache[i] = (str(i), [i])  # two tracked containers per entry
        if len(cache) > entries:
            cache.popitem(last=False)
        if i % 1000 == 0:
            await asyncio.sleep(0.003)
            largest = max(largest, len(gc.get_objects(0)))
    return largest


@pytest.mark.usefixtures("restored")
async def test_without_the_clock_evictions_hide_a_growing_young_generation() -> None:
    heap.settle()
    assert await _churn(30_000, 3) > 40_000  # CPython's count alone: one long pause later


@pytest.mark.usefixtures("restored")
async def test_the_clock_keeps_the_young_generation_small(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    heap.settle()
    monkeypatch.setattr(heap, "YOUNG_EVERY", 0.001)
    assert await heap.collecting(_churn(30_000, 3)) < 10_000


async def test_collecting_returns_what_main_returns_and_stops_its_clock() -> None:
    async def main() -> str:
        return "done"

    assert await heap.collecting(main()) == "done"
    await asyncio.sleep(0)
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "denyproxy-gc"]
