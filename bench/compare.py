"""Ratio table between two results JSON files: how a run compares with an earlier one.

    .venv/bin/python bench/compare.py OLD.json NEW.json
    .venv/bin/python -m bench.compare OLD.json NEW.json

Cells pair up by (contender, workers, payload, connections); half-load cells by contender and
workers only, since their connection count follows each run's own throughput.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: bench/ is on sys.path, the repo root is not
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.results import FIELDS, load_rows
from bench.table import fmt, ratio, table

Key = tuple[int, int, str, int]
Row = dict[str, Any]


def key(row: Row) -> Key:
    conns = -1 if row["payload"] == "half" else int(row["conns"])
    return int(row["contender"]), int(row["workers"]), str(row["payload"]), conns


def field_report(old: list[Row], new: list[Row]) -> list[str]:
    """Whether both files' rows carry the same fields (and the ones this version writes)."""
    old_f = {k for r in old for k in r}
    new_f = {k for r in new for k in r}
    if old_f == new_f == set(FIELDS):
        return [f"Fields: the same {len(FIELDS)} in both files."]
    return [(f"Fields only in OLD: {sorted(old_f - new_f) or 'none'}; only in NEW: "
             f"{sorted(new_f - old_f) or 'none'}; unknown to this version: "
             f"{sorted((old_f | new_f) - set(FIELDS)) or 'none'}.")]


def ratio_rows(old: list[Row], new: list[Row]) -> list[list[str]]:
    before = {key(r): r for r in old}
    rows = []
    for k, n in sorted((key(r), r) for r in new if key(r) in before):
        o = before[k]
        rows.append([str(k[0]), str(k[1]), k[2], "" if k[3] < 0 else str(k[3]),
                     fmt(o["rps"]), fmt(n["rps"]), ratio(n["rps"], o["rps"]),
                     f"{o['cpu_us_req']:.0f}", f"{n['cpu_us_req']:.0f}",
                     ratio(n["cpu_us_req"], o["cpu_us_req"]), ratio(n["p99_ms"], o["p99_ms"])])
    return rows


def compare(old: list[Row], new: list[Row]) -> list[str]:
    head = ["#", "workers", "payload", "conns", "old req/s", "new req/s", "req/s ×",
            "old µs/req", "new µs/req", "µs/req ×", "p99 ×"]
    unmatched = len({key(r) for r in old} ^ {key(r) for r in new})
    return [*field_report(old, new), "", *table(head, "rrlrrrrrrrr", ratio_rows(old, new)),
            "", f"{unmatched} cell(s) in only one of the files."]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("old", type=Path)
    p.add_argument("new", type=Path)
    a = p.parse_args(argv)
    print("\n".join(compare(load_rows(a.old), load_rows(a.new))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
