"""Ending a background task for sure: cancel it again until it ends, within a bound.

One `Task.cancel()` is not enough on Python 3.11: `asyncio.wait_for` returns its inner call's
result and drops the cancellation when both land in the same loop turn (gh-86296, fixed in
3.12). redis-py wraps every command it sends in `wait_for` once a socket timeout is set, so a
consumer stopped while it writes its heartbeat ran on, and `stop()` waited for it forever.
"""

from __future__ import annotations

import asyncio
import logging
import time

log = logging.getLogger("rules.consumer")

STOP_WITHIN = 10.0
"""Seconds a stop waits for the loop to end before it reports it and goes on closing."""
RECANCEL_EVERY = 0.5
"""A swallowed cancellation is repeated after this long (the loop ends at its next await)."""


async def cancel_and_wait(
    task: asyncio.Task[None], what: str, within: float = STOP_WITHIN
) -> bool:
    """Cancel `task` (again every RECANCEL_EVERY s) until it ended; False, and an error
    logged naming `what`, when it still runs after `within` seconds. Its outcome is dropped."""
    deadline = time.monotonic() + within
    while not task.done():
        left = deadline - time.monotonic()
        if left <= 0:
            log.error("%s did not end within %g s of being cancelled", what, within)
            return False
        task.cancel()
        await asyncio.wait([task], timeout=min(RECANCEL_EVERY, left))
    if not task.cancelled():
        task.exception()  # retrieved: a crash is the loop's own report, not the stopper's
    return True
