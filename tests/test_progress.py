"""rules/progress.py: the import progress bar as a log or a pipe sees it (not a terminal)."""

from __future__ import annotations

import io

from rules.progress import Progress


def test_off_a_terminal_the_bar_is_one_plain_line_with_percent_rows_per_second_and_rejects() -> (
    None
):
    out = io.StringIO()
    progress = Progress(total_bytes=1000, stream=out)

    progress.finish(rows=2500, position=1000, rejected=7)

    text = out.getvalue()
    assert "\r" not in text
    [line] = text.splitlines()
    assert line.startswith("100.0%|")
    assert "2,500 rows" in line and "rows/s" in line and "7 rejected" in line


def test_off_a_terminal_a_short_import_prints_no_zero_percent_line() -> None:
    out = io.StringIO()
    progress = Progress(total_bytes=1000, stream=out)

    progress.update(rows=10, position=0, rejected=0)

    assert out.getvalue() == ""


def test_the_last_line_shows_the_final_position_even_when_updates_were_rate_limited() -> None:
    out = io.StringIO()
    progress = Progress(total_bytes=4000, stream=out)
    for block in range(1, 5):
        progress.update(rows=block * 100, position=block * 1000, rejected=block)

    progress.finish(rows=400, position=4000, rejected=4)

    last = out.getvalue().splitlines()[-1]
    assert last.startswith("100.0%|") and "400 rows" in last and "4 rejected" in last
