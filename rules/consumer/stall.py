"""Whether the consumer advances: seconds since it last made progress while behind.

A partition is fresh while it has nothing to apply or its applied offset moves; once it is
behind and stuck (the store refuses writes, a record cannot be dead-lettered) its age grows.
The ages go to a gauge, to `/readyz` detail, and (as a heartbeat) to the store, where
proxies in other processes read them for `--max-rule-staleness`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from rules import metrics


@dataclass(slots=True)
class Progress:
    """Per assigned partition: when it was last fresh (wall clock) and its last known lag."""

    fresh: dict[int, float] = field(default_factory=dict)
    lag: dict[int, int] = field(default_factory=dict)
    problem: str = ""
    """Why the loop last failed to advance (cleared when it advances)."""

    def track(self, partitions: set[int], now: float | None = None) -> None:
        """Follow exactly these partitions; a new one starts fresh."""
        now = time.time() if now is None else now
        self.fresh = {p: self.fresh.get(p, now) for p in partitions}
        self.lag = {p: lag for p, lag in self.lag.items() if p in partitions}

    def lagging(self, lag: dict[int, int], now: float | None = None) -> None:
        """Lag seen after a step; a partition with nothing to apply is fresh."""
        now = time.time() if now is None else now
        self.lag.update(lag)
        for p, behind in lag.items():
            if behind <= 0:
                self.fresh[p] = now

    def advanced(self, partitions: set[int], now: float | None = None) -> None:
        """A write moved these partitions on."""
        now = time.time() if now is None else now
        self.problem = ""
        for p in partitions:
            self.fresh[p] = now

    def stalled_seconds(self, now: float | None = None) -> float:
        """Seconds since the stalest partition that is behind last advanced (0 if none is)."""
        now = time.time() if now is None else now
        ages = [now - self.fresh.get(p, now) for p, behind in self.lag.items() if behind > 0]
        return max([0.0, *ages])

    def detail(self, threshold: float) -> str | None:
        """For `/readyz`: why the consumer has been stuck `threshold` seconds or more."""
        stalled = self.stalled_seconds()
        if stalled < threshold:
            return None
        return f"rule consumer stalled {stalled:.0f} s: {self.problem or 'no progress'}"

    def heartbeat(self) -> dict[int, float]:
        """Per partition, when it was last fresh: what proxies compare with their bound."""
        return dict(self.fresh)

    def observe(self) -> float:
        stalled = self.stalled_seconds()
        metrics.CONSUMER_STALLED.set(stalled)
        return stalled
