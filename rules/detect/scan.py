"""The text scanner: every email, phone and LinkedIn-profile candidate anywhere in a text.

It complements the structured JSON walk: whatever surrounds an identifier (HTML, URLs, CSV,
prose, JSON escapes, invisible characters) it is found here, with its span in the text and
its normal forms (rules/normalize.py, the one normaliser) for the one store lookup.

Two halves. *Finding* (finder.py: the compiled core, or its reference textfind.py) is pure
and linear: every raw candidate with its span, in both readings of the text (as written, and
decoded: textview.py). *Normalising* (readings.py) turns each raw candidate into its normal
forms, cached per string. Over-matching is the safe failure: where a boundary is ambiguous
(`foo|jane@acme.com`, `512 555 0100 512 555 0199`) every plausible reading is a candidate of
its own, so redacting one never touches an allowed neighbour.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

from rules.detect import finder
from rules.detect.readings import RULE_TYPE, normal_forms, normals, number_digits
from rules.detect.textfind import Raw
from rules.model import RuleType

__all__ = [
    "Candidate", "denied_spans", "drop_lines", "identifiers_in", "number_digits", "redact_text",
    "scan", "scan_bytes", "shortest_denied",
]


class Candidate(NamedTuple):
    """One reading of an identifier: its type, span `text[start:end]`, normal forms to look up.

    A NamedTuple, not a frozen dataclass: a 79 kB body has ~800, and a frozen dataclass's
    `__init__` costs four times as much (as `jsonspan.Token`)."""

    kind: RuleType
    start: int
    end: int
    normal: tuple[str, ...]


def scan(text: str, region: str) -> list[Candidate]:
    """Every candidate in `text`, read as written and decoded, sorted by span (characters)."""
    if (fused := finder.FUSED) is not None:
        try:
            return _fused(fused, text.encode("utf-8"), True, region)
        except UnicodeEncodeError:  # lone surrogates: only the reference reads them as Python
            pass
    return _candidates(finder.find_text(text), region)


def scan_bytes(body: bytes, region: str) -> Sequence[Candidate]:
    """Candidates of a UTF-8 body, spans in bytes (undecodable bytes end a candidate).

    Compiled: a read-only `Candidates` sequence (rules/native/src/records.rs) whose items are
    built only when Python reads them; the compiled consumers (gather, windows) read its
    records. Else the reference's list."""
    if (fused := finder.FUSED) is not None:
        memo, context = MEMOS.of(fused, region)
        found: Sequence[Candidate] = fused.records(body, False, memo, context)
        return found
    return _candidates(finder.find_bytes(body), region)


def identifiers_in(
    data: bytes, spans: Iterable[tuple[int, int]], region: str
) -> set[tuple[RuleType, str]]:
    """Every `(type, normal form)` of the candidates of each span of `data` read on its own:
    one compiled call for all of them (no `Candidate` built), else `scan_bytes` per span."""
    if (fused := finder.FUSED) is not None:
        memo, context = MEMOS.of(fused, region)
        found: set[tuple[RuleType, str]] = fused.identifiers(data, list(spans), memo, context)
        return found
    return {(c.kind, n) for s, e in spans for c in scan_bytes(data[s:e], region) for n in c.normal}


def _context(region: str) -> tuple[object, ...]:
    """What the compiled scan needs of Python for one region (rules/native/src/normalised.rs)."""

    def normals_here(kind: int, text: str) -> tuple[str, ...]:
        if len(text) < finder.KEPT_TEXT:  # the memo keeps the answer: no second cache
            return normal_forms(kind, text, region)
        return normals(kind, text, region)

    return (normals_here, _union, RULE_TYPE[:3], Candidate)


MEMOS = finder.Memos(_context)
"""The compiled scan's normal forms of each distinct raw text, per region."""


def _fused(fused: finder.Fused, data: bytes, char_spans: bool, region: str) -> list[Candidate]:
    """`_candidates(find(data), region)` in one compiled call: each distinct raw text is
    normalised once (`readings.normals`) and its forms kept in the region's memo."""
    return fused.candidates(data, char_spans, *MEMOS.of(fused, region))


def _candidates(found: list[Raw], region: str) -> list[Candidate]:
    """Each raw candidate normalised (cached per string); readings of one span merged."""
    merged: dict[tuple[int, int, RuleType], tuple[str, ...]] = {}
    for kind, start, end, raw in found:
        forms = normals(kind, raw, region)
        if forms:
            key = (start, end, RULE_TYPE[kind])  # sorts by span, then type (a str enum)
            known = merged.get(key)
            merged[key] = forms if known is None else _union(known, forms)
    new = tuple.__new__  # what `Candidate(...)` calls, without its Python-level frame
    return [new(Candidate, (kind, start, end, forms))
            for (start, end, kind), forms in sorted(merged.items())]


def _union(known: tuple[str, ...], forms: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(known + forms))


def shortest_denied(
    found: Iterable[Candidate], denied: Callable[[Candidate], bool]
) -> list[Candidate]:
    """Of the denied candidates, the shortest reading of each type from each start.

    A longer reading of the same identifier (`linkedin.com/in/jane/;bob@x.org`) would take
    an allowed neighbour with it; once the shortest is gone no reading of the rest can spell
    the identifier (and the output is scanned again before it leaves)."""
    shortest: dict[tuple[RuleType, int], Candidate] = {}
    for c in found:
        key = (c.kind, c.start)
        known = shortest.get(key)
        if (known is None or c.end < known.end) and denied(c):
            shortest[key] = c
    return list(shortest.values())


def denied_spans(found: Iterable[Candidate], denied: set[str]) -> list[tuple[int, int]]:
    """The spans to remove: the shortest reading per start holding a normal form in `denied`."""
    if not denied:
        return []
    chosen = shortest_denied(found, lambda c: not denied.isdisjoint(c.normal))
    return [(c.start, c.end) for c in chosen]


def merge_spans(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, overlapping or touching spans joined into one."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def redact_text(text: str, spans: Iterable[tuple[int, int]], replacement: str = "") -> str:
    """`text` with every span (merged where they overlap) replaced by `replacement`."""
    out: list[str] = []
    position = 0
    for start, end in merge_spans(spans):
        out.append(text[position:start])
        out.append(replacement)
        position = end
    out.append(text[position:])
    return "".join(out)


def drop_lines(text: str, spans: Iterable[tuple[int, int]]) -> str:
    """`text` without every line (and its line break) that a span touches: `--policy drop`
    for line-based text (CSV rows without embedded newlines, NDJSON, plain text)."""
    out: list[str] = []
    position = 0
    for start, end in merge_spans(spans):
        if start < position:  # inside a line already dropped
            start = position
            if end <= position:
                continue
        line_start = text.rfind("\n", 0, start) + 1
        line_end = text.find("\n", max(start, end - 1))
        out.append(text[position:line_start])
        position = len(text) if line_end == -1 else line_end + 1
    out.append(text[position:])
    return "".join(out)
