"""The import's progress bar: tqdm on a terminal, plain lines in a log or a pipe."""

from __future__ import annotations

import sys
from typing import IO

from tqdm import tqdm


class Progress:
    """tqdm over the bytes read (percentage and ETA) with rows, rows/s and rejects after it.

    On a terminal the bar redraws in place; elsewhere (a log, a pipe) each redraw is its own
    line, every few seconds.
    """

    _FORMAT = "{percentage:5.1f}%|{bar:30}| {elapsed}<{remaining}{postfix}"

    def __init__(self, total_bytes: int, stream: IO[str] | None = None) -> None:
        out = stream or sys.stderr
        tty = out.isatty()
        self._total = max(total_bytes, 1)
        self._bar = tqdm(
            total=self._total,
            file=out if tty else _Lines(out),
            bar_format=self._FORMAT,
            mininterval=0.2 if tty else 2.0,
            delay=0.0 if tty else 2.0,  # off a terminal, no line for a 0% start
            ascii=not tty,
            dynamic_ncols=tty,
        )

    def update(self, rows: int, position: int, rejected: int) -> None:
        """Redraw if due (tqdm rate-limits); `position` is bytes read so far."""
        self._bar.set_postfix_str(self._counts(rows, rejected), refresh=False)
        self._bar.update(min(position, self._total) - self._bar.n)

    def finish(self, rows: int, position: int, rejected: int) -> None:
        """The last state, drawn once more, then a newline."""
        self._bar.set_postfix_str(self._counts(rows, rejected), refresh=False)
        self._bar.update(min(position, self._total) - self._bar.n)
        self._bar.refresh()  # even within tqdm's `delay`: a short import still shows its line
        self._bar.close()

    def _counts(self, rows: int, rejected: int) -> str:
        elapsed = max(self._bar.format_dict["elapsed"], 1e-9)
        return f"{rows:,} rows  {rows / elapsed:,.0f} rows/s  {rejected:,} rejected"


class _Lines:
    """A stream for tqdm off a terminal: each redraw becomes one plain line, not a `CR` redraw."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._last = ""

    def write(self, text: str) -> None:
        line = text.strip("\r\n").rstrip()
        if line and line != self._last:  # close() redraws the state finish() just drew
            self._stream.write(line + "\n")
            self._last = line

    def flush(self) -> None:
        self._stream.flush()
