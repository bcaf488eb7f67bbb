"""The cap on the upstream client's connections: at most `limit` exist at once (in use and
idle); callers beyond it wait, first come first served, for one released or closed.

A counter and a deque of futures: under the cap a caller pays one comparison. A released
connection, or the slot of a closed one, goes straight to the first live waiter, so no
newcomer overtakes it and no herd wakes up for one connection.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")

MAX_CONNECTIONS = 100
"""Connections at once (in use and idle), aiohttp's default; `--upstream-max-connections`."""


@dataclass(slots=True)
class Slots(Generic[T]):
    """`used` slots of `limit`; a waiter's future gets a released `T`, or None for a slot."""

    limit: int
    used: int = 0
    waiters: deque[asyncio.Future[T | None]] = field(default_factory=deque)

    def take(self) -> bool:
        """A slot now, if one is free (a live waiter only exists while all are taken)."""
        if self.used < self.limit:
            self.used += 1
            return True
        return False

    def hand(self, item: T) -> bool:
        """A released `item` to the first live waiter; False when nobody waits."""
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():  # a cancelled one is skipped here, never searched for
                waiter.set_result(item)
                return True
        return False

    def free(self) -> None:
        """A connection closed (or never opened): its slot to the first live waiter, or back."""
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.used -= 1

    async def wait(
        self, loop: asyncio.AbstractEventLoop, returned: Callable[[T], None]
    ) -> T | None:
        """Queue until a connection (a `T`) or a slot (None) is handed over. A waiter cancelled
        (its timeout) after the handover gives it on (`returned`, or `free`): nothing leaks."""
        waiter: asyncio.Future[T | None] = loop.create_future()
        self.waiters.append(waiter)
        try:
            return await waiter
        except BaseException:
            if not waiter.done():
                waiter.cancel()  # not by its task (an error thrown in): never handed to
            elif not waiter.cancelled() and (got := waiter.result()) is not None:
                returned(got)
            elif not waiter.cancelled():
                self.free()
            raise
