"""Whether the rule store is complete, as one state with its transitions in one table.

LOADING      the store is not complete: this consumer replays the topic into it.
CATCHING_UP  the store is marked complete (by a group member), this consumer is still behind.
READY        the store is complete and this consumer has caught up once; rebalances keep it.
REBUILDING   the store lost its state (flushed, restarted empty): a replay is due.
STOPPED      the loop was stopped.
CRASHED      the loop died of an error that is not transient.
"""

from __future__ import annotations

import logging
from enum import Enum

log = logging.getLogger(__name__)


class Readiness(Enum):
    LOADING = "loading"
    CATCHING_UP = "catching-up"
    READY = "ready"
    REBUILDING = "rebuilding"
    STOPPED = "stopped"
    CRASHED = "crashed"


class Signal(Enum):
    """What the loop observed."""

    POSITIONED_COMPLETE = "positioned on a store marked complete"
    POSITIONED_INCOMPLETE = "positioned on a store not marked complete"
    CAUGHT_UP = "reached the end offsets seen when positioned"
    MARKED_COMPLETE = "marked the store complete"
    STORE_LOST = "the store lost its ready marker"
    REBUILT = "reset the store's offsets and sought to the beginning"
    STOPPED = "stopped"
    CRASHED = "crashed"


_R = Readiness
_LIVE = (_R.LOADING, _R.CATCHING_UP, _R.READY, _R.REBUILDING)

TRANSITIONS: dict[Signal, dict[Readiness, Readiness]] = {
    Signal.POSITIONED_COMPLETE: {
        _R.LOADING: _R.CATCHING_UP,
        _R.CATCHING_UP: _R.CATCHING_UP,
        _R.READY: _R.READY,
    },
    Signal.POSITIONED_INCOMPLETE: {
        _R.LOADING: _R.LOADING,
        _R.CATCHING_UP: _R.LOADING,
        _R.READY: _R.LOADING,
    },
    Signal.CAUGHT_UP: {_R.CATCHING_UP: _R.READY},
    Signal.MARKED_COMPLETE: {_R.LOADING: _R.READY},
    Signal.STORE_LOST: {
        _R.LOADING: _R.REBUILDING,
        _R.CATCHING_UP: _R.REBUILDING,
        _R.READY: _R.REBUILDING,
        _R.REBUILDING: _R.REBUILDING,
    },
    Signal.REBUILT: {_R.REBUILDING: _R.LOADING},
    Signal.STOPPED: dict.fromkeys(_LIVE, _R.STOPPED),
    Signal.CRASHED: dict.fromkeys(_LIVE, _R.CRASHED),
}
"""Every transition; a signal not listed for a state leaves that state as it is."""


class ReadinessState:
    """The consumer's one readiness state, changed only through `advance`."""

    def __init__(self) -> None:
        self.state = Readiness.LOADING
        self.rebuild_reason = ""

    def advance(self, signal: Signal) -> Readiness:
        new = TRANSITIONS[signal].get(self.state, self.state)
        if new is not self.state:
            log.debug("rule consumer: %s -> %s (%s)", self.state.value, new.value, signal.value)
        self.state = new
        return new

    def store_lost(self, why: str) -> None:
        """A rebuild is due; `why` is logged when it runs."""
        self.rebuild_reason = why
        self.advance(Signal.STORE_LOST)

    @property
    def store_complete(self) -> bool:
        """The store is (as far as this consumer knows) marked complete."""
        return self.state in (Readiness.CATCHING_UP, Readiness.READY)

    @property
    def rebuild_due(self) -> bool:
        return self.state is Readiness.REBUILDING
