"""Per-request metrics counted in plain Python and read when scraped.

prometheus-client's Counter and Histogram take a lock per increment (a histogram two, after a
Python loop over its buckets): ~15 µs of every forwarded request under load. One process runs
one event loop, so a plain int or list is enough; a Collector turns them into samples at scrape
time. Multiprocess mode (`serve --workers N`) keeps prometheus-client's own file-backed
metrics: the parent sums what every worker wrote, so each increment must reach the files.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence
from itertools import accumulate
from typing import Any, Protocol

from prometheus_client import REGISTRY, Counter, Histogram, values
from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import INF, floatToGoString

MULTIPROCESS = values.ValueClass is not values.MutexValue
"""prometheus-client's own choice, made when it loaded (PROMETHEUS_MULTIPROC_DIR)."""


class Increments(Protocol):
    def inc(self, amount: float = 1) -> None: ...


class Labelled(Protocol):
    def labels(self, *labelvalues: Any, **labelkwargs: Any) -> Increments: ...


class Observes(Protocol):
    def observe(self, amount: float) -> None: ...


class Count:
    """One labelled child's count."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1) -> None:
        self.value += amount


class Counts(Collector):
    """A labelled counter: a child per label values, made on first use, as prometheus does."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str]) -> None:
        self.name, self.documentation, self.labelnames = name, documentation, list(labelnames)
        self.children: dict[tuple[str, ...], Count] = {}

    def labels(self, *labelvalues: Any, **labelkwargs: Any) -> Count:
        key = tuple(str(value) for value in labelvalues)
        if len(key) != len(self.labelnames) or labelkwargs:
            raise ValueError(f"{self.name}: label values are {self.labelnames}, by position")
        child = self.children.get(key)
        if child is None:
            child = self.children[key] = Count()
        return child

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for key, child in list(self.children.items()):
            family.add_metric(list(key), child.value)
        yield family


class Timings(Collector):
    """A histogram without labels: a bisect and two additions per observation."""

    def __init__(self, name: str, documentation: str, buckets: Sequence[float]) -> None:
        self.name, self.documentation = name, documentation
        self.bounds = [float(b) for b in buckets if b != INF] + [INF]
        # prometheus-client leaves floatToGoString unannotated; it writes its own `le` so
        self.les = [floatToGoString(b) for b in self.bounds]  # type: ignore[no-untyped-call]
        self.counts = [0] * len(self.bounds)
        self.total = 0.0

    def observe(self, amount: float) -> None:
        """Into the first bucket whose bound is ≥ `amount` (`le`), as prometheus-client does."""
        self.counts[bisect_left(self.bounds, amount)] += 1
        self.total += amount

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation)
        cumulative = accumulate(list(self.counts))
        family.add_metric([], [(le, float(count))
                               for le, count in zip(self.les, cumulative, strict=True)],
                          self.total)
        yield family


def counter(name: str, documentation: str, labelnames: Sequence[str]) -> Labelled:
    """A labelled counter: plain Python in one process, prometheus-client's across workers."""
    if MULTIPROCESS:
        return Counter(name, documentation, labelnames)
    counts = Counts(name, documentation, labelnames)
    REGISTRY.register(counts)
    return counts


def histogram(name: str, documentation: str, buckets: Sequence[float]) -> Observes:
    """A histogram without labels: plain Python in one process, prometheus-client's across
    workers."""
    if MULTIPROCESS:
        return Histogram(name, documentation, buckets=buckets)
    timings = Timings(name, documentation, buckets)
    REGISTRY.register(timings)
    return timings
