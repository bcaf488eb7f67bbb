"""Streaming CSV import: rows → normalised values → events of ≤ 10,000 values per type.

The file is read row by row by rules/csvrows.py (a 1 GB file never sits in memory; bytes that
are not UTF-8 reject their row); at most `window` events are in flight to Kafka at once.
Rejected rows are written to a CSV of line numbers and reasons; the values themselves only
with `include_values` (they are emails and phones).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from rules.csvrows import Block, ImportFileError, Rejects, blocks, first_row, open_csv, rows
from rules.model import MAX_VALUES_PER_CHANGE, ChangeMeta, Op, RuleType
from rules.normalize import Classified, classify
from rules.progress import Progress

__all__ = ["ImportFileError", "ImportSpec", "ImportSummary", "classify_block", "import_csv"]


class Sender(Protocol):
    async def send_normalised(
        self, op: Op, tenant: str, rule_type: RuleType, values: list[str],
        meta: ChangeMeta | None = None,
    ) -> asyncio.Future[Any]: ...


@dataclass(frozen=True, slots=True)
class ImportSpec:
    """What to import and where to put the rejects."""

    path: Path
    tenant: str
    region: str
    op: Op = "add"
    rule_type: RuleType | None = None
    column: str | None = None
    allow_freemail: bool = False
    rejected_path: Path | None = None
    include_values: bool = False
    meta: ChangeMeta | None = None
    """The reason and expiry every imported rule records (the catalogue's v2 fields)."""

    @property
    def rejects_to(self) -> Path:
        return self.rejected_path or self.path.with_name(self.path.name + ".rejected.csv")


@dataclass(slots=True)
class ImportSummary:
    """Counts for the final report; `published` counts values (rows), not distinct values."""

    rows: int = 0
    published: int = 0
    events: int = 0
    rejected: int = 0
    header: bool = False
    by_type: dict[RuleType, int] = field(default_factory=lambda: dict.fromkeys(RuleType, 0))
    reasons: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    rejected_path: Path | None = None

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


Classifier = Callable[[str], Classified]


def classifier(rule_type: RuleType | None, region: str, allow_freemail: bool) -> Classifier:
    """A row value → (type, normalised value), or the reason it is rejected."""
    return partial(classify, rule_type=rule_type, region=region, allow_freemail=allow_freemail)


async def import_csv(
    spec: ImportSpec,
    sender: Sender,
    progress: Progress | None = None,
    *,
    jobs: int = 1,
    window: int = 32,
) -> ImportSummary:
    """Read, classify, chunk and send; returns once every event is acknowledged by Kafka.

    With jobs > 1, blocks of rows are normalised in that many processes (normalising is the
    slow part) while this one reads ahead and publishes; results are taken in file order.
    """
    run = _Run(spec, sender, window)
    with ExitStack() as stack:
        raw, reader = open_csv(spec.path, stack)
        run.rejects = Rejects(spec.rejects_to, spec.include_values, stack)
        column, first, run.summary.header = first_row(reader, spec.column)
        pool = _pool(jobs, stack)
        pending: deque[tuple[Block, asyncio.Future[list[Classified]]]] = deque()
        for block in blocks(rows(reader, first), column, raw):
            pending.append((block, _classify(pool, block, spec)))
            while len(pending) > max(jobs, 1) * 2:
                await run.take(*pending.popleft(), progress)
        while pending:
            await run.take(*pending.popleft(), progress)
        await run.finish(progress, raw.tell())
    run.summary.seconds = time.monotonic() - run.started
    return run.summary


def classify_block(
    cells: list[str], rule_type: RuleType | None, region: str, allow_freemail: bool
) -> list[Classified]:
    """Worker-process entry point (module level so it pickles)."""
    classify_cell = classifier(rule_type, region, allow_freemail)
    return [classify_cell(cell) if cell else "empty" for cell in cells]


def _pool(jobs: int, stack: ExitStack) -> ProcessPoolExecutor | None:
    if jobs <= 1:
        return None
    context = multiprocessing.get_context("spawn")  # never fork a threaded, looping process
    return stack.enter_context(ProcessPoolExecutor(max_workers=jobs, mp_context=context))


def _classify(
    pool: ProcessPoolExecutor | None, block: Block, spec: ImportSpec
) -> asyncio.Future[list[Classified]]:
    loop = asyncio.get_running_loop()
    cells = block.to_classify()
    if pool is None:
        done: asyncio.Future[list[Classified]] = loop.create_future()
        done.set_result(classify_block(cells, spec.rule_type, spec.region, spec.allow_freemail))
        return done
    return loop.run_in_executor(
        pool, classify_block, cells, spec.rule_type, spec.region, spec.allow_freemail
    )


class _Run:
    """One import's running state: counts, per-type buffers, events in flight, rejects."""

    def __init__(self, spec: ImportSpec, sender: Sender, window: int) -> None:
        self.spec, self.sender, self.window = spec, sender, window
        self.summary = ImportSummary()
        self.started = time.monotonic()
        self.buffers: dict[RuleType, list[str]] = {t: [] for t in RuleType}
        self.in_flight: deque[asyncio.Future[object]] = deque()
        self.rejects: Rejects

    async def take(
        self, block: Block, results: asyncio.Future[list[Classified]], progress: Progress | None
    ) -> None:
        """Account for a classified block, in file order; send full buffers as events."""
        summary = self.summary
        for line, cell, early, result in zip(
            block.lines, block.cells, block.early, await results, strict=True
        ):
            summary.rows += 1
            outcome = early or result
            if isinstance(outcome, str):
                summary.rejected += 1
                summary.reasons[outcome] = summary.reasons.get(outcome, 0) + 1
                self.rejects.add(line, outcome, cell)
                continue
            buffer = self.buffers[outcome[0]]
            buffer.append(outcome[1])
            if len(buffer) >= MAX_VALUES_PER_CHANGE:
                await self.send(outcome[0], buffer, self.window)
        if progress is not None:
            progress.update(summary.rows, block.position, summary.rejected)

    async def send(self, rule_type: RuleType, buffer: list[str], window: int) -> None:
        """One event from a type's buffer; wait for old acks so memory stays bounded."""
        values = buffer[:]
        buffer.clear()
        self.in_flight.append(
            await self.sender.send_normalised(
                self.spec.op, self.spec.tenant, rule_type, values, self.spec.meta
            )
        )
        self.summary.events += 1
        self.summary.published += len(values)
        self.summary.by_type[rule_type] += len(values)
        while len(self.in_flight) > window:
            await self.in_flight.popleft()

    async def finish(self, progress: Progress | None, position: int) -> None:
        """Send what the buffers hold and wait for every acknowledgement."""
        for rule_type, buffer in self.buffers.items():
            if buffer:
                await self.send(rule_type, buffer, 0)
        while self.in_flight:
            await self.in_flight.popleft()
        self.summary.rejected_path = self.rejects.path if self.summary.rejected else None
        if progress is not None:
            progress.finish(self.summary.rows, position, self.summary.rejected)
