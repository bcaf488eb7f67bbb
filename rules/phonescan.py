"""Phone numbers anywhere in a text: digit runs with the separators phones are written with.

A run is digit groups joined by one to three separators (space, no-break space, `.`, `-`,
`/`, brackets), optionally after `+` or `(`. Every window of consecutive groups holding 7 to
18 digits (15 of E.164 plus an `011`/`00` prefix or a `(0)`) is a candidate: two numbers
written side by side, or a number after a stray digit, are all found. Each window is read in
the region and internationally (`+<digits>`); over-matching is the safe failure. Windows per
group are bounded (at most 12 windows start at one group), so the work is linear.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from rules import normalize

MIN_DIGITS = 7
MAX_DIGITS = 18
_SEP = " \u00a0.\\-/()"
_RUN = re.compile(rf"(?:\+|\(\s?)?\d++(?:[{_SEP}]{{1,3}}+\d++)*+")
_GROUP = re.compile(r"\d++")
_EXPONENT = re.compile(r"-?\d++(?:\.\d++)?[eE][+-]?\d{1,3}+")

Window = tuple[int, int, tuple[str, ...]]


def phone_windows(text: str, region: str) -> Iterator[Window]:
    """(start, end, normal forms) of every phone-like window of every run in `text`."""
    for run in _RUN.finditer(text):
        yield from _run_windows(text, run.start(), run.end(), region)
    for token in _EXPONENT.finditer(text):
        digits = number_digits(token.group())
        if digits is not None:
            normals = _readings(digits, region)
            if normals:
                yield token.start(), token.end(), normals


def _run_windows(text: str, start: int, end: int, region: str) -> Iterator[Window]:
    groups = [(g.start(), g.end()) for g in _GROUP.finditer(text, start, end)]
    if sum(b - a for a, b in groups) < MIN_DIGITS:
        return
    for i, (first, _) in enumerate(groups):
        window_start = start if i == 0 else _with_prefix(text, first, groups[i - 1][1])
        digits = 0
        for group_start, group_end in groups[i:]:
            digits += group_end - group_start
            if digits > MAX_DIGITS:
                break
            if digits >= MIN_DIGITS:
                normals = _readings(text[window_start:group_end], region)
                if normals:
                    yield window_start, group_end, normals


def _with_prefix(text: str, first: int, previous_end: int) -> int:
    """A window that starts mid-run keeps a `(` written right before its first digits."""
    if first - 1 >= previous_end and text[first - 1] == "(":
        return first - 1
    return first


@lru_cache(maxsize=65_536)
def _readings(window: str, region: str) -> tuple[str, ...]:
    """The window read in the region, and read as an international number."""
    normals: dict[str, None] = {}
    for reading in dict.fromkeys((window, window.lstrip("( "))):  # `(0044 20…)` too
        local = normalize.phone(reading, region)
        if local is not None:
            normals[local] = None
    if not window.startswith("+"):
        digits = "".join(c for c in window if c.isdigit())
        international = normalize.phone("+" + digits, region)
        if international is not None:
            normals[international] = None
    return tuple(normals)


def number_digits(token: str) -> str | None:
    """The digits of a JSON number that is a whole number of phone length, else None.

    `15125550100.0`, `1.5125550100e10` and `15125550100` all give `15125550100`: a phone
    written as a float still reaches the lookup. Exponents are bounded (no `1e999999`).
    """
    try:
        value = Decimal(token)
    except InvalidOperation:
        return None
    if not value.is_finite() or value.adjusted() >= MAX_DIGITS:
        return None
    if value != value.to_integral_value():
        return None
    digits = str(abs(int(value)))
    return digits if MIN_DIGITS <= len(digits) <= MAX_DIGITS else None
