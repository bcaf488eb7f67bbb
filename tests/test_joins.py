"""rules/detect/joins.py: verifying a spliced body around its joins reads what a full rescan reads.

Hypothesis builds JSON documents whose strings are identifiers and pieces of them (escaped at
random, so `\\u0040` and `\\/` stand in them too), numbers of phone length, contact points and
lists of records; denies a random part of what the inspection found; splices by both policies;
and compares the identifiers of the output read in full with those `joins.output_ids` reads
(the input's candidates away from the joins, windows around them). The windows' margin is
also set to 0 and 3 bytes: then only the widening to whole tokens keeps the reading right.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rules.detect import finder, joins, pipeline, structure
from rules.detect.match import Identifier, Policy
from rules.detect.readings import RULE_TYPE, normals
from rules.model import RuleType
from tests.budgets import examples
from tests.test_jsonspan import json_array, json_contact, json_object, json_record, json_string

REGION = "US"
_POOL = [
    "jane@acme.com", "Bob.Smith@Example.org", "x@y.io", "jane@", "@acme.com", "acme.com",
    "mail jane@acme.com now", "512-555-0100", "(512) 555 0199", "+44 20 7946 0958", "555",
    "0100", "512", "linkedin.com/in/jane-doe", "https://www.linkedin.com/in/bob/", "/in/x",
    "jane%40acme.com", "jane&#64;acme.com", "call +1 512 555 0100 or bob@x.org", "a, b", "",
]
_BIG = st.sampled_from(["15125550100", "5125550100", "1.5125550100e10", "-5125550100",
                        "442079460958", "12"])
_scalars = st.one_of(
    json_string(_POOL), _BIG.map(lambda text: (text, float(text))),
    st.sampled_from([("true", True), ("null", None)]),
)


def _documents() -> Any:
    tree = st.recursive(
        _scalars,
        lambda kids: st.one_of(json_array(kids), json_object(kids, True), json_contact(),
                               json_record(kids)),
        max_leaves=24,
    )
    tree = st.one_of(tree, json_array(json_record(tree)))
    return tree.map(lambda t: t[0].encode())


def full_ids(out: bytes) -> set[Identifier]:
    """The reference: every candidate of the whole output, normalised."""
    return {
        (RULE_TYPE[kind], n)
        for kind, _, _, raw in finder.find_bytes(out) for n in normals(kind, raw, REGION)
    }


@contextmanager
def patched(module: Any, name: str, value: object) -> Iterator[None]:
    saved = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, saved)


def scanner_and_denied(
    flat: str, body: bytes, data: st.DataObject
) -> tuple[Callable[..., Any], list[Identifier]]:
    """The JSON scan `flat` names, and a drawn subset of what it finds in `body` to deny."""
    scanner = finder.json_structure if flat == "compiled" else structure.reference
    with patched(finder, "json_structure", scanner):
        found = sorted(pipeline.inspect(body, REGION).found)
    denied = data.draw(st.lists(st.sampled_from(found), unique=True) if found else st.just([]))
    return scanner, denied


@pytest.mark.parametrize("flat", ["compiled", "reference"])
@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=_documents(), policy=st.sampled_from(["strip", "drop"]), data=st.data())
def test_reading_around_the_joins_finds_what_a_full_rescan_finds(
    flat: str, body: bytes, policy: Policy, data: st.DataObject
) -> None:
    """Every document is read with each margin (generating it costs more than reading it)."""
    scanner, denied = scanner_and_denied(flat, body, data)
    answer: dict[RuleType, set[str]] = {}
    for kind, normal in denied:
        answer.setdefault(kind, set()).add(normal)
    for window in (0, 3, joins.WINDOW):
        with patched(finder, "json_structure", scanner), patched(joins, "WINDOW", window):
            read_around_the_joins(body, policy, answer)


def read_around_the_joins(body: bytes, policy: Policy, answer: dict[RuleType, set[str]]) -> None:
    """The output's identifiers and both verifications, windowed, equal a full rescan."""
    inspection = pipeline.inspect(body, REGION)
    result = pipeline.filtered(inspection, answer, policy)
    ids = joins.output_ids(
        inspection.structure, inspection.text, body, result.body, result.replaced, REGION
    )
    assert ids == full_ids(result.body)
    as_tuples = tuple(inspection.text)  # `Candidate` tuples, not a compiled `Candidates`
    assert ids == joins.output_ids(
        inspection.structure, as_tuples, body, result.body, result.replaced, REGION
    )
    chosen = pipeline.verify_filtered(inspection, result, REGION, answer)
    with patched(joins, "windows_pay", lambda replaced, out: True):  # small bodies too
        windowed = pipeline.verify_filtered(inspection, result, REGION, answer)
    full = pipeline.verify(result.body, REGION, answer, inspection.asked)
    assert windowed == full
    assert chosen == full


def test_an_unchanged_body_reuses_the_inspection() -> None:
    body = b'{"data": [{"email": "jane@acme.com"}]}'
    inspection = pipeline.inspect(body, REGION)
    result = pipeline.filtered(inspection, {}, "strip")
    assert result.body is body and result.replaced == ()
    verdict = pipeline.verify_filtered(inspection, result, REGION, {})
    assert verdict == pipeline.verify(body, REGION, {}, inspection.asked)
    assert not verdict.leaked and not verdict.unasked


def test_a_denied_email_is_gone_and_its_neighbours_are_read() -> None:
    body = (b'{"data": [{"email": "jane@acme.com", "phone": "512-555-0100"},'
            b' {"email": "bob@x.org"}]}')
    inspection = pipeline.inspect(body, REGION)
    answer = {RuleType.EMAIL: {"jane@acme.com"}}
    result = pipeline.filtered(inspection, answer, "strip")
    ids = joins.output_ids(
        inspection.structure, inspection.text, body, result.body, result.replaced, REGION
    )
    assert (RuleType.EMAIL, "jane@acme.com") not in ids
    assert {(RuleType.EMAIL, "bob@x.org"), (RuleType.PHONE, "+15125550100")} <= ids
    assert ids == full_ids(result.body)


@pytest.mark.skipif(finder.BACKEND != "native", reason="rules._native is not built")
@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=_documents(), policy=st.sampled_from(["strip", "drop"]), data=st.data())
def test_compiled_windows_are_the_reference_windows(
    body: bytes, policy: Policy, data: st.DataObject
) -> None:
    """rules/native/src/windows.rs against `joins._windows`, on the same compiled structure."""
    inspection = pipeline.inspect(body, REGION)
    found = sorted(inspection.found)
    denied = data.draw(st.lists(st.sampled_from(found), unique=True) if found else st.just([]))
    answer: dict[RuleType, set[str]] = {}
    for kind, normal in denied:
        answer.setdefault(kind, set()).add(normal)
    replaced = pipeline.filtered(inspection, answer, policy).replaced
    for window in (0, 3, joins.WINDOW):
        with patched(joins, "WINDOW", window):
            compiled = joins.windows_of(inspection.structure, inspection.text, replaced, len(body))
            blocks = joins._Blocks(inspection.text)
            assert compiled == joins._windows(inspection.structure, blocks, replaced, len(body))
            as_tuples = tuple(inspection.text)  # `Candidate` tuples, not a compiled `Candidates`
            tupled = joins.windows_of(inspection.structure, as_tuples, replaced, len(body))
            assert tupled == compiled
