"""The compiled company records (rules/native/src/companies.rs, through
`rules.detect.company.company_candidates`) against their reference (`candidates_reference` over
`structure.Reference`).

A hypothesis differential test: random documents of records (lists of objects, nested
objects, maps, a body that is one object) whose keys name company fields (ids, domains, names,
cities, any key holding `email`) in any case, with strings (escaped too), whole numbers,
floats, big ints and free-mail addresses as values, duplicate fields, records over the cached
size, must give the same `CompanyRecord`s from both, in order, the records' memo cold and warm.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rules.detect import company, finder, structure
from rules.detect.contact import CONTACT_META_KEYS
from rules.model import RuleType
from tests.budgets import examples

needs_native = pytest.mark.skipif(finder.BACKEND != "native", reason="rules._native is not built")
SETTINGS = settings(max_examples=examples(300), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
FIELD_KEYS = [
    "openmart_id", "id", "ID", "external_id", "website", "domain", "Company_Website", "name",
    "company_name", "company", "city", "locality", "email", "business_emails", "workEmail",
    "content", "address", "data", "results", "note",
]
scalars = st.one_of(
    st.sampled_from([
        "Acme Inc", "ACME, Inc.", "acme", "Austin", "austin, tx", "https://www.acme.com/about",
        "acme.com", "jane@acme.com", "bob@gmail.com", "Caf\u00e9 Roma", "Z\u00fcrich", "",
        "\\u0041cme", "x" * 300, "ChIJ123", "42",
    ]),
    st.integers(), st.integers(min_value=10**18, max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12), st.booleans(),
    st.none(),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5)
    | st.dictionaries(st.one_of(st.sampled_from(FIELD_KEYS), st.text(max_size=6)), inner,
                      max_size=6),
    max_leaves=24,
)


def same(body: bytes) -> None:
    compiled = finder.json_structure(body, CONTACT_META_KEYS, 512)
    expected = company.candidates_reference(structure.reference(body, CONTACT_META_KEYS, 512))
    finder.forget()
    assert company.company_candidates(compiled) == expected  # memo cold
    assert company.company_candidates(compiled) == expected  # memo warm
    again = finder.json_structure(body, CONTACT_META_KEYS, 512)
    assert company.company_candidates(again) == expected  # another scan, the memo warm
    # the records and their query from the one compiled call (each shared keys tuple once)
    assert company.candidates_and_query(again) == (expected, company.query(expected))
    check_records(company.candidates_and_query(again)[0], expected)


def check_records(records: Sequence[company.CompanyRecord], expected: tuple[Any, ...]) -> None:
    """A compiled `CompanyRecords` reads as the reference's tuple, and its compiled
    `unchecked` and `denied_records` answer what the reference's loops answer over it."""
    assert list(records) == list(expected) and len(records) == len(expected)
    assert [records[i] for i in range(-len(records), len(records))] == [*expected, *expected]
    assert records[1:] == expected[1:] and records[::-1] == expected[::-1]
    assert company.unchecked(records) == company.unchecked(expected)
    keys = sorted(company.query(expected))
    for denied in ({}, set(keys[::2]), set(keys[1::3]), set(keys), {"name:nobody"}):
        answer = {RuleType.COMPANY: denied}
        assert company.denied_records(records, answer) == company.denied_records(expected, answer)


@needs_native
@SETTINGS
@given(values, st.booleans())
def test_compiled_company_records_match_the_reference(value: object, ascii_only: bool) -> None:
    same(json.dumps(value, ensure_ascii=ascii_only).encode())


@needs_native
@pytest.mark.parametrize("count", [1, 64, 65, 400])
def test_records_of_any_size_match_the_reference(count: int) -> None:
    """Past 64 fields a record is read, not kept: both sides agree on either side of it."""
    names = [f"Acme {i}" for i in range(count)]
    body = json.dumps({"data": [{"name": names, "city": ["Austin", "Boston"]}, {}]}).encode()
    same(body)


@needs_native
def test_the_same_bytes_under_other_fields_are_other_records() -> None:
    """A memo keyed by the raw bytes alone would give the second record the first's keys."""
    first = json.dumps({"data": [{"name": "acme.com"}]}).encode()
    second = json.dumps({"data": [{"website": "acme.com"}]}).encode()
    finder.forget()
    assert company.company_candidates(finder.json_structure(first, CONTACT_META_KEYS, 512))
    found = company.company_candidates(finder.json_structure(second, CONTACT_META_KEYS, 512))
    assert found == company.candidates_reference(
        structure.reference(second, CONTACT_META_KEYS, 512)
    )
    assert found[0].values == ("domain:acme.com",)
    ids = json.dumps({"data": [{"id": 42}, {"id": "42"}, {"id": 42.0}]}).encode()
    same(ids)


@needs_native
def test_compiled_records_read_as_a_sequence_of_the_reference() -> None:
    body = json.dumps({"data": [
        {"name": "Acme", "city": "Austin", "website": "acme.com"}, {"name": "Acme"},
        {"id": 7, "name": "Beta"},
        {"name": [f"n{i}" for i in range(70)], "city": [f"c{i}" for i in range(70)]},  # unchecked
    ]}).encode()
    records, _ = company.candidates_and_query(finder.json_structure(body, CONTACT_META_KEYS, 512))
    expected = company.candidates_reference(structure.reference(body, CONTACT_META_KEYS, 512))
    assert type(records) is finder._native.CompanyRecords
    assert records == expected and expected == records
    assert company.unchecked(records) == 1 and not records[-1].complete
    assert repr(records) == f"CompanyRecords({list(expected)!r})"
    assert records != expected[:-1] and records != None  # noqa: E711
    with pytest.raises(IndexError):
        records[len(records)]
    answer = {RuleType.COMPANY: {"name:acme", "domain:acme.com"}}
    assert company.denied_records(records, answer) == {
        records[0].node: "domain", records[1].node: "name"}
