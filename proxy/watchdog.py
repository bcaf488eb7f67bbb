"""One timer for every wait on the upstream's answer, instead of one per request.

`asyncio.timeout` arms and cancels a loop timer per use (~7 µs, two `getpid` calls inside
asyncio); every forwarded request waited under one. All these waits share one timeout, so
their deadlines come in the order they started: the oldest is always the next to expire, and
one timer armed for it is enough (the same watchdog as rules/store/link.py's).
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any


class Watchdog:
    """Bounds waits of `timeout` seconds: a wait past its deadline has its task cancelled and
    raises TimeoutError, as `asyncio.timeout` would (a cancel from elsewhere stays one). One
    per event loop: it keeps the loop of its first wait."""

    __slots__ = ("_loop", "_timer", "_waits", "timeout")

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._waits: dict[Bounded, None] = {}  # in start order, so in deadline order
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __len__(self) -> int:
        """Waits in flight."""
        return len(self._waits)

    def bounded(self) -> Bounded:
        """`with watchdog.bounded(): await …` (a plain context manager: it only registers)."""
        return Bounded(self)

    def enter(self, wait: Bounded) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        wait.deadline = self._loop.time() + self.timeout
        self._waits[wait] = None
        if self._timer is None:
            self._timer = self._loop.call_at(wait.deadline, self._expire)
        return self._loop

    def leave(self, wait: Bounded) -> None:
        self._waits.pop(wait, None)

    def _expire(self) -> None:
        """Cancel every wait past its deadline, then arm the timer for the oldest left."""
        self._timer = None
        assert self._loop is not None  # armed only once a wait set it
        now = self._loop.time()
        while self._waits:
            wait = next(iter(self._waits))
            if wait.deadline > now:
                self._timer = self._loop.call_at(wait.deadline, self._expire)
                return
            del self._waits[wait]
            wait.expire()


class Bounded:
    """One wait under a Watchdog."""

    __slots__ = ("_cancelling", "_task", "deadline", "expired", "watchdog")

    def __init__(self, watchdog: Watchdog) -> None:
        self.watchdog = watchdog
        self.deadline = 0.0
        self.expired = False

    def __enter__(self) -> None:
        loop = self.watchdog.enter(self)
        task = asyncio.current_task(loop)
        if task is None:
            self.watchdog.leave(self)
            raise RuntimeError("Watchdog.bounded() must be used inside a task")
        self._task: asyncio.Task[Any] = task
        self._cancelling = task.cancelling()

    def expire(self) -> None:
        self.expired = True
        self._task.cancel()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.watchdog.leave(self)
        # uncancel() whenever it expired (our cancel is undone), as asyncio.timeout does
        undone = self.expired and self._task.uncancel() <= self._cancelling
        if undone and kind is asyncio.CancelledError:
            raise TimeoutError from exc
