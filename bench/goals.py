"""Issue #11's goals table from one results JSON: ratios between contenders of the same run.

    .venv/bin/python -m bench.goals bench/results/<stamp>.json [bench/results/<older>.json]

With a second (older) file the table gets a "before" column. Cells: 1 worker, 16 connections
(`small` = 8-contact, `large` = 200-contact, `unique` = 4,096 distinct 8-contact results);
the added latency compares the lowest-connection cells of #6 and #1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.results import load_rows
from bench.table import table

Row = dict[str, Any]
DIRECT, PASS, REDIS, LUA, MITM = 1, 3, 6, 7, 8


class Cells:
    """One run's rows, looked up by contender, payload and connections (1 worker)."""

    def __init__(self, rows: list[Row]) -> None:
        self.rows = [r for r in rows if int(r["workers"]) == 1]

    def get(self, contender: int, payload: str = "small", conns: int | None = 16) -> Row:
        found = [r for r in self.rows if int(r["contender"]) == contender
                 and r["payload"] == payload and (conns is None or int(r["conns"]) == conns)]
        if not found:
            raise LookupError(f"no cell for #{contender} {payload} {conns}")
        return min(found, key=lambda r: int(r["conns"]))

    def cpu(self, contender: int, payload: str = "small") -> float:
        return float(self.get(contender, payload)["cpu_us_req"])

    def rps(self, contender: int) -> float:
        return float(self.get(contender)["rps"])

    def added_p50(self) -> float:
        low = min(int(r["conns"]) for r in self.rows if int(r["contender"]) == REDIS)
        redis, direct = self.get(REDIS, conns=low), self.get(DIRECT, conns=low)
        return float(redis["p50_ms"]) - float(direct["p50_ms"])


GOALS: list[tuple[str, Callable[[Cells], float], str, str]] = [
    ("8-contact, Redis: CPU µs/req ÷ aiohttp pass-through",
     lambda c: c.cpu(REDIS) / c.cpu(PASS), "{:.1f}×", "≤ 2.0×"),
    ("8-contact, Redis: req/s ÷ mitmproxy + addon",
     lambda c: c.rps(REDIS) / c.rps(MITM), "{:.1f}×", "≥ 6×"),
    ("8-contact, Redis: req/s ÷ NGINX + Lua",
     lambda c: c.rps(REDIS) / c.rps(LUA), "{:.2f}×", "≥ 0.3×"),
    ("200-contact, Redis: CPU µs/req ÷ NGINX + Lua",
     lambda c: c.cpu(REDIS, "large") / c.cpu(LUA, "large"), "{:.1f}×", "≤ 1.0×"),
    ("distinct contacts (cold caches), Redis: CPU µs/req ÷ aiohttp pass-through",
     lambda c: c.cpu(REDIS, "unique") / c.cpu(PASS, "unique"), "{:.1f}×", "≤ 2.5×"),
    ("vCPU per 1,000 filtered req/s", lambda c: c.cpu(REDIS) / 1000, "{:.2f}", "≤ 0.30"),
    ("added p50 latency over direct, unloaded", lambda c: c.added_p50(), "{:+.2f} ms",
     "≤ +0.35 ms"),
]


def figure(cells: Cells, compute: Callable[[Cells], float], form: str) -> str:
    try:
        return form.format(compute(cells))
    except (LookupError, ValueError, ZeroDivisionError):
        return "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("new", type=Path)
    parser.add_argument("old", type=Path, nargs="?")
    args = parser.parse_args()
    new = Cells(load_rows(args.new))
    old = Cells(load_rows(args.old)) if args.old else None
    head = ["figure", *(["before"] if old else []), "now", "goal"]
    rows = [[name, *([figure(old, f, form)] if old else []), figure(new, f, form), goal]
            for name, f, form, goal in GOALS]
    print("\n".join(table(head, "l" + "r" * (len(head) - 1), rows)))


if __name__ == "__main__":
    main()
