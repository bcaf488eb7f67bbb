"""The one Markdown table helper every table of the report goes through."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

RULES = {"l": "---", "r": "--:"}


def table(header: Sequence[str], align: str, rows: Iterable[Sequence[str]]) -> list[str]:
    """Lines of a Markdown table; `align` has one letter per column: l(eft) or r(ight)."""
    if len(align) != len(header) or set(align) - set(RULES):
        raise ValueError(f"align {align!r} does not fit {len(header)} columns")
    out = [_line(header), "|" + "|".join(RULES[a] for a in align) + "|"]
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"row of {len(row)} cells in a table of {len(header)}: {row!r}")
        out.append(_line(row))
    return out


def _line(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def fmt(x: float, digits: int = 0) -> str:
    """Thousands separators: 12,345."""
    return f"{x:,.{digits}f}"


def ratio(x: float, base: float | None) -> str:
    return f"{x / base:.2f}×" if base else "–"
