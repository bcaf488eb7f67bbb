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


async def _growing(survivors: int) -> list[int]:
    """Containers that stay (a cache filling with new contacts) while the clock runs; the
    generations of the collections that ran meanwhile."""
    ran: list[int] = []

    def seen(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            ran.append(info["generation"])

    kept: list[list[int]] = []
    gc.callbacks.append(seen)
    try:
        for i in range(survivors):
            kept.append([i])
            if i % 2000 == 0:
                await asyncio.sleep(0.002)
    finally:
        gc.callbacks.remove(seen)
    return ran


@pytest.mark.usefixtures("restored")
async def test_cpython_alone_starts_full_collections_as_the_old_generation_grows() -> None:
    heap.settle()
    gc.set_threshold(2000, 10, 10)  # the clock's middle collections, by CPython's count
    assert 2 in await _growing(400_000)


@pytest.mark.usefixtures("restored")
async def test_while_the_clock_runs_only_it_starts_a_full_collection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    heap.settle()
    gc.set_threshold(2000, 10, 10)  # young collections by the count too, as under load
    monkeypatch.setattr(heap, "YOUNG_EVERY", 0.001)
    ran = await heap.collecting(_growing(400_000))
    assert ran.count(1) > 0 and 2 not in ran  # the clock's full one is minutes away
    assert gc.get_threshold()[2] == 10  # restored when main returns
