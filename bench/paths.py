"""Where things are: the repo root (servers run from there) and the bench folder."""

from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
