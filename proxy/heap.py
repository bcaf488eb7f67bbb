"""The garbage collector set for a proxy's heap, at the start of a `serve` process (or worker).

A filtered 79 kB body allocates tens of thousands of short-lived tuples that reference counting
frees on its own; at CPython's default threshold (700 new containers) the cycle collector still
runs dozens of times per body, and each full collection walks every tracked object, the bounded
per-value caches included (~260,000 when full). Freezing moves what start-up built (modules, the
public suffix list, phone metadata) out of every later collection; a higher first threshold runs
the collector ~70 times less often. Cyclic garbage (rare here: exceptions, futures) still goes.
"""

from __future__ import annotations

import gc

GEN0_THRESHOLD = 50_000
"""Container allocations between young collections (CPython's default: 700)."""


def settle() -> None:
    """Collect once, freeze what survived start-up (imports), raise the young threshold.

    Called where a serving process starts (proxy/cli.py, proxy/workers.py), never from the
    server coroutines: a process that runs many of them (the test suite) keeps its own."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, gen1, gen2)
