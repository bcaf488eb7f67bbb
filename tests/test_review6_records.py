"""Adversarial review of the compiled record sequences (main at 6c2f185): a body's text
candidates kept as a compiled `Candidates` (rules/native/src/records.rs), its company records as
a compiled `CompanyRecords` (rules/native/src/companies.rs), and the rendered candidates merged
into the scanner's in span order (proxy/respond.py `with_rendered`).

The claims under attack: every compiled consumer (gather.rs, windows.rs, `unchecked`,
`denied_records`) reads a compiled sequence, a slice of one, or the plain tuple a JSON plan
holds once rendered candidates are merged in exactly as the pure-Python reference reads the
same `Candidate`s; the records own their forms (a memo cleared or dropped under them changes
nothing); and a JSON plan whose text is the merged tuple verifies around its joins what a full
reading of its output (the text scanner and the rendered reading) finds, so that no denied
identifier leaves. No hole was found (session s20, 2026-12-02): these are guard cases.
"""

from __future__ import annotations

import ctypes
import gc
import json
import operator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy import respond
from rules.detect import company, finder, gather, joins, pipeline, rendered, scan, structure
from rules.detect.match import Identifier, Policy
from rules.detect.scan import Candidate
from rules.model import Lookup, RuleType
from tests.budgets import examples
from tests.test_joins import REGION, full_ids, patched

needs_native = pytest.mark.skipif(finder.BACKEND != "native", reason="rules._native is not built")

# Strings that hold identifiers, pieces of them and markup a page drops (`<wbr>`, tags,
# comments, an escaped NUL): their rendered readings join what the text as written splits.
_PIECES = [
    "jane@acme.com", "jane.doe<wbr>@acme.com", "jane\\u0000@acme.com", "bob<br/>@x.io",
    "512<b>555</b>0100", "+1 512<wbr>555 0199", "linkedin.com/in/<wbr>jane", "5125550100",
    "512 555 0100", "jane\\u0040acme.com", "a\\\"b@c.io", "\u200bjane@acme.com", "caf\u00e9",
    "<wbr>", "<b>", "</b>", "\\u0000", "<!-- x -->", "<span class=\\\"a\\\">", "<", ">",
    "555", "0100", "@acme.com", "x@y.io", "",
]
_KEYS = ['"email"', '"phone"', '"bio"', '"value"', '"type"', '"data"']


@st.composite
def _string(draw: Any) -> str:
    parts: list[str] = draw(st.lists(st.sampled_from(_PIECES), min_size=1, max_size=4))
    glue: str = draw(st.sampled_from(["", " ", "-", ".", "/"]))
    return '"' + glue.join(parts) + '"'


def _containers(kids: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    member = st.tuples(st.one_of(_string(), st.sampled_from(_KEYS)), kids)
    members = st.lists(member.map(lambda m: f"{m[0]}: {m[1]}"), max_size=5)
    return st.one_of(
        st.lists(kids, max_size=6).map(lambda xs: "[" + ", ".join(xs) + "]"),
        members.map(lambda ms: "{" + ", ".join(ms) + "}"),
    )


def _documents() -> st.SearchStrategy[bytes]:
    leaf = st.one_of(_string(), st.sampled_from(["5125550100", "12", "null"]))
    tree = st.recursive(leaf, _containers, max_leaves=24)
    records = st.lists(tree, min_size=1, max_size=6).map(
        lambda xs: '{"data": [' + ", ".join(xs) + "]}"
    )
    return st.one_of(tree, records).map(lambda text: text.encode())


def _full_verdict(out: bytes, answer: Lookup, asked: Lookup) -> pipeline.Verdict:
    """The reference verdict: the whole output read by the text scanner and rendered."""
    scanned = pipeline.verify(out, REGION, answer, asked)
    shown = rendered.candidates_bytes(out, REGION)
    more = pipeline.verdict({(c.kind, n) for c in shown for n in c.normal}, answer, asked)
    unasked = {t: scanned.unasked.get(t, set()) | more.unasked.get(t, set())
               for t in {*scanned.unasked, *more.unasked}}
    return pipeline.Verdict(scanned.leaked or more.leaked, unasked)


def _check_plan(body: bytes, policy: Policy, denied: list[Identifier]) -> None:
    plan = respond.json_filter(body, REGION)
    inspection = plan.inspection
    assert inspection is not None
    text = inspection.text
    as_list = list(text)
    # the merged tuple (or the compiled sequence) in the scanner's order, read alike by both
    assert as_list == sorted(as_list, key=lambda c: (c.start, c.end, c.kind))
    expected = sorted([*scan.scan_bytes(body, REGION), *rendered.candidates_bytes(body, REGION)],
                      key=lambda c: (c.start, c.end, c.kind))
    assert as_list == expected
    sites = list(inspection.sites)
    assert gather.asked(inspection.sites, text) == gather.asked_reference(sites, as_list)
    answer: dict[RuleType, set[str]] = {}
    for kind, normal in denied:
        answer.setdefault(kind, set()).add(normal)
    hits = gather.hits(inspection.asked, answer)
    assert gather.denied(inspection.sites, text, hits) == gather.denied_reference(
        sites, as_list, hits)
    result = plan.filtered(answer, policy)
    full = _full_verdict(result.body, answer, inspection.asked)
    assert plan.verify(result, REGION, answer, inspection.asked) == full
    for window in (joins.WINDOW, 3, 0):
        with patched(joins, "WINDOW", window), patched(joins, "windows_pay", lambda r, o: True):
            assert plan.verify(result, REGION, answer, inspection.asked) == full
            compiled = joins.windows_of(inspection.structure, text, result.replaced, len(body))
            reference = joins._windows(
                inspection.structure, joins._Blocks(as_list), result.replaced, len(body))
            assert compiled == reference
    if not result.unplaced and not full.leaked:  # it goes out: nothing denied in it
        shown = rendered.candidates_bytes(result.body, REGION)
        out_ids = full_ids(result.body) | {(c.kind, n) for c in shown for n in c.normal}
        assert not pipeline._denied(out_ids, answer), (body, answer, result.body)


@pytest.mark.parametrize("flat", ["compiled", "reference"])
@settings(max_examples=examples(200), deadline=None, suppress_health_check=list(HealthCheck))
@given(body=_documents(), policy=st.sampled_from(["strip", "drop"]), data=st.data())
def test_a_plan_with_rendered_candidates_verifies_as_a_full_reading(
    flat: str, body: bytes, policy: Policy, data: st.DataObject
) -> None:
    """`with_rendered` merges a plain tuple into the compiled text: gather, the join windows
    and the windowed verdict read it as the reference does, whatever is denied."""
    scanner = finder.json_structure if flat == "compiled" else structure.reference
    with patched(finder, "json_structure", scanner):
        plan = respond.json_filter(body, REGION)
        assert plan.inspection is not None
        found = sorted(plan.inspection.found)
        denied = data.draw(st.lists(st.sampled_from(found), max_size=3) if found else st.just([]))
        _check_plan(body, policy, denied)


def test_a_rendered_email_before_the_scanners_is_denied_and_verified() -> None:
    """A guard case of the above: the rendered candidate first in the body, denied."""
    body = json.dumps({"bio": "mail jane.doe<wbr>@acme.com", "email": "bob@acme.com",
                       "phone": "+15125550100", "n": "x" * 200}).encode()
    inspection = respond.json_filter(body, REGION).inspection
    assert inspection is not None and type(inspection.text) is tuple
    for policy in ("strip", "drop"):
        _check_plan(body, policy, [(RuleType.EMAIL, "jane.doe@acme.com")])
        _check_plan(body, policy, [(RuleType.EMAIL, "bob@acme.com")])


_BODY = json.dumps({"data": [
    {"name": "Acme", "city": "Austin", "website": "acme.com", "email": "jane@acme.com"},
    {"name": "Acme", "phone": "+1 512 555 0100", "linkedin": "linkedin.com/in/jane"},
    {"id": 7, "name": "Beta", "bio": "bob@x.io or 512 555 0199"},
    {"name": [f"n{i}" for i in range(70)], "city": [f"c{i}" for i in range(70)]},  # unchecked
    {"name": "Gamma", "email": "x@y.io"},
]}).encode()
_SLICES = [slice(None), slice(1, None), slice(None, -1), slice(None, None, -1), slice(0, 9, 2),
           slice(-3, None), slice(3, 1), slice(-100, 100, 3), slice(4, 0, -2)]


@needs_native
def test_slices_of_the_compiled_sequences_are_read_as_the_reference() -> None:
    """A slice is itself compiled: the compiled readers (gather, windows, `unchecked`,
    `denied_records`) answer over it what the reference answers over the same slice."""
    inspection = pipeline.inspect(_BODY, REGION)
    text, records = inspection.text, inspection.companies
    assert type(text) is finder._native.Candidates
    assert type(records) is finder._native.CompanyRecords
    every_text, every_record = list(text), list(records)
    keys = sorted(company.query(every_record))
    hits = {RuleType.EMAIL: {"jane@acme.com", "x@y.io"}, RuleType.PHONE: {"+15125550199"}}
    for part in _SLICES:
        some, expected = text[part], every_text[part]
        assert type(some) is finder._native.Candidates and list(some) == expected
        assert gather.asked((), some) == gather.asked_reference((), expected)
        assert gather.denied((), some, hits) == gather.denied_reference((), expected, hits)
        assert joins.windows_of(inspection.structure, some, [(40, 60, 4)], len(_BODY)) == (
            joins.windows_of(inspection.structure, tuple(expected), [(40, 60, 4)], len(_BODY)))
        mine, theirs = records[part], tuple(every_record[part])
        assert type(mine) is finder._native.CompanyRecords and mine == theirs
        assert company.unchecked(mine) == company.unchecked(theirs)
        for denied in (set(keys[::2]), set(keys[1::3]), {"name:acme"}):
            answer = {RuleType.COMPANY: denied}
            assert company.denied_records(mine, answer) == company.denied_records(theirs, answer)


@needs_native
def test_the_records_own_their_forms_when_the_memos_are_gone() -> None:
    """The records hold the memo's shared tuples (Py<...>): the memos cleared and dropped,
    other bodies read meanwhile and the cycle collector run, they read as before."""
    inspection = pipeline.inspect(_BODY, REGION)
    text, records = inspection.text, inspection.companies
    before_text = [tuple(c) for c in text]
    before_records = [tuple(r) for r in records]
    finder.forget()  # every compiled memo dropped (their tuples now held by the records only)
    for i in range(50):
        other = json.dumps({"data": [{"email": f"p{i}@q{i}.io", "name": f"Co {i}"}]}).encode()
        pipeline.inspect(other, REGION)
    gc.collect()
    assert [tuple(c) for c in text] == before_text
    assert [tuple(r) for r in records] == before_records
    answer = {RuleType.EMAIL: {"jane@acme.com"}, RuleType.COMPANY: {"name:acme"}}
    result = pipeline.filtered(inspection, answer, "strip")
    assert b"jane@acme.com" not in result.body and result.unplaced == 1  # the unchecked one
    assert not pipeline.verify_filtered(inspection, result, REGION, answer).leaked


@needs_native
def test_the_compiled_sequences_read_alike_through_every_python_reader() -> None:
    """Indexing through `operator`, `reversed`, membership and unpacking: a tuple's answers."""
    inspection = pipeline.inspect(_BODY, REGION)
    for compiled in (inspection.text, inspection.companies, inspection.sites):
        expected = tuple(compiled)
        assert len(expected) >= 4 and compiled == expected and compiled == list(expected)
        assert [operator.getitem(compiled, i) for i in range(-len(expected), len(expected))] == [
            *expected, *expected]
        assert list(reversed(compiled)) == list(reversed(expected))
        assert all(item in compiled for item in expected)
        assert (*compiled,) == expected and bool(compiled)
        with pytest.raises(IndexError):
            operator.getitem(compiled, -len(expected) - 1)
    assert scan.scan_bytes(b"", REGION) == [] and not scan.scan_bytes(b"", REGION)
    assert all(type(c) is Candidate for c in inspection.text)


_SEQUENCE_ITEM = ctypes.pythonapi.PySequence_GetItem
_SEQUENCE_ITEM.restype = ctypes.py_object
_SEQUENCE_ITEM.argtypes = [ctypes.py_object, ctypes.c_ssize_t]


@needs_native
def test_the_c_sequence_protocol_bounds_a_negative_index_as_a_tuple_does() -> None:
    """`PySequence_GetItem` (the C API a C extension indexes with) as on the tuple. Under
    `#[pyclass(sequence)]` CPython added the length to a negative index and `__getitem__` added
    it again (-len-1 read the last item); rules/native/src/seq.rs says why none is one."""
    inspection = pipeline.inspect(_BODY, REGION)
    for compiled in (inspection.text, inspection.companies, inspection.sites):
        expected = tuple(compiled)
        for index in range(-len(expected), len(expected)):
            assert _SEQUENCE_ITEM(compiled, index) == _SEQUENCE_ITEM(expected, index)
        with pytest.raises(IndexError):
            _SEQUENCE_ITEM(compiled, -len(expected) - 1)
