"""Verify a spliced body without a second full scan: only the bytes around each join again.

The finder's candidates stay inside one JSON token (a string with its quotes, a key, a
number): its expansions stop at a quote, and none crosses a `,` or `:`. A splice replaces
whole members or elements (with a comma) by nothing, or a value by `null`; every other byte of
the output is the input's, in order. So the output holds the input's candidates outside the
replaced regions, plus whatever the bytes around a join spell. Each join is read again in a
window of `WINDOW` bytes either side, widened until no token and no input candidate straddles
its edge (a cut inside one could spell what the whole does not); candidates of the input
that touch no window are reused with their normal forms. tests/test_joins.py proves with
hypothesis that this reads the same identifiers as a full rescan of the output.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from itertools import accumulate

from rules.detect.finder import _native
from rules.detect.match import Identifier
from rules.detect.scan import Candidate, identifiers_in
from rules.detect.splice import Replaced
from rules.detect.structure import Structure

WINDOW = 16
"""Bytes read on each side of a join before the widening. The widening to whole tokens and
input candidates is what makes the cut safe: no candidate leaves its token (above), the
splice moves whole tokens, so every output token away from a join is an input token whose
candidates are reused, and one at a join lies whole inside its widened window. The margin
only adds the neighbouring punctuation; tests/test_joins.py checks 0 and 3 bytes too. (It was
320, the longest email, from before the widening: 7x the bytes read on a 79 kB body.)"""

TOKEN_REACH = 48
"""Bytes the widening typically adds on each side of a join (a key and its value's quote)."""

Span = tuple[int, int]


def windows_pay(replaced: Sequence[Replaced], out: bytes) -> bool:
    """Whether reading around the joins is cheaper than a compiled rescan of all of `out`.

    Both are compiled (the windows: rules/native/src/windows.rs, their scan: identifiers only),
    so a window costs about its bytes, widened to whole tokens: they win while they cover
    less than the body. Measured (one value in eight denied, windows forced either way):
    79 kB with 25 joins, 25 µs against 200-240 µs for the rescan; 3.1 kB with 1 join, 4
    against 9-11 µs."""
    return 2 * (WINDOW + TOKEN_REACH) * len(replaced) < len(out)


def output_ids(
    structure: Structure, known: Sequence[Candidate], body: bytes, out: bytes,
    replaced: Sequence[Replaced], region: str, reuse: Sequence[Candidate] | None = None,
) -> set[Identifier]:
    """The identifiers a full scan of `out` (`body` with `replaced` spliced) would read.

    `known`: every candidate of `body`, sorted by span. `reuse`: the part of them whose
    identifiers are wanted where no window touches them (all of them by default; the verdict
    needs only the denied ones: every other one was asked for and is not denied)."""
    reuse = known if reuse is None else reuse
    if _native is not None and type(structure) is _native.Structure:  # one compiled call
        ids: set[Identifier]
        spans: list[Span]
        ids, spans = _native.outside_windows(structure, known, reuse, replaced, len(body), WINDOW)
    else:
        windows = _windows(structure, _Blocks(known), replaced, len(body))
        ids, spans = _reused(reuse, windows), _shifted(windows, replaced)
    ids.update(identifiers_in(out, spans, region))
    return ids


def windows_of(
    structure: Structure, known: Sequence[Candidate], replaced: Sequence[Replaced], size: int
) -> list[Span]:
    """`_windows`, compiled over a compiled structure (rules/native/src/windows.rs)."""
    if _native is not None and type(structure) is _native.Structure:
        spans: list[Span] = _native.windows(structure, known, replaced, size, WINDOW)
        return spans
    return _windows(structure, _Blocks(known), replaced, size)


class _Blocks:
    """The input candidates' spans, for the question: which of them straddle a cut?"""

    def __init__(self, known: Sequence[Candidate]) -> None:
        self.starts = [c.start for c in known]
        self.known = known
        self.reach = list(accumulate((c.end for c in known), max))  # furthest end so far

    def straddling(self, cut: int) -> list[Span]:
        """Spans with start < cut < end (walks back only while an earlier one reaches)."""
        out = []
        i = bisect_left(self.starts, cut) - 1
        while i >= 0 and self.reach[i] > cut:
            if self.known[i].end > cut:
                out.append((self.known[i].start, self.known[i].end))
            i -= 1
        return out


def _windows(
    structure: Structure, blocks: _Blocks, replaced: Sequence[Replaced], size: int
) -> list[Span]:
    """Input spans to read again: each replaced region with WINDOW either side, widened to
    safe cuts, overlapping or touching windows joined."""
    spans = sorted(
        (_cut(structure, blocks, max(0, start - WINDOW), left=True),
         _cut(structure, blocks, min(size, end + WINDOW), left=False))
        for start, end, _ in replaced
    )
    merged: list[Span] = []
    for low, high in spans:
        if merged and low <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(high, merged[-1][1]))
        else:
            merged.append((low, high))
    return merged


def _cut(structure: Structure, blocks: _Blocks, cut: int, left: bool) -> int:
    """`cut` moved outward until no token and no input candidate straddles it."""
    while True:
        spans = [(t.start, t.end) for t in map(structure.token, structure.overlapping(cut, cut))]
        spans += blocks.straddling(cut)
        spans = [(s, e) for s, e in spans if s < cut < e]
        if not spans:
            return cut
        cut = min(s for s, _ in spans) if left else max(e for _, e in spans)


def _reused(known: Sequence[Candidate], windows: list[Span]) -> set[Identifier]:
    """The normal forms of the input candidates no window touches."""
    starts = [start for start, _ in windows]
    ids: set[Identifier] = set()
    for c in known:
        i = bisect_right(starts, c.start) - 1
        if i >= 0 and c.start < windows[i][1]:
            continue  # starts inside window i
        if i + 1 < len(windows) and c.end > windows[i + 1][0]:
            continue  # reaches into the next window
        ids.update((c.kind, n) for n in c.normal)
    return ids


def _shifted(windows: list[Span], replaced: Sequence[Replaced]) -> list[Span]:
    """Where each input window (sorted; its edges outside every replaced region) is in the
    output: one walk over both, in order."""
    out: list[Span] = []
    shift, i = 0, 0
    for start, end in windows:
        edges = []
        for position in (start, end):
            while i < len(replaced) and replaced[i][1] <= position:
                shift += replaced[i][1] - replaced[i][0] - replaced[i][2]
                i += 1
            edges.append(position - shift)
        out.append((edges[0], edges[1]))
    return out
