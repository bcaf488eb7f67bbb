"""bench.results and bench.compare: the JSON rows survive a round trip and compare by script."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from bench import compare
from bench.paths import RESULTS
from bench.pyspy import aggregate, frame_name, top_inclusive
from bench.results import FIELDS, Run, load_rows, runs_from_rows, runs_to_json, save_runs
from bench.session import half_pacing
from bench.wrk import parse_output

STORED = RESULTS / "2026-11-26-075059.json"


def run(contender: int, payload: str, conns: int, rps: float, cpu_us: float) -> Run:
    return Run(contender, 1, payload, conns, rps, 1.0, 2.0, 3.0, 50.0, cpu_us, 40.0, 5.0, 0,
               10_000, 30.0, 20.0, 0.0, 0.0)


def test_the_stored_results_file_has_exactly_the_fields_runs_write() -> None:
    rows = load_rows(STORED)
    assert rows and all(tuple(row) == FIELDS for row in rows)


def test_stored_rows_round_trip_unchanged(tmp_path: Path) -> None:
    rows = load_rows(STORED)
    out = tmp_path / "again.json"
    save_runs(out, runs_from_rows(rows))
    assert json.loads(out.read_text()) == rows


def test_runs_round_trip_through_json() -> None:
    runs = [run(5, "small", 16, 1234.5, 321.0), run(6, "half", 7, 99.0, 1.5)]
    assert runs_from_rows(json.loads(runs_to_json(runs))) == runs
    assert list(json.loads(runs_to_json(runs))[0]) == [f.name for f in dataclasses.fields(Run)]


def test_load_rows_refuses_what_is_not_a_list(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"contender": 1}')
    with pytest.raises(TypeError):
        load_rows(path)


def test_compare_pairs_cells_and_half_load_ignores_its_connections() -> None:
    old = [dataclasses.asdict(r) for r in (run(5, "small", 16, 1000.0, 400.0),
                                           run(5, "half", 7, 500.0, 420.0),
                                           run(6, "small", 16, 800.0, 500.0))]
    new = [dataclasses.asdict(r) for r in (run(5, "small", 16, 2000.0, 200.0),
                                           run(5, "half", 9, 1000.0, 210.0),
                                           run(7, "small", 16, 900.0, 600.0))]
    rows = compare.ratio_rows(old, new)
    assert rows == [
        ["5", "1", "half", "", "500", "1,000", "2.00×", "420", "210", "0.50×", "1.00×"],
        ["5", "1", "small", "16", "1,000", "2,000", "2.00×", "400", "200", "0.50×", "1.00×"],
    ]
    lines = compare.compare(old, new)
    assert lines[0] == f"Fields: the same {len(FIELDS)} in both files."
    assert lines[-1] == "2 cell(s) in only one of the files."


def test_compare_names_fields_present_in_one_file_only() -> None:
    old = [dataclasses.asdict(run(5, "small", 16, 1000.0, 400.0))]
    new = [dict(old[0], extra=1)]
    del new[0]["target_rps"]
    (line,) = compare.field_report(old, new)
    assert "only in OLD: ['target_rps']" in line
    assert "only in NEW: ['extra']" in line


def test_compare_main_prints_the_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    save_runs(a, [run(2, "small", 16, 100.0, 10.0)])
    save_runs(b, [run(2, "small", 16, 150.0, 10.0)])
    assert compare.main([str(a), str(b)]) == 0
    assert "| 2 | 1 | small | 16 | 100 | 150 | 1.50× | 10 | 10 | 1.00× | 1.00× |" in \
        capsys.readouterr().out


def test_wrk_output_is_parsed_from_the_done_hook_line() -> None:
    stdout = ("Running 1s test\nBENCHJSON {\"requests\":5000,\"duration_us\":2000000,\"bytes\":1,"
              "\"p50\":800,\"p90\":900,\"p99\":1500,\"p999\":4000,\"mean\":850.0,\"max\":9000,"
              "\"connect\":0,\"read\":2,\"write\":0,\"status\":3,\"timeout\":1}\n")
    out = parse_output(stdout)
    assert out is not None
    assert (out.requests, out.p50, out.p99, out.p999, out.errors) == (5000, 800, 1500, 4000, 6)
    assert out.rps == 2500.0
    assert parse_output("no summary\n") is None


def test_half_load_pacing_keeps_the_pause_near_ten_ms() -> None:
    assert half_pacing(1000.0, 0.0) == (10, 10.0)
    conns, pace = half_pacing(200_000.0, 0.5)
    assert conns == 256  # capped
    assert pace == pytest.approx(256 * 1000 / 200_000 - 0.5)


def test_py_spy_collapsed_stacks_become_own_and_inclusive_counts() -> None:
    assert frame_name("handle (/repo/proxy/forward.py:123)", "/repo") == \
        "handle (proxy/forward.py)"
    assert frame_name("get (/v/lib/python3.11/site-packages/redis/x.py:9)", "/repo") == \
        "get (redis/x.py)"
    text = ("process 1:\"python\";thread (0x1);main (/x/site-packages/aiohttp/web.py:10);"
            "f (proxy/a.py:1) 3\n"
            "process 1:\"python\";thread (0x1);main (/x/site-packages/aiohttp/web.py:10) 2\n"
            "garbage line\n")
    rows, samples = aggregate(text)
    assert samples == 5
    assert rows == [("f (proxy/a.py)", 3, 3), ("main (aiohttp/web.py)", 2, 5)]
    assert top_inclusive(text, ("proxy/",)) == [("f (proxy/a.py)", 3)]
