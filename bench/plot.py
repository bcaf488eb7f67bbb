"""Throughput against connections, one panel per worker count (8-contact result)."""

from __future__ import annotations

import os
from pathlib import Path

from bench.contenders import NAMES
from bench.results import Findings


def plot(found: Findings, workers: list[int], concurrency: list[int], stamp: str,
         path: Path) -> Path | None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        found.notes.append("matplotlib missing: no plot.")
        return None
    small = [r for r in found.runs if r.payload == "small"]
    panels = [w for w in workers if any(r.workers == w for r in small)]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.8), squeeze=False)
    for ax, w in zip(axes[0], panels, strict=True):
        for n, name in NAMES.items():
            rows = sorted((r for r in small if r.contender == n and r.workers == w),
                          key=lambda r: r.conns)
            if rows:
                ax.plot([r.conns for r in rows], [r.rps for r in rows], marker="o",
                        color=f"C{n - 1}", label=f"{n} {name}",
                        linestyle="--" if n in (1, 2, 3) else "-")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(concurrency, [str(c) for c in concurrency])
        ax.set_xlabel("wrk connections")
        ax.set_ylabel("req/s (log)")
        ax.set_title(f"8-contact task result, {w} worker(s)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="lower left")
    fig.suptitle(f"denyproxy bench {stamp} ({os.cpu_count()} cores)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
