"""Streaming CSV import: rows → normalised values → events of ≤ 10,000 values per type.

The file is read row by row (a 1 GB file never sits in memory); at most `window` events are
in flight to Kafka at once. Rejected rows are written to a CSV of line numbers and reasons;
the values themselves only with `include_values` (they are emails and phones).
"""

from __future__ import annotations

import asyncio
import csv
import io
import multiprocessing
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import IO, Any, Protocol

from rules.model import MAX_VALUES_PER_CHANGE, Op, RuleType
from rules.normalize import Classified, classify
from rules.progress import Progress


class ImportFileError(ValueError):
    """The file cannot be imported as asked (missing, unreadable, no such column)."""


class Sender(Protocol):
    async def send_normalised(
        self, op: Op, tenant: str, rule_type: RuleType, values: list[str]
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


BLOCK_ROWS = 20_000
"""Rows classified together (in a worker process when jobs > 1)."""


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
        raw, reader = _open(spec.path, stack)
        run.rejects = _Rejects(spec.rejects_to, spec.include_values, stack)
        classify_cell = classifier(spec.rule_type, spec.region, spec.allow_freemail)
        column, first = _first_row(reader, spec.column, classify_cell, run.summary)
        pool = _pool(jobs, stack)
        pending: deque[tuple[_Block, asyncio.Future[list[Classified]]]] = deque()
        for block in _blocks(_rows(reader, first), column, raw):
            pending.append((block, _classify(pool, block, spec)))
            while len(pending) > max(jobs, 1) * 2:
                await run.take(*pending.popleft(), progress)
        while pending:
            await run.take(*pending.popleft(), progress)
        await run.finish(progress, raw.tell())
    run.summary.seconds = time.monotonic() - run.started
    return run.summary


@dataclass(slots=True)
class _Block:
    """Consecutive rows: line numbers, the cell to classify, or why there is none."""

    lines: list[int] = field(default_factory=list)
    cells: list[str] = field(default_factory=list)
    early: list[str | None] = field(default_factory=list)
    position: int = 0


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
    pool: ProcessPoolExecutor | None, block: _Block, spec: ImportSpec
) -> asyncio.Future[list[Classified]]:
    loop = asyncio.get_running_loop()
    if pool is None:
        done: asyncio.Future[list[Classified]] = loop.create_future()
        done.set_result(
            classify_block(block.cells, spec.rule_type, spec.region, spec.allow_freemail)
        )
        return done
    return loop.run_in_executor(
        pool, classify_block, block.cells, spec.rule_type, spec.region, spec.allow_freemail
    )


def _blocks(
    rows: Iterator[tuple[int, list[str] | None]], column: int, raw: IO[bytes]
) -> Iterator[_Block]:
    block = _Block()
    for line, row in rows:
        cell = row[column].strip() if row is not None and column < len(row) else None
        block.lines.append(line)
        block.cells.append(cell or "")
        block.early.append(None if cell else _no_value(row, cell))
        if len(block.lines) >= BLOCK_ROWS:
            block.position = raw.tell()
            yield block
            block = _Block()
    if block.lines:
        block.position = raw.tell()
        yield block


class _Run:
    """One import's running state: counts, per-type buffers, events in flight, rejects."""

    def __init__(self, spec: ImportSpec, sender: Sender, window: int) -> None:
        self.spec, self.sender, self.window = spec, sender, window
        self.summary = ImportSummary()
        self.started = time.monotonic()
        self.buffers: dict[RuleType, list[str]] = {t: [] for t in RuleType}
        self.in_flight: deque[asyncio.Future[object]] = deque()
        self.rejects: _Rejects

    async def take(
        self, block: _Block, results: asyncio.Future[list[Classified]], progress: Progress | None
    ) -> None:
        """Account for a classified block, in file order; send full buffers as events."""
        summary = self.summary
        for line, cell, early, result in zip(block.lines, block.cells, block.early, await results):
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
            await self.sender.send_normalised(self.spec.op, self.spec.tenant, rule_type, values)
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


def _open(path: Path, stack: ExitStack) -> tuple[IO[bytes], Iterator[list[str]]]:
    """Binary file (its position drives the progress bar) under a streaming CSV reader."""
    try:
        raw = stack.enter_context(open(path, "rb"))  # noqa: SIM115 - closed by the ExitStack
    except OSError as exc:
        raise ImportFileError(f"cannot read {path}: {exc.strerror}") from None
    text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline="")
    return raw, csv.reader(text)


def _first_row(
    reader: Iterator[list[str]], column: str | None, classify: Classifier, summary: ImportSummary
) -> tuple[int, list[str] | None]:
    """Column index, and the first row if it is data (None if it was a header row)."""
    try:
        first = next(reader)
    except StopIteration:
        return 0, None
    except csv.Error as exc:
        raise ImportFileError(f"the first row is not CSV: {exc}") from None
    if column is not None:
        names = [c.strip().lower() for c in first]
        if column.strip().lower() not in names:
            raise ImportFileError(f"--column {column!r} is not in the header row")
        summary.header = True
        return names.index(column.strip().lower()), None
    cell = first[0].strip() if first else ""
    if cell and isinstance(classify(cell), str):
        summary.header = True
        return 0, None
    return 0, first


def _no_value(row: list[str] | None, cell: str | None) -> str:
    if row is None:
        return "unreadable CSV row"
    return "empty" if cell == "" else "missing column"


def _rows(
    reader: Iterator[list[str]], first: list[str] | None
) -> Iterator[tuple[int, list[str] | None]]:
    """(line number, row) pairs; an unparseable row comes as None, at its line."""
    line_num: Callable[[], int] = lambda: reader.line_num  # type: ignore[attr-defined]
    previous = line_num()
    if first is not None:
        yield 1, first
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error:
            yield previous + 1, None
        else:
            yield previous + 1, row
        previous = line_num()


class _Rejects:
    """The rejected-rows CSV, created on the first reject."""

    def __init__(self, path: Path, include_values: bool, stack: ExitStack) -> None:
        self.path, self._include_values, self._stack = path, include_values, stack
        self._writer: csv._writer | None = None  # type: ignore[name-defined]

    def add(self, line: int, reason: str, value: str | None) -> None:
        if self._writer is None:
            self._writer = self._open()
        row: list[object] = [line, reason]
        if self._include_values:
            row.append(value or "")
        self._writer.writerow(row)

    def _open(self) -> csv._writer:  # type: ignore[name-defined]
        try:
            out = self._stack.enter_context(
                open(self.path, "w", newline="", encoding="utf-8")  # noqa: SIM115 - ExitStack
            )
        except OSError as exc:
            raise ImportFileError(f"cannot write {self.path}: {exc.strerror}") from None
        writer = csv.writer(out)
        writer.writerow(["line", "reason", "value"] if self._include_values else ["line", "reason"])
        return writer
