"""Filters for bodies that are not one JSON document (rules/detect/textbody.py).

Outputs are written out by hand for the cases that pin a choice (the marker, what a record
is under `--policy drop`); the properties plant denied and allowed identifiers in random
spellings into random text, CSV, NDJSON and SSE bodies and judge the output with
tests/leak_detector.py, which is not the product's code.

The JSON path is a parameter of these filters; here it is `json_path` below, a stand-in that
redacts every string, key and number of a document by the same text scanner, so that what is
tested is how the filters split a body and put it back together.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rules.detect.match import Policy
from rules.detect.scan import Candidate, scan
from rules.detect.textbody import (
    MARKER,
    BodyFilter,
    JsonFilter,
    NdjsonFilter,
    SseFilter,
    TextFilter,
    denied_normals,
    is_json_document,
    records,
)
from rules.model import RuleType
from tests import leak_detector
from tests.test_scan import _ALLOWED, _DENIED, _FILLER, SEPARATORS, _leaked, _planted

DENIED = {value for _, value in _DENIED}
JANE = "jane@acme.com"


def json_path(denied: set[str], policy: Policy = "strip") -> JsonFilter:
    """Stand-in for the JSON path: every string and key redacted as text, a number that is a
    denied phone becomes null. Unchanged documents come back as they were."""

    def text(value: str) -> str:
        return TextFilter("US").redact(value, denied, "strip")

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {text(k): walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        if isinstance(node, str):
            return text(node)
        if isinstance(node, int | float) and text(str(node)) != str(node):
            return None
        return node

    def run(raw: bytes) -> bytes:
        doc = orjson.loads(raw)
        out = walk(doc)
        return raw if out == doc else orjson.dumps(out)

    return run


def filters(policy: Policy = "strip") -> dict[str, BodyFilter]:
    return {
        "text": TextFilter("US"),
        "ndjson": NdjsonFilter("US", json_path(DENIED, policy)),
        "sse": SseFilter("US", json_path(DENIED, policy)),
    }


# ---------------------------------------------------------------------------- the pieces


def test_denied_normals_are_what_the_store_denied_an_email_also_by_its_domain() -> None:
    found = scan("jane@acme.com bob@sub.example.org +1 512 555 0100", "US")
    answer = {RuleType.DOMAIN: {"example.org"}, RuleType.PHONE: {"+15125550100"}}
    assert denied_normals(found, answer) == {"bob@sub.example.org", "+15125550100"}
    assert denied_normals(found, {}) == set()


@pytest.mark.parametrize(
    ("text", "expected"),
    [('{"a": 1}', True), (" \r\n[1]\n", True), ("\ufeff{}", True), ("[12:00] x", False),
     ('"jane@acme.com"', False), ("42", False), ('{"a": 1}\n{"b": 2}', False), ("", False)],
)
def test_json_document_is_an_object_or_array_that_parses(text: str, expected: bool) -> None:
    assert is_json_document(text) is expected


@pytest.mark.parametrize("name", ["text", "ndjson", "sse"])
def test_nothing_denied_returns_the_text_unchanged(name: str) -> None:
    body = 'data: {"email": "bob@other.net"}\n\n: jane@acme.com\r\n{"x": 1}\n'
    assert filters()[name].redact(body, set(), "strip") == body
    assert filters()[name].redact(body, {"nobody@nowhere.org"}, "drop") == body


@pytest.mark.parametrize("name", ["text", "ndjson", "sse"])
def test_candidates_are_the_scanners_over_the_whole_body(name: str) -> None:
    body = 'data: {"e": "jane\\u0040acme.com"}\n\nid: +1 512 555 0100\n\n'
    found = filters()[name].candidates(body)
    assert all(isinstance(c, Candidate) for c in found)
    assert {"jane@acme.com", "+15125550100"} <= {n for c in found for n in c.normal}


# ---------------------------------------------------------------------------- plain text


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("Write to jane@acme.com or bob@other.net.",
         f"Write to {MARKER} or bob@other.net."),
        ('<a href="mailto:JANE@ACME.COM?subject=x">Jane</a>',
         f'<a href="mailto:{MARKER}?subject=x">Jane</a>'),
        ("<contact><email>jane&#64;acme.com</email></contact>",
         f"<contact><email>{MARKER}</email></contact>"),
        ("name,email\nJane,jane@acme.com\nBob,bob@other.net\n",
         f"name,email\nJane,{MARKER}\nBob,bob@other.net\n"),
        ("call +1 (512) 555-0100 today", f"call {MARKER} today"),
        ("see https://www.linkedin.com/in/jane-doe/.", f"see {MARKER}/."),  # shortest reading
        ("https://www.linkedin.com/in/jane-doe/;bob@other.net", f"{MARKER}/;bob@other.net"),
    ],
)
def test_text_strip_replaces_the_identifier_by_the_marker(body: str, expected: str) -> None:
    assert TextFilter("US").redact(body, DENIED, "strip") == expected


def test_text_drop_removes_whole_csv_records_even_across_lines() -> None:
    body = 'name,note\r\nJane,"line one\r\nmail jane@acme.com"\r\nBob,"two\nlines"\r\nEve,x'
    assert TextFilter("US").redact(body, DENIED, "drop") == 'name,note\r\nBob,"two\nlines"\r\nEve,x'


def test_text_drop_removes_physical_lines_of_text_that_is_not_csv() -> None:
    body = 'He said "hi" to\n"jane@acme.com" he wrote, "x\nbob@other.net\n'
    assert TextFilter("US").redact(body, DENIED, "drop") == 'He said "hi" to\nbob@other.net\n'


def test_records_are_csv_records_or_lines() -> None:
    assert records('a,"b\nc"\nd\n') == [(0, 8), (8, 10)]
    assert records('x "y\nz') == [(0, 5), (5, 6)]
    assert records('"x y\nz') == [(0, 5), (5, 6)]  # a quote never closed: not CSV, lines
    assert records("") == []


# ---------------------------------------------------------------------------- NDJSON


def test_ndjson_lines_go_through_the_json_path_and_text_lines_through_text() -> None:
    body = ('{"email": "jane@acme.com", "n": 1}\r\n\n[12:00] mailed jane@acme.com\n'
            '{"email": "bob@other.net"}')
    out = NdjsonFilter("US", json_path(DENIED)).redact(body, DENIED, "strip")
    assert out == (f'{{"email":"{MARKER}","n":1}}\r\n\n[12:00] mailed {MARKER}\n'
                   '{"email": "bob@other.net"}')


def test_ndjson_drop_removes_each_line_that_holds_a_denied_identifier() -> None:
    body = '{"email": "jane@acme.com"}\n{"email": "bob@other.net"}\nnote +15125550100\nok\n'
    out = NdjsonFilter("US", json_path(DENIED, "drop")).redact(body, DENIED, "drop")
    assert out == '{"email": "bob@other.net"}\nok\n'


def test_json_seq_records_keep_their_separator() -> None:
    body = '\x1e{"email": "jane@acme.com"}\n\x1e{"n": 5125550100}\n'
    out = NdjsonFilter("US", json_path(DENIED)).redact(body, DENIED, "strip")
    assert out == f'\x1e{{"email":"{MARKER}"}}\n\x1e{{"n":null}}\n'


def test_ndjson_json_parts_are_its_json_lines() -> None:
    body = '{"a": 1}\r\nplain\n[2]\n'
    assert NdjsonFilter("US", json_path(DENIED)).json_parts(body) == [b'{"a": 1}', b"[2]"]


# ---------------------------------------------------------------------------- SSE

SSE_BODY = (
    ": ping from jane@acme.com\n"
    "event: contact\nid: 7\ndata: {\"email\":\ndata:  \"jane@acme.com\"}\n\n"
    "event: note\ndata: call +1 512 555 0100\ndata: or bob@other.net\n\n"
    "id: linkedin.com/in/jane-doe\ndata: {\"email\": \"bob@other.net\"}\n\n"
)


def test_sse_strip_filters_every_event_field_by_field() -> None:
    out = SseFilter("US", json_path(DENIED)).redact(SSE_BODY, DENIED, "strip")
    assert out == (
        f": ping from {MARKER}\n"
        f'event: contact\nid: 7\ndata: {{"email":"{MARKER}"}}\n\n'
        f"event: note\ndata: call {MARKER}\ndata: or bob@other.net\n\n"
        f'id: {MARKER}\ndata: {{"email": "bob@other.net"}}\n\n'
    )


def test_sse_drop_removes_each_event_that_holds_a_denied_identifier() -> None:
    body = SSE_BODY + 'data: {"email": "bob@other.net"}\r\n\r\n'
    out = SseFilter("US", json_path(DENIED, "drop")).redact(body, DENIED, "drop")
    assert out == 'data: {"email": "bob@other.net"}\r\n\r\n'


def test_sse_json_parts_are_the_joined_data_of_each_event() -> None:
    parts = SseFilter("US", json_path(DENIED)).json_parts(SSE_BODY)
    assert [json.loads(p) for p in parts] == [{"email": JANE}, {"email": "bob@other.net"}]


# ---------------------------------------------------------------------------- spellings

SPELLINGS = [
    ("email", "jane@acme.com", "JANE@ACME.COM"),
    ("email", "jane@acme.com", "jane&#64;acme.com"),
    ("email", "jane@acme.com", "mailto:jane%40acme.com?subject=Hi"),
    ("email", "jane@acme.com", "ja\u200bne@acme.com"),
    ("email", "jane@acme.com", "jane\\u0040acme.com"),
    ("email", "jane@acme.com", "jane＠acme.com"),
    ("phone", "+15125550100", "+1 (512) 555-0100"),
    ("phone", "+15125550100", "512.555.0100"),
    ("phone", "+442079460958", "(0044 20 7946 0958)"),
    ("linkedin", "linkedin.com/in/jane-doe", "https://uk.linkedin.com/in/JANE-DOE/?trk=x"),
    ("linkedin", "linkedin.com/in/jane-doe", "<a href='https://www.linkedin.com/in/jane-doe'>"),
]
ALLOWED_NEXT = "bob@other.net +1 512 555 0199 linkedin.com/in/jane-doe-2"


def _in_kind(name: str, spelling: str) -> str:
    text = f"Contact: {spelling} ; also {ALLOWED_NEXT}"
    if name == "ndjson":
        return f"{json.dumps({'note': text, 'n': 1})}\n{text}\n"
    if name == "sse":
        return f": {text}\nid: {spelling}\ndata: {json.dumps({'v': text})}\n\ndata: {text}\n\n"
    return f'name,note\nJane,"{text}"\n'


@pytest.mark.parametrize("name", ["text", "ndjson", "sse"])
@pytest.mark.parametrize(("kind", "value", "spelling"), SPELLINGS)
@pytest.mark.parametrize("policy", ["strip", "drop"])
def test_each_spelling_in_each_kind_is_removed(
    name: str, kind: str, value: str, spelling: str, policy: Policy
) -> None:
    body = _in_kind(name, spelling)
    assert _leaked(body, [(kind, value)]) == [value]  # the detector reads the planted one
    out = filters(policy)[name].redact(body, DENIED, policy)
    assert _leaked(out, [(kind, value)]) == []
    allowed = [("email", "bob@other.net"), ("phone", "+15125550199"),
               ("linkedin", "linkedin.com/in/jane-doe-2")]
    if policy == "strip":
        assert _leaked(out, allowed) == [v for _, v in allowed]


# ---------------------------------------------------------------------------- properties

PROPERTY = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])  # profile: count


@st.composite
def cells(draw: st.DrawFn) -> tuple[str, list[tuple[str, str, str]]]:
    """A short text with identifiers planted between separators (one cell, line or value)."""
    planted = draw(_planted(_DENIED)) if draw(st.booleans()) else []
    if draw(st.booleans()):
        planted += draw(_planted(_ALLOWED))
    parts = [draw(_FILLER)]
    for _, _, spelling in planted:
        left, right = draw(st.sampled_from(SEPARATORS)), draw(st.sampled_from(SEPARATORS))
        parts += [left, spelling, right, draw(_FILLER)]
    return "".join(parts), planted


def _csv(rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue()


def _ndjson_line(cell: str, as_json: bool) -> str:
    text = cell.replace("\r", " ").replace("\n", " ")
    return json.dumps({"note": cell, text: 1}, ensure_ascii=False) if as_json else text


def _sse_event(cells: list[str], as_json: bool) -> str:
    flat = [c.replace("\r", " ").replace("\n", " ") for c in cells]
    data = [f"data: {json.dumps({'v': c})}" if as_json else f"data: {c}" for c in flat]
    return "\n".join([f": {flat[0]}", f"id: {flat[-1]}", *data]) + "\n\n"


@st.composite
def bodies(draw: st.DrawFn) -> tuple[str, str, list[tuple[str, str]]]:
    """(filter name, body, planted identifiers) for text, CSV, NDJSON and SSE."""
    name = draw(st.sampled_from(["text", "csv", "ndjson", "sse"]))
    drawn = draw(st.lists(cells(), min_size=1, max_size=5))
    texts = [text for text, _ in drawn]
    planted = [(kind, value) for _, p in drawn for kind, value, _ in p]
    if name == "csv":
        body = _csv([texts[i:i + 2] for i in range(0, len(texts), 2)])
    elif name == "ndjson":
        body = "\n".join(_ndjson_line(t, draw(st.booleans())) for t in texts)
    elif name == "sse":
        body = "".join(_sse_event(texts[i:i + 2], draw(st.booleans())) for i in range(0, 5, 2)
                       if texts[i:i + 2])
    else:
        body = "\n".join(texts)
    return ("text" if name == "csv" else name), body, planted


@PROPERTY
@given(bodies())
def test_strip_leaves_no_denied_identifier_and_keeps_the_allowed(
    drawn: tuple[str, str, list[tuple[str, str]]],
) -> None:
    name, body, planted = drawn
    out = filters()[name].redact(body, DENIED, "strip")
    assert _leaked(out, list(_DENIED)) == []
    allowed = [kv for kv in planted if kv in _ALLOWED]
    assert _leaked(out, allowed) == _leaked(body, allowed)


@PROPERTY
@given(bodies())
def test_drop_leaves_no_denied_identifier(drawn: tuple[str, str, list[tuple[str, str]]]) -> None:
    name, body, _ = drawn
    out = filters("drop")[name].redact(body, DENIED, "drop")
    assert _leaked(out, list(_DENIED)) == []
    assert leak_detector.leaks(out, emails=[JANE]) == []
