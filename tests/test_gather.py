"""The compiled bookkeeping of an inspection (rules/native/src/gather.rs, through
rules/detect/gather.py) against its pure-Python reference.

A hypothesis differential test over random JSON documents with planted identifiers (emails,
phones, LinkedIn URLs, encodings; phone, email and company keys): the compiled query
(`gather.asked`) is the reference's (`query_for` of every identifier of both detectors), and
the compiled search for denied sites and text candidates (`gather.denied`) is the reference's,
for answers drawn from the body's own identifiers and their domains, the memos cold and warm.
`gather.hits` is checked against the identifiers `pipeline._denied` reads from every identifier.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rules import normalize
from rules.detect import finder, gather, pipeline
from rules.model import RuleType
from tests.budgets import examples
from tests.test_native import texts

needs_native = pytest.mark.skipif(finder.BACKEND != "native", reason="rules._native is not built")
SETTINGS = settings(max_examples=examples(300), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
KEYS = ["phone", "mobile_phone", "email", "emails", "website", "name", "city", "type", "linkedin"]
keys = st.one_of(texts, st.sampled_from(KEYS))
values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(),
              st.floats(allow_nan=False, allow_infinity=False), texts,
              st.sampled_from(["phone", "+1 512 555 0100", "jane@eu.acme.com"])),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=14,
)
documents = values.map(lambda v: json.dumps(v).encode())


def answers(data: st.DataObject, inspection: pipeline.Inspection) -> dict[RuleType, set[str]]:
    """A store's answer to the body's query: some of its identifiers and of its domains."""
    found = sorted(inspection.found)
    picked = data.draw(st.lists(st.sampled_from(found), max_size=6)) if found else []
    answer: dict[RuleType, set[str]] = {}
    for kind, normal in picked:
        answer.setdefault(kind, set()).add(normal)
    domains = sorted(inspection.asked.get(RuleType.DOMAIN, ()))
    if domains and data.draw(st.booleans()):
        answer[RuleType.DOMAIN] = {data.draw(st.sampled_from(domains))}
    if data.draw(st.booleans()):
        answer.setdefault(RuleType.PHONE, set()).add("+15125550100")  # maybe not in the body
    return answer


def by_kind(ids: set[tuple[RuleType, str]]) -> dict[RuleType, set[str]]:
    out: dict[RuleType, set[str]] = {}
    for kind, normal in ids:
        out.setdefault(kind, set()).add(normal)
    return out


def check(data: st.DataObject, body: bytes) -> None:
    inspection = pipeline.inspect(body, "US")
    sites, text = inspection.sites, inspection.text
    reference = gather.asked_reference(sites, text)
    assert gather.asked(sites, text) == reference
    assert gather.asked(list(sites), text) == reference  # a compiled `Sites`, or any sequence
    ids = {i for _, site_ids in sites for i in site_ids} | {
        (c.kind, n) for c in text for n in c.normal
    }
    assert inspection.found == frozenset(ids)
    answer = answers(data, inspection)
    hits = gather.hits(inspection.asked, answer)
    assert hits == by_kind(pipeline._denied(ids, answer))
    assert gather.denied(sites, text, hits) == gather.denied_reference(sites, text, hits)
    assert gather.denied(tuple(sites), text, hits) == gather.denied(sites, text, hits)
    # a compiled `Candidates`, or the `Candidate` tuples of any sequence (headers appended)
    assert gather.asked(sites, tuple(text)) == reference
    assert gather.denied(sites, list(text), hits) == gather.denied(sites, text, hits)


@needs_native
@SETTINGS
@given(st.data(), documents)
def test_compiled_gathering_matches_the_reference(data: st.DataObject, body: bytes) -> None:
    finder.forget()
    check(data, body)  # memos cold
    check(data, body)  # memos warm


@needs_native
def test_query_holds_each_emails_parent_domains_once_per_host() -> None:
    body = json.dumps({"a": "x@eu.acme.com", "b": ["y@eu.acme.com", "z@other.org"],
                       "phone": "+1 512 555 0100"}).encode()
    asked = pipeline.inspect(body, "US").asked
    assert asked[RuleType.EMAIL] >= {"x@eu.acme.com", "y@eu.acme.com", "z@other.org"}
    hosts = {e.rpartition("@")[2] for e in asked[RuleType.EMAIL]}  # readings over-match
    assert asked[RuleType.DOMAIN] == {d for h in hosts for d in normalize.parent_domains(h)}
    assert "+15125550100" in asked[RuleType.PHONE]


@needs_native
def test_a_domain_rule_denies_the_sites_of_its_emails_and_nothing_else() -> None:
    body = b'{"a": "x@eu.acme.com", "b": "y@other.org", "c": "z@acme.com"}'
    inspection = pipeline.inspect(body, "US")
    hits = gather.hits(inspection.asked, {RuleType.DOMAIN: {"acme.com"}})
    assert hits == {RuleType.EMAIL: {"x@eu.acme.com", "z@acme.com"}}
    placed, spans = gather.denied(inspection.sites, inspection.text, hits)
    values: list[Any] = [inspection.structure.token(i).value for i, _ in placed]
    assert sorted(values) == ["x@eu.acme.com", "z@acme.com"]
    assert {body[c.start:c.end] for c in spans} >= {b"x@eu.acme.com", b"z@acme.com"}
    assert not any(b"other" in body[c.start:c.end] for c in spans)
