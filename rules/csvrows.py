"""Reading a CSV file for import: numbered rows, the chosen column's cell, UTF-8 checked per row.

The file is decoded as UTF-8 (a BOM at its start is dropped). Bytes that are not UTF-8 never
become U+FFFD: they are kept as lone surrogates (`surrogateescape`), so the row they sit in is
rejected at its line number with the reason `NOT_UTF8`, and the rejected-rows file can show
the original bytes as `\\xe9` escapes. The rows are read lazily: a 1 GB file never sits in memory.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

NOT_UTF8 = "not valid UTF-8"


class CsvReader(Protocol):
    """What we use of `csv.reader`'s object: its rows and the line it has read up to."""

    line_num: int

    def __iter__(self) -> CsvReader: ...
    def __next__(self) -> list[str]: ...


class CsvWriter(Protocol):
    """What we use of `csv.writer`'s object."""

    def writerow(self, row: Iterable[object], /) -> object: ...
"""The reason of a row whose cell holds bytes that are not UTF-8."""

SPANS_LINES = "value spans several lines (a quote left open takes in the lines after it)"
"""The reason of a cell with a line break: one stray `"` would swallow every later row
into one rejected value, so say so rather than "not a valid email"."""

BLOCK_ROWS = 20_000
"""Rows classified together (in a worker process when the import runs several)."""

_HEADER_NOT = re.compile(r"[@.\d]")  # a cell with one of these is a value, not a column name
_UNDECODED = re.compile("[\udc80-\udcff]")  # what surrogateescape leaves for each bad byte


class ImportFileError(ValueError):
    """The file cannot be imported as asked (missing, unreadable, no such column)."""


def undecodable(text: str) -> bool:
    """Whether `text` holds bytes that were not UTF-8 (fast for ASCII, the common case)."""
    return not text.isascii() and _UNDECODED.search(text) is not None


def shown(text: str) -> str:
    """`text` printable as UTF-8: undecodable bytes as `\\xNN` escapes, never as U+FFFD."""
    if not undecodable(text):
        return text
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def open_csv(path: Path, stack: ExitStack) -> tuple[IO[bytes], CsvReader]:
    """Binary file (its position drives the progress bar) under a streaming CSV reader."""
    try:
        raw = stack.enter_context(open(path, "rb"))  # noqa: SIM115 - closed by the ExitStack
    except OSError as exc:
        raise ImportFileError(f"cannot read {path}: {exc.strerror}") from None
    text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="")
    return raw, csv.reader(text)


def first_row(
    reader: CsvReader, column: str | None
) -> tuple[int, list[str] | None, bool]:
    """Column index, the first row if it is data (else None), and whether it was a header.

    Without `--column` the first row is a header when its first cell has no `@`, dot or
    digit (every email, phone, domain and URL has one). A first value that is merely
    rejected (`gmail.com` as a domain, bad bytes) is data: rejected at line 1, never skipped.
    """
    try:
        first = next(reader)
    except StopIteration:
        return 0, None, False
    except csv.Error as exc:
        raise ImportFileError(f"the first row is not CSV: {exc}") from None
    if column is not None:
        names = [c.strip().lower() for c in first]
        if column.strip().lower() not in names:
            raise ImportFileError(f"--column {column!r} is not in the header row")
        return names.index(column.strip().lower()), None, True
    cell = first[0].strip() if first else ""
    if cell and not undecodable(cell) and not _HEADER_NOT.search(cell):
        return 0, None, True
    return 0, first, False


def rows(
    reader: CsvReader, first: list[str] | None
) -> Iterator[tuple[int, list[str] | None]]:
    """(line number, row) pairs; an unparseable row comes as None, at its line."""
    previous = reader.line_num
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
        previous = reader.line_num


@dataclass(slots=True)
class Block:
    """Consecutive rows: line numbers, their cells, and why a row has no value to classify."""

    lines: list[int] = field(default_factory=list)
    cells: list[str] = field(default_factory=list)
    early: list[str | None] = field(default_factory=list)
    position: int = 0

    def to_classify(self) -> list[str]:
        """The cells to normalise; "" where the row is already rejected."""
        pairs = zip(self.cells, self.early, strict=True)
        return [cell if early is None else "" for cell, early in pairs]


def blocks(
    numbered: Iterator[tuple[int, list[str] | None]], column: int, raw: IO[bytes]
) -> Iterator[Block]:
    """Rows in blocks of BLOCK_ROWS, each with the file position after it."""
    block = Block()
    for line, row in numbered:
        cell = row[column].strip() if row is not None and column < len(row) else None
        block.lines.append(line)
        block.cells.append(cell or "")
        block.early.append(_no_value(row, cell))
        if len(block.lines) >= BLOCK_ROWS:
            block.position = raw.tell()
            yield block
            block = Block()
    if block.lines:
        block.position = raw.tell()
        yield block


def _no_value(row: list[str] | None, cell: str | None) -> str | None:
    """Why a row gives nothing to classify, or None when its cell is a candidate."""
    if row is None:
        return "unreadable CSV row"
    if cell is None:
        return "missing column"
    if not cell:
        return "empty"
    if "\n" in cell or "\r" in cell:
        return SPANS_LINES
    return NOT_UTF8 if undecodable(cell) else None


class Rejects:
    """The rejected-rows CSV (line, reason[, value]), created on the first reject."""

    def __init__(self, path: Path, include_values: bool, stack: ExitStack) -> None:
        self.path, self._include_values, self._stack = path, include_values, stack
        self._writer: CsvWriter | None = None

    def add(self, line: int, reason: str, value: str | None) -> None:
        if self._writer is None:
            self._writer = self._open()
        row: list[object] = [line, reason]
        if self._include_values:
            row.append(shown(value or ""))
        self._writer.writerow(row)

    def _open(self) -> CsvWriter:
        try:
            out = self._stack.enter_context(
                open(self.path, "w", newline="", encoding="utf-8")  # noqa: SIM115 - ExitStack
            )
        except OSError as exc:
            raise ImportFileError(f"cannot write {self.path}: {exc.strerror}") from None
        writer = csv.writer(out)
        writer.writerow(["line", "reason", "value"] if self._include_values else ["line", "reason"])
        return writer
