"""What a run finds: one Run per measured cell (the rows of results/<stamp>.json), the
filtering checks, notes, profiles and the Kafka figures."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PAYLOADS = ("small", "large", "unique", "half", "detect", "lists")


@dataclass
class Run:
    """One cell. Field names and order are the JSON row format: runs compare across versions."""

    contender: int
    workers: int
    payload: str  # small | large | unique | half | detect | lists
    conns: int
    rps: float
    p50_ms: float
    p99_ms: float
    p999_ms: float
    cpu_pct: float
    cpu_us_req: float
    rss_mb: float
    aux_cpu_pct: float
    errors: int
    requests: int
    wrk_cpu_pct: float = 0.0
    other_cpu_pct: float = 0.0
    paced_ms: float = 0.0
    target_rps: float = 0.0


FIELDS = tuple(f.name for f in dataclasses.fields(Run))


def runs_to_json(runs: list[Run]) -> str:
    return json.dumps([dataclasses.asdict(r) for r in runs], indent=1)


def runs_from_rows(rows: list[dict[str, Any]]) -> list[Run]:
    """Rows of a results JSON; fields this version does not know are ignored."""
    return [Run(**{k: v for k, v in row.items() if k in FIELDS}) for row in rows]


def load_rows(path: Path) -> list[dict[str, Any]]:
    rows = json.loads(path.read_text())
    if not isinstance(rows, list):
        raise TypeError(f"{path}: expected a JSON list of rows")
    return rows


def save_runs(path: Path, runs: list[Run]) -> None:
    path.write_text(runs_to_json(runs))


@dataclass
class Profile:
    """py-spy samples of one filtered path: top functions by own and by inclusive time."""

    contender: int
    payload: str
    conns: int
    raw: Path
    svg: Path | None
    rows: list[tuple[str, int, int]]  # (function, own samples, inclusive samples)
    samples: int
    seconds: int
    rate: int
    inclusive: list[tuple[str, int]]


@dataclass
class Findings:
    runs: list[Run] = field(default_factory=list)
    checks: dict[tuple[int, int], str] = field(default_factory=dict)  # (n, workers) -> verdict
    notes: list[str] = field(default_factory=list)
    profiles: list[Profile] = field(default_factory=list)
    kafka: str = ""
    quiet_waited: float = 0.0
    remeasured: int = 0  # cells measured again for outside load (session.DISTURBED_PCT)
    lists_check: str = ""  # the lists key's filtering verdict (#6, 1 worker)

    def check(self, contender: int, workers: int) -> str:
        return self.checks.get((contender, workers), "?")
