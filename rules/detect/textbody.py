"""Filters for bodies that are not one JSON document: NDJSON, server-sent events, plain text.

Each filter has the two halves of the response path around its ONE store lookup:
`candidates(text)` (every identifier the text scanner, rules/detect/scan.py, finds anywhere in the
body) and `redact(text, denied, policy)` (the body without the denied ones). `denied` holds
normal forms (see `denied_normals`). JSON found inside these bodies (an NDJSON line, the data
of an event) goes through the JSON path, passed in as `json_filter` so this module does not
depend on it; everything else is redacted as text.

Choices:
- `strip` replaces a denied identifier by the fixed marker `[suppressed]`: it holds no letter
  run next to an `@`, no digit and no quote or separator of CSV/JSON/HTML, so it can neither
  join its neighbours into a new identifier nor break the structure around it, and the reader
  sees that something was withheld.
- `drop` removes the record that holds a denied identifier: an NDJSON line, an SSE event, a
  CSV record (a quoted field may span lines: the csv module finds the record's end) or, for
  text that does not parse as CSV, a physical line. A JSON line or event data that the JSON
  path changed counts as holding one.
- JSON inside a body is an object or array that parses; a scalar line is read as text.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

import orjson

from rules.detect.match import Policy, is_denied
from rules.detect.scan import Candidate, denied_spans, merge_spans, redact_text, scan
from rules.model import Lookup

__all__ = [
    "MARKER", "BodyFilter", "JsonFilter", "NdjsonFilter", "SseFilter", "TextFilter",
    "denied_normals", "is_json_document", "ndjson_documents", "sse_documents",
]

MARKER = "[suppressed]"
JsonFilter = Callable[[bytes], bytes]
"""The JSON path for one document (its lookup answer and policy already bound): bytes in, out."""

_RS = "\x1e"
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")  # one line and its terminator


class BodyFilter(Protocol):
    def candidates(self, text: str) -> list[Candidate]: ...

    def redact(self, text: str, denied: set[str], policy: Policy) -> str: ...


def denied_normals(candidates: Iterable[Candidate], answer: Lookup) -> set[str]:
    """The normal forms the store denied (an email also by its domain): `redact`'s input."""
    return {
        normal for c in candidates for normal in c.normal if is_denied(c.kind, normal, answer)
    }


def is_json_document(text: str) -> bool:
    """An object or array that parses (a BOM or white space around it allowed)."""
    stripped = text.lstrip("\ufeff \t\r\n")
    if not stripped.startswith(("{", "[")):
        return False
    try:
        orjson.loads(stripped)
    except orjson.JSONDecodeError:
        return False
    return True


def _denied_spans(
    text: str, denied: set[str], region: str, found: list[Candidate] | None = None
) -> list[tuple[int, int]]:
    """The spans to remove (rules.detect.scan.denied_spans: the shortest denied reading per start).
    `found`: the candidates of exactly this text, if the caller has them (no second scan)."""
    if not denied:
        return []
    return denied_spans(scan(text, region) if found is None else found, denied)


def _lines(text: str) -> Iterator[str]:
    """Every line with its terminator (`\\n`, `\\r\\n` or `\\r`); they join back to `text`."""
    for match in _LINE.finditer(text):
        yield match.group()


def _through_json(line: str, json_filter: JsonFilter) -> str:
    raw = line.encode("utf-8", errors="surrogateescape")
    out = json_filter(raw)
    return line if out == raw else out.decode("utf-8", errors="surrogateescape")


# ---------------------------------------------------------------------------- plain text


@dataclass(frozen=True, slots=True)
class TextFilter:
    """CSV, HTML, XML, plain text, unknown types: identifiers replaced, or records dropped."""

    region: str

    def candidates(self, text: str) -> list[Candidate]:
        return scan(text, self.region)

    def redact(
        self, text: str, denied: set[str], policy: Policy, found: list[Candidate] | None = None
    ) -> str:
        spans = _denied_spans(text, denied, self.region, found)
        if not spans:
            return text
        if policy == "drop":
            return _drop_records(text, records(text), spans)
        return redact_text(text, spans, MARKER)


def records(text: str) -> list[tuple[int, int]]:
    """Spans of the records of `text`: CSV records if it parses as CSV, else physical lines."""
    lines = list(_lines(text))
    ends: list[int] = []
    position = 0
    for line in lines:
        position += len(line)
        ends.append(position)
    counts = _csv_line_counts(lines)
    if counts is not None:
        ends = [ends[n - 1] for n in counts if n > 0]
    return list(zip([0, *ends[:-1]], ends, strict=True)) if ends else []


def _csv_line_counts(lines: list[str]) -> list[int] | None:
    """Lines consumed after each CSV record, or None when the text is not CSV."""
    reader = csv.reader(iter(lines), strict=True)
    counts: list[int] = []
    try:
        for _ in reader:
            counts.append(reader.line_num)
    except csv.Error:
        return None
    if counts and counts[-1] != len(lines):
        counts.append(len(lines))
    return counts


def _drop_records(
    text: str, spans_of_records: list[tuple[int, int]], spans: list[tuple[int, int]]
) -> str:
    """`text` without every record a denied span touches."""
    merged = merge_spans(spans)
    kept: list[str] = []
    k = 0
    for start, end in spans_of_records:
        while k < len(merged) and merged[k][1] <= start:
            k += 1
        touched = k < len(merged) and merged[k][0] < end
        if not touched:
            kept.append(text[start:end])
    return "".join(kept)


# ---------------------------------------------------------------------------- NDJSON


@dataclass(frozen=True, slots=True)
class NdjsonFilter:
    """One JSON text per line: JSON lines through the JSON path, other lines as text."""

    region: str
    json_filter: JsonFilter

    def candidates(self, text: str) -> list[Candidate]:
        return scan(text, self.region)

    def json_parts(self, text: str) -> list[bytes]:
        return ndjson_documents(text)

    def redact(self, text: str, denied: set[str], policy: Policy) -> str:
        return "".join(self._line(line, denied, policy) for line in _lines(text))

    def _line(self, line: str, denied: set[str], policy: Policy) -> str:
        body = _body(line)
        ending = line[len(body):]
        document = body.removeprefix(_RS)  # application/json-seq: RS before each text
        if is_json_document(document):
            out = _through_json(document, self.json_filter)
            changed = out != document or bool(_denied_spans(document, denied, self.region))
            if policy == "drop" and changed:
                return ""
            return body[: len(body) - len(document)] + out + ending
        spans = _denied_spans(body, denied, self.region)
        if not spans:
            return line
        return "" if policy == "drop" else redact_text(body, spans, MARKER) + ending


def ndjson_documents(text: str) -> list[bytes]:
    """The JSON documents of an NDJSON body, for the JSON path's own candidates."""
    documents = (_body(line).removeprefix(_RS) for line in _lines(text))
    return [d.encode("utf-8", "surrogateescape") for d in documents if is_json_document(d)]


def _body(line: str) -> str:
    return line.rstrip("\r\n")


# ---------------------------------------------------------------------------- SSE


@dataclass(frozen=True, slots=True)
class SseFilter:
    """text/event-stream, event by event: `data:` lines joined; JSON data through the JSON
    path, every other line (text data, comments, `id:`, `event:`, unknown fields) as text."""

    region: str
    json_filter: JsonFilter

    def candidates(self, text: str) -> list[Candidate]:
        return scan(text, self.region)

    def json_parts(self, text: str) -> list[bytes]:
        return sse_documents(text)

    def redact(self, text: str, denied: set[str], policy: Policy) -> str:
        return "".join(self._event(event, denied, policy) for event in _events(text))

    def _event(self, lines: list[str], denied: set[str], policy: Policy) -> str:
        data = _data(lines)
        json_data = is_json_document(data)
        out: list[str] = []
        changed = False
        for line in lines:
            if json_data and _field(line) == "data":
                out.append(line)
                continue
            redacted = self._text_line(line, denied)
            changed = changed or redacted != line
            out.append(redacted)
        if json_data:
            filtered = _through_json(data, self.json_filter)
            if filtered != data or _denied_spans(data, denied, self.region):
                changed = True
                out = _with_data(out, filtered)
        return "" if policy == "drop" and changed else "".join(out)

    def _text_line(self, line: str, denied: set[str]) -> str:
        body = _body(line)
        spans = _denied_spans(body, denied, self.region)
        return redact_text(body, spans, MARKER) + line[len(body):] if spans else line


def sse_documents(text: str) -> list[bytes]:
    """The JSON data of every event, for the JSON path's own candidates."""
    parts = (_data(event) for event in _events(text))
    return [p.encode("utf-8", "surrogateescape") for p in parts if is_json_document(p)]


def _events(text: str) -> Iterator[list[str]]:
    """The lines of each event, its closing blank line included."""
    event: list[str] = []
    for line in _lines(text):
        event.append(line)
        if not _body(line):
            yield event
            event = []
    if event:
        yield event


def _field(line: str) -> str:
    body = _body(line)
    return "" if body.startswith(":") else body.partition(":")[0]


def _data(lines: list[str]) -> str:
    """The event's data as a client assembles it (one leading space of each value dropped)."""
    values = [_body(line).partition(":")[2] for line in lines if _field(line) == "data"]
    return "\n".join(v[1:] if v.startswith(" ") else v for v in values)


def _with_data(lines: list[str], data: str) -> list[str]:
    """The event with its data lines replaced by `data`, where the first of them stood."""
    first = next(i for i, line in enumerate(lines) if _field(line) == "data")
    ending = lines[first][len(_body(lines[first])):] or "\n"
    new = [f"data: {part}{ending}" for part in data.split("\n")]
    others = [line for line in lines[first:] if _field(line) != "data"]
    return lines[:first] + new + others
