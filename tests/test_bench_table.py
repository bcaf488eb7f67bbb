"""bench.table and the report built on it: every table of the report is well formed."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from bench import report
from bench.data import make_data
from bench.options import parse_args
from bench.results import Findings, Profile, Run
from bench.table import fmt, ratio, table


def run(contender: int, payload: str = "small", conns: int = 16, workers: int = 1,
        rps: float = 1000.0) -> Run:
    return Run(contender, workers, payload, conns, rps, 1.0, 2.0, 3.0, 50.0, 500.0, 40.0, 5.0,
               0, 10_000, 30.0, 20.0, 0.0, 0.0)


def test_table_aligns_each_column_as_asked() -> None:
    assert table(["#", "name", "req/s"], "llr", [["1", "a", "10"], ["2", "b", "20"]]) == [
        "| # | name | req/s |",
        "|---|---|--:|",
        "| 1 | a | 10 |",
        "| 2 | b | 20 |",
    ]


def test_table_refuses_a_row_of_the_wrong_width() -> None:
    with pytest.raises(ValueError, match="row of 2 cells"):
        table(["a", "b", "c"], "lll", [["1", "2"]])


def test_table_refuses_an_alignment_that_does_not_fit() -> None:
    with pytest.raises(ValueError, match="does not fit 2 columns"):
        table(["a", "b"], "l", [])
    with pytest.raises(ValueError, match="does not fit 2 columns"):
        table(["a", "b"], "lc", [])


def test_fmt_and_ratio() -> None:
    assert fmt(1234567.4) == "1,234,567"
    assert fmt(0.5, 2) == "0.50"
    assert ratio(50.0, 200.0) == "0.25×"
    assert ratio(50.0, None) == "–"
    assert ratio(50.0, 0.0) == "–"


def table_blocks(text: str) -> list[list[str]]:
    blocks: list[list[str]] = []
    previous = False
    for line in text.splitlines():
        is_row = line.startswith("|")
        if is_row and not previous:
            blocks.append([])
        if is_row:
            blocks[-1].append(line)
        previous = is_row
    return blocks


def test_every_table_of_a_report_has_rows_as_wide_as_its_header(tmp_path: Path) -> None:
    data = make_data(tmp_path, filler=10, unique_docs=2)
    opts = parse_args(["--quick", "--results", str(tmp_path)])
    runs = [run(n, p, c, w) for n in (1, 2, 5) for w in (1, 2) for c in (1, 16)
            for p in ("small",)] + [run(n, p) for n in (1, 2, 5) for p in ("large", "unique")]
    half = run(5, "half", conns=7)
    half.target_rps = 800.0
    profile = Profile(5, "small", 16, tmp_path / "p.raw.txt", None, [("f (proxy/x.py)", 3, 9)],
                      10, 3, 250, [("g (rules/y.py)", 9)])
    found = Findings([*runs, half], {(5, 1): "yes (3 removed)"}, ["a note"], [profile], "kafka")
    text = report.render(report.Context(opts, found, data, dict.fromkeys((
        "nproc", "cpu", "memory", "kernel", "python", "aiohttp", "nginx", "wrk", "redis"), "?"),
        dt.datetime(2026, 12, 1, 12, 0), 60.0, ["--quick"]))
    blocks = table_blocks(text)
    assert len(blocks) == 8  # summary, small ×2 workers, large, unique, half, profile ×2
    for block in blocks:
        assert len(block) >= 3
        assert {line.count("|") for line in block} == {block[0].count("|")}, block
    assert "| 5 | denyproxy, memory store | 16 | 1,000 | 1.00× |" in text
    assert "yes (3 removed)" in text
