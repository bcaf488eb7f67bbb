"""Finding phone numbers anywhere in a text: digit runs with the separators phones are written
with, and JSON numbers in exponent form. Finding only: rules/detect/readings.py normalises.

A run is digit groups joined by one to three separators (space, no-break space, `.`, `-`,
`/`, brackets, their Unicode look-alikes), optionally after `+` or `(`. Every window of
consecutive groups holding 7 to 18 digits (15 of E.164 plus an `011`/`00` prefix or a `(0)`)
is a candidate: two numbers written side by side, or a number after a stray digit, are all
found. Each window is read in
the region and internationally (`+<digits>`); over-matching is the safe failure. Windows per
group are bounded (at most 12 windows start at one group), so the work is linear.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from rules.detect.readings import MAX_DIGITS, MIN_DIGITS

# Unicode spaces (U+1680, U+2000-U+200A, U+202F, U+205F, U+3000), dashes (U+2010-U+2015,
# U+2212) and the one dot leader (U+2024) too: a reader sees `512 555 0100` in each.
_SEP = " \u00a0.\\-/()\u1680\u2000-\u200a\u202f\u205f\u3000\u2010-\u2015\u2212\u2024"
_RUN = re.compile(rf"(?:\+|\(\s?)?\d++(?:[{_SEP}]{{1,3}}+\d++)*+")
_GROUP = re.compile(r"\d++")
_EXPONENT = re.compile(r"-?\d++(?:\.\d++)?[eE][+-]?\d{1,3}+")
_NUMBER_START = re.compile(r"-?\d")

Span = tuple[int, int]


def phone_windows(text: str) -> Iterator[Span]:
    """(start, end) of every window of 7 to 18 digits of every digit run in `text`."""
    for run in _RUN.finditer(text):
        yield from _run_windows(text, run.start(), run.end())


def number_tokens(text: str) -> Iterator[Span]:
    """(start, end) of every number written with an exponent (`1.5125550100e10`): what
    `_EXPONENT.finditer` finds, in linear time. Where no token starts at a digit run, none
    starts inside it either (the rest of the match is the same), so the run is skipped."""
    position = 0
    while (start := _NUMBER_START.search(text, position)) is not None:
        token = _EXPONENT.match(text, start.start())
        if token is not None:
            yield token.start(), token.end()
            position = token.end()
        else:
            run = _GROUP.match(text, start.end() - 1)
            position = run.end() if run is not None else start.end()


def _run_windows(text: str, start: int, end: int) -> Iterator[Span]:
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
                yield window_start, group_end


def _with_prefix(text: str, first: int, previous_end: int) -> int:
    """A window that starts mid-run keeps a `(` written right before its first digits."""
    if first - 1 >= previous_end and text[first - 1] == "(":
        return first - 1
    return first
