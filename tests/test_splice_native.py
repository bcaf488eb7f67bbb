"""The compiled splice (rules/native/src/splice.rs, through `splice.spliced`) against its
pure-Python reference (`splice.spliced_reference`: `edits` + `apply_mapped`).

A hypothesis differential test over generated JSON text (tests/test_jsonspan.py's documents:
nested records, lists of contact points, object keys, duplicate keys, escapes, any whitespace):
for any set of denied tokens and cut records, both policies, the output bytes AND the replaced
regions are the reference's, over the compiled structure and over the pure-Python one. Then the
same through `pipeline.filtered` with answers drawn from the body's identifiers, memos cold and
warm, with the compiled placing of denied text candidates on tokens (rules/native/src/place.rs)
against `pipeline._place_reference`.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rules.detect import finder, gather, pipeline, splice, structure
from rules.detect.contact import CONTACT_META_KEYS
from rules.detect.splice import Policy
from tests.budgets import examples
from tests.test_gather import answers
from tests.test_gather import documents as identifier_documents
from tests.test_jsonspan import documents

needs_native = pytest.mark.skipif(finder.BACKEND != "native", reason="rules._native is not built")
SETTINGS = settings(max_examples=examples(400), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
policies = st.sampled_from(["strip", "drop"])


def picks(data: st.DataObject, size: int) -> list[int]:
    """Some indexes below `size`, sorted, each once."""
    if not size:
        return []
    return sorted(set(data.draw(st.lists(st.integers(0, size - 1), max_size=6))))


@needs_native
@SETTINGS
@given(st.data(), documents(unique=False), policies)
def test_compiled_splice_matches_the_reference(
    data: st.DataObject, document: tuple[bytes, Any], policy: Policy
) -> None:
    body = document[0]
    compiled = finder.json_structure(body, CONTACT_META_KEYS, 512)
    nodes = len(finder.scan_json(body, CONTACT_META_KEYS, 512).nodes)
    denied = picks(data, len(compiled))
    records = [-1, *picks(data, nodes)] if data.draw(st.booleans()) else picks(data, nodes)
    out, replaced = splice.spliced(compiled, body, denied, records, policy)
    assert (out, replaced) == splice.spliced_reference(compiled, body, denied, records, policy)
    pure = structure.reference(body, CONTACT_META_KEYS)
    assert (out, replaced) == splice.spliced_reference(pure, body, denied, records, policy)
    if not replaced:
        assert out is body  # nothing edited: the input object itself
    else:
        json.loads(out)  # still JSON


def check_filtered(data: st.DataObject, body: bytes, policy: Policy) -> None:
    inspection = pipeline.inspect(body, "US")
    answer = answers(data, inspection)
    result = pipeline.filtered(inspection, answer, policy)
    denied, unplaced = pipeline.denied_tokens(inspection, answer)
    hits = gather.hits(inspection.asked, answer)
    placed, spans = gather.denied(inspection.sites, inspection.text, hits)
    reference = pipeline._place_reference(inspection.structure, placed, spans)
    assert (denied, unplaced) == reference  # the compiled placing (rules/native/src/place.rs)
    assert list(denied.items()) == list(reference[0].items())  # the same order
    expected = splice.spliced_reference(
        inspection.structure, body, sorted(denied), [], policy
    )
    assert (result.body, list(result.replaced)) == expected


@needs_native
@SETTINGS
@given(st.data(), identifier_documents, policies)
def test_filtered_output_is_the_references_memos_cold_and_warm(
    data: st.DataObject, body: bytes, policy: Policy
) -> None:
    finder.forget()
    check_filtered(data, body, policy)  # memos cold
    check_filtered(data, body, policy)  # memos warm


@needs_native
def test_a_denied_contact_point_goes_with_its_record_under_drop() -> None:
    body = b'{"people": [{"name": "a", "emails": [{"email": "x@a.com", "verified": true}]},' \
           b' {"name": "b"}]}'
    compiled = finder.json_structure(body, CONTACT_META_KEYS, 512)
    email = next(i for i in range(len(compiled)) if compiled.token(i).value == "x@a.com")
    out, replaced = splice.spliced(compiled, body, [email], [], "drop")
    assert out == b'{"people": [{"name": "b"}]}'
    assert replaced == [(12, body.index(b'{"name": "b"}'), 0)]
    out, _ = splice.spliced(compiled, body, [email], [], "strip")
    assert out == b'{"people": [{"name": "a", "emails": []}, {"name": "b"}]}'


@needs_native
def test_out_of_range_indexes_are_refused() -> None:
    body = b'["x"]'
    compiled = finder.json_structure(body, CONTACT_META_KEYS, 512)
    with pytest.raises(IndexError):
        splice.spliced(compiled, body, [5], [], "strip")
    with pytest.raises(IndexError):
        splice.spliced(compiled, body, [], [3], "strip")
