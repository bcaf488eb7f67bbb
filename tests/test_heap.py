"""proxy.heap: what start-up leaves to the collector (the bench figures are in bench/)."""

from __future__ import annotations

import gc
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
