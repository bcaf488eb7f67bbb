"""`denyproxy consume`, except that after its N-th store write it writes the offsets it
mirrored to a file and hangs before the Kafka commit, so a test can SIGKILL the process exactly
between the Redis write and the commit.

    python tests/consume_then_hang.py consume --kafka … --redis …   (N and the file from env)
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import orjson

from proxy.cli import main
from rules.consumer import RuleConsumer
from rules.model import RuleChange

AFTER = int(os.environ["DENYPROXY_TEST_HANG_AFTER"])
SIGNAL = Path(os.environ["DENYPROXY_TEST_HANG_FILE"])
real_write = RuleConsumer.write
writes = 0


async def write_then_hang(
    self: RuleConsumer, changes: Sequence[RuleChange], offsets: Mapping[int, int]
) -> bool:
    global writes
    fresh = await real_write(self, changes, offsets)
    writes += 1
    if writes >= AFTER:
        SIGNAL.write_bytes(orjson.dumps({str(p): o for p, o in offsets.items()}))  # noqa: ASYNC240  # tiny, once
        await asyncio.Event().wait()  # the commit never comes: SIGKILL arrives here
    return fresh


RuleConsumer.write = write_then_hang  # type: ignore[method-assign]  # the crash point under test
sys.exit(main(sys.argv[1:]))
