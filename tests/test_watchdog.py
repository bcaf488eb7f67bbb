"""The one-timer watchdog that bounds the wait for the upstream's answer (proxy/watchdog.py):
it must behave as `asyncio.timeout` did (the 504 path itself: test_forward.py)."""

from __future__ import annotations

import asyncio

import pytest

from proxy.watchdog import Watchdog


async def _wait_forever(watchdog: Watchdog) -> None:
    with watchdog.bounded():
        await asyncio.Event().wait()


async def test_a_wait_past_its_deadline_raises_timeout_and_leaves_the_task_uncancelled() -> None:
    watchdog = Watchdog(0.05)
    with pytest.raises(TimeoutError):
        await _wait_forever(watchdog)
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0
    assert len(watchdog) == 0
    await asyncio.sleep(0)  # no cancel left pending for the next await


async def test_a_wait_that_ends_in_time_returns_its_result_and_is_forgotten() -> None:
    watchdog = Watchdog(30)
    done = asyncio.Event()
    done.set()
    with watchdog.bounded():
        assert len(watchdog) == 1
        await done.wait()
    assert len(watchdog) == 0


async def test_many_waits_all_expire_and_later_ones_after_them_still_do() -> None:
    watchdog = Watchdog(0.05)
    first = await asyncio.gather(*(_wait_forever(watchdog) for _ in range(50)),
                                 return_exceptions=True)
    assert all(isinstance(r, TimeoutError) for r in first)
    assert len(watchdog) == 0
    with pytest.raises(TimeoutError):  # the timer is armed again for a new wait
        await _wait_forever(watchdog)


async def test_the_timer_of_a_finished_wait_serves_the_next_one() -> None:
    watchdog = Watchdog(0.2)
    done = asyncio.Event()
    done.set()
    with watchdog.bounded():  # arms the timer at its own deadline, then leaves
        await done.wait()
    later = asyncio.create_task(_wait_forever(watchdog))
    await asyncio.sleep(0)
    assert len(watchdog) == 1
    with pytest.raises(TimeoutError):
        await later  # expires at its own deadline, after the timer re-armed for it
    assert len(watchdog) == 0


async def test_a_cancel_from_elsewhere_stays_a_cancel() -> None:
    watchdog = Watchdog(30)
    task = asyncio.create_task(_wait_forever(watchdog))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(watchdog) == 0
