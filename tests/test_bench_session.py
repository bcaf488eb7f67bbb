"""bench/session.py: a cell disturbed by outside load is measured again, the quieter run kept."""

from __future__ import annotations

from typing import Any

import pytest

from bench import session
from bench.measure import DISTURBED_PCT, REMEASURES, Cell
from bench.results import Findings, Run


def _run(other: float) -> Run:
    return Run(6, 1, "large", 16, 500.0, 30.0, 50.0, 70.0, 99.0, 1000.0 + other, 80.0, 4.0, 0,
               5000, 6.0, other)


def _session(others: list[float], monkeypatch: pytest.MonkeyPatch) -> tuple[Any, list[float]]:
    """A Session whose `measure` answers runs with these outside loads, in turn."""
    left = list(others)
    monkeypatch.setattr(session, "measure", lambda *args: _run(left.pop(0)))
    s: Any = object.__new__(session.Session)
    s.env, s.redis, s.found = type("Env", (), {"upstream": None})(), [], Findings()
    s.opts = type("Opts", (), {"duration": 1.0})()
    s.load = s.quiet = None
    return s, left


def test_a_quiet_cell_is_measured_once(monkeypatch: pytest.MonkeyPatch) -> None:
    s, left = _session([DISTURBED_PCT, 0.0], monkeypatch)
    run = s.cell(object(), Cell(6, 1, "large", 16))
    assert run.other_cpu_pct == DISTURBED_PCT and left == [0.0] and s.found.remeasured == 0


def test_a_disturbed_cell_keeps_its_least_disturbed_run(monkeypatch: pytest.MonkeyPatch) -> None:
    s, left = _session([30.0, 12.0, 20.0, 0.0], monkeypatch)
    run = s.cell(object(), Cell(6, 1, "large", 16))
    assert run.other_cpu_pct == 12.0  # the third run was worse than the second
    assert left == [0.0] and s.found.remeasured == REMEASURES == 2
    assert s.found.runs == [run]


def test_measuring_again_stops_once_a_run_is_quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    s, left = _session([30.0, 2.0, 0.0], monkeypatch)
    assert s.cell(object(), Cell(6, 1, "large", 16)).other_cpu_pct == 2.0
    assert left == [0.0] and s.found.remeasured == 1
