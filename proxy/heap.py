"""The garbage collector set for a proxy's heap, at the start of a `serve` process (or worker).

A filtered 79 kB body allocates tens of thousands of short-lived tuples that reference counting
frees on its own; at CPython's default threshold (700 new containers) the cycle collector still
runs dozens of times per body, and each full collection walks every tracked object, the bounded
per-value caches included (~260,000 when full). Freezing moves what start-up built (modules, the
public suffix list, phone metadata) out of every later collection; a higher first threshold runs
the collector ~70 times less often. Cyclic garbage (rare here: exceptions, futures) still goes.

CPython starts a young collection when container allocations minus deallocations pass the
threshold. Once the caches are full, every new entry evicts an old one: the two cancel, and the
young generation grows unseen to hundreds of thousands of cache entries, walked in one pause of
50 to 400 ms (measured with distinct contacts). So the serving loop also collects by the clock
(`collecting`): the young generation every `YOUNG_EVERY`, the middle one every
`MIDDLE_EVERY` young collections, everything every `FULL_EVERY`: short pauses, the same work.
While the clock runs the full collection is its alone: CPython starts one itself once ten middle
collections (the clock's count too) have passed and the old generation grew by a quarter, which
a stream of new contacts does in seconds: 35 to 135 ms pauses (distinct contacts, memory store).
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Coroutine
from typing import Any, TypeVar

GEN0_THRESHOLD = 50_000
"""Container allocations between young collections (CPython's default: 700)."""
YOUNG_EVERY = 0.02
"""Seconds between young collections by the clock (~1 ms each at a busy proxy's churn)."""
MIDDLE_EVERY = 10
"""Young collections between collections of the middle generation (as CPython: its pause
grows with the interval)."""
FULL_EVERY = 15_000
"""Young collections between full ones (5 minutes): cyclic garbage that lived past the middle
generation waits at most this long."""
NO_FULL = 2**30
"""The old generation's threshold while the clock runs: CPython never starts a full collection."""

T = TypeVar("T")


def settle() -> None:
    """Collect once, freeze what survived start-up (imports), raise the young threshold.

    Called where a serving process starts (proxy/cli.py, proxy/workers.py), never from the
    server coroutines: a process that runs many of them (the test suite) keeps its own."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, gen1, gen2)


async def collecting(main: Coroutine[Any, Any, T]) -> T:
    """Run a serving process's `main` with collections by the clock beside it (and no full
    collection but the clock's)."""
    young, middle, old = gc.get_threshold()
    gc.set_threshold(young, middle, NO_FULL)
    clock = asyncio.create_task(_by_the_clock(), name="denyproxy-gc")
    try:
        return await main
    finally:
        clock.cancel()
        gc.set_threshold(*gc.get_threshold()[:2], old)


async def _by_the_clock() -> None:
    ticks = 0
    while True:
        await asyncio.sleep(YOUNG_EVERY)
        ticks += 1
        gc.collect(2 if ticks % FULL_EVERY == 0 else 1 if ticks % MIDDLE_EVERY == 0 else 0)
