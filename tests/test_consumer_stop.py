"""Stopping a rule consumer ends its loop even when a cancellation is lost (real broker, real
Redis). Python 3.11's `asyncio.wait_for`, which redis-py wraps around every command it sends,
drops a cancellation that lands as the command completes (gh-86296): one cancel was not enough,
and a test's `consumer.stop()` waited until pytest-timeout's 120 s guard (rules/consumer/cancel.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import pytest

from rules.consumer import RuleConsumer
from rules.consumer.cancel import cancel_and_wait
from rules.kafka import KafkaOptions
from rules.model import tenant_of
from rules.publisher import RulePublisher
from rules.store import MirroredRedisStore
from tests import test_consumer as base
from tests.harness import eventually
from tests.test_consumer import FAST, wait_applied

options, topic, publisher, running = base.options, base.topic, base.publisher, base.running


async def test_stop_ends_a_loop_that_swallowed_the_first_cancellation(
    options: KafkaOptions, topic: str, store: MirroredRedisStore, publisher: RulePublisher,
    running: list[RuleConsumer], monkeypatch: pytest.MonkeyPatch,
) -> None:
    metas = [await publisher.publish("add", tenant_of("k"), "email", ["jane@acme.com"])]
    consumer = RuleConsumer(options, topic, f"{topic}-g", store, "US", tuning=FAST)
    running.append(consumer)
    await consumer.start()
    await wait_applied(store, metas)
    inside, swallowed = asyncio.Event(), []
    real = store.set_heartbeat

    async def heartbeat_as_wait_for_does(fresh: Mapping[int, float]) -> None:
        """Held until cancelled, then completes and returns, as 3.11's wait_for does when the
        cancellation and the inner call's completion meet (once)."""
        if not swallowed:
            inside.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                swallowed.append(True)
        await real(fresh)

    monkeypatch.setattr(store, "set_heartbeat", heartbeat_as_wait_for_does)
    await eventually(inside.is_set, "the loop to write its heartbeat")

    async with asyncio.timeout(15):
        await consumer.stop()

    assert swallowed == [True], "the first cancellation was lost inside the loop"
    assert consumer.task is not None and consumer.task.done()


async def test_cancel_and_wait_gives_up_after_its_bound_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    deaf = True

    async def ignores_cancels_while_deaf() -> None:
        while deaf:
            try:
                await asyncio.sleep(0.05)
            except asyncio.CancelledError:
                continue

    task = asyncio.create_task(ignores_cancels_while_deaf())
    await asyncio.sleep(0.01)  # inside its try: a task cancelled before its first step just ends
    assert not await cancel_and_wait(task, "a deaf loop", within=0.3)
    assert "a deaf loop did not end within 0.3 s of being cancelled" in caplog.text
    deaf = False
    assert await cancel_and_wait(task, "a deaf loop", within=5)
