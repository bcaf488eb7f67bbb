"""Attacks on `joins.WINDOW` = 16: the windowed verify against a full rescan of the output.

The claim under attack (rules/detect/joins.py): no candidate of the output lies partly outside
its widened window, because a candidate never leaves its JSON token and the splice moves whole
tokens. An attacker controls the upstream body and the deny rules, so these tests build what
would break it: digit runs split over the numbers, strings or keys around a removed span,
escaped separators (`\\u002d`, `\\u0040`, `\\/`), JSON whitespace runs around the joins, local
parts past the 64-character bound, tokens far longer than the window, many joins close
together, contact points and record lists under `drop`, and domain rules. Each output is
checked three ways: the windowed verdict (forced, and as `windows_pay` chooses) equals
`pipeline.verify` of the whole output; the windowed identifiers equal a full rescan's; and
every candidate of the output lies inside one token of the output (the invariant itself: a
splice that joined two tokens without a separator would break it).

No hole was found (session s8, 2026-12-02): these are guard cases.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rules.detect import finder, joins, pipeline
from rules.detect.match import Policy
from rules.model import Lookup, RuleType
from tests.budgets import examples
from tests.test_joins import REGION, full_ids, patched, scanner_and_denied

_FRAGMENTS = [
    "jane@acme.com", "jane\\u0040acme.com", "jane%40acme.com", "jane&#64acme.com", "x@y.io",
    "512\\u002d555\\u002d0100", "5125550100", "512 555 0100", "(512) 555-0100", "555", "0100",
    "512", "+44 20 7946 0958", "\\u0035\\u0031\\u0032", "linkedin.com/in/jane",
    "https:\\/\\/linkedin.com\\/in\\/bob", "a\\\"b@c.io", "\\\\u0040", "\u200bjane@acme.com",
    "\uff4a\uff41\uff4e\uff45\uff20\uff41\uff43\uff4d\uff45\uff0e\uff43\uff4f\uff4d",
    "q" * 70 + "@acme.com", "b" * 300, "%", "&#6", "\\u00e9", "", " 5 ", "-", "(",
]
_NUMBERS = ["5125550100", "-5125550100", "1.5125550100e10", "442079460958", "12", "0", "5550100"]
_KEYS = ['"email"', '"phone"', '"phones"', '"value"', '"type"', '"data"', '"512"', '"5550100"']
_WHITESPACE = ["", " ", "\n", "\t", "  \r\n ", " " * 40]


@st.composite
def _string(draw: Any) -> str:
    parts: list[str] = draw(st.lists(st.sampled_from(_FRAGMENTS), min_size=1, max_size=3))
    glue: str = draw(st.sampled_from(["", " ", "-", ".", "/"]))
    return '"' + glue.join(parts) + '"'


_ws = st.sampled_from(_WHITESPACE)
_scalar = st.one_of(_string(), st.sampled_from(_NUMBERS), st.sampled_from(["null", "true"]))


def _padded(value: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.tuples(_ws, value, _ws).map("".join)


def _containers(kids: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    member = st.tuples(st.one_of(_string(), st.sampled_from(_KEYS)), _ws, _padded(kids))
    members = st.lists(member.map(lambda m: f"{m[0]}{m[1]}:{m[2]}"), max_size=5)
    contact = st.tuples(st.sampled_from(['"email"', '"phone"', '"linkedin"']), _string())
    return st.one_of(
        st.lists(_padded(kids), max_size=6).map(lambda xs: "[" + ",".join(xs) + "]"),
        members.map(lambda ms: "{" + ",".join(ms) + "}"),
        contact.map(lambda c: '{"type": ' + c[0] + ', "value": ' + c[1] + ', "verified": true}'),
    )


def _documents() -> st.SearchStrategy[bytes]:
    tree = st.recursive(_scalar, _containers, max_leaves=30)
    records = st.lists(tree, min_size=1, max_size=8).map(
        lambda xs: '{"data": [' + ", ".join(xs) + "]}"
    )
    return st.one_of(tree, records).map(lambda text: text.encode())


def _answer(denied: list[tuple[RuleType, str]], domains: list[str]) -> dict[RuleType, set[str]]:
    answer: dict[RuleType, set[str]] = {}
    for kind, normal in denied:
        answer.setdefault(kind, set()).add(normal)
    if domains:
        answer[RuleType.DOMAIN] = set(domains)
    return answer


def _candidates_stay_in_tokens(out: bytes) -> None:
    """Every candidate of `out` inside one token of `out`: what makes any margin safe."""
    parsed = finder.json_structure(out, frozenset(), 512)
    for kind, start, end, raw in finder.find_bytes(out):
        tokens = parsed.overlapping(start, end)
        assert len(tokens) == 1, (kind, raw, out[start:end])
        token = parsed.token(tokens[0])
        assert token.start <= start and end <= token.end, (kind, raw, out[start:end])


def assert_windowed_is_full(body: bytes, policy: Policy, answer: Lookup) -> None:
    """The windowed verify, at the margins 16, 3 and 0, equals a full rescan of the output."""
    inspection = pipeline.inspect(body, REGION)
    result = pipeline.filtered(inspection, answer, policy)
    full = pipeline.verify(result.body, REGION, answer, inspection.asked)
    assert pipeline.verify_filtered(inspection, result, REGION, answer) == full
    _candidates_stay_in_tokens(result.body)
    for window in (joins.WINDOW, 3, 0):
        with patched(joins, "WINDOW", window):
            with patched(joins, "windows_pay", lambda replaced, out: True):
                assert pipeline.verify_filtered(inspection, result, REGION, answer) == full
            ids = joins.output_ids(
                inspection.structure, inspection.text, body, result.body, result.replaced, REGION
            )
            assert ids == full_ids(result.body)


@pytest.mark.parametrize("flat", ["compiled", "reference"])
@settings(max_examples=examples(200), deadline=None, suppress_health_check=list(HealthCheck))
@given(body=_documents(), policy=st.sampled_from(["strip", "drop"]), data=st.data())
def test_adversarial_documents_verify_the_same_windowed_and_in_full(
    flat: str, body: bytes, policy: Policy, data: st.DataObject
) -> None:
    scanner, denied = scanner_and_denied(flat, body, data)
    with patched(finder, "json_structure", scanner):
        domains = data.draw(st.lists(st.sampled_from(["acme.com", "com", "y.io", "c.io"])))
        assert_windowed_is_full(body, policy, _answer(denied, domains))


_JANE = (RuleType.EMAIL, "jane@acme.com")
_PHONE = (RuleType.PHONE, "+15125550100")
_LONG = "x" * 5000

_CASES: dict[str, tuple[str, list[tuple[RuleType, str]]]] = {
    # a phone's digits on both sides of a removed element: `[5125, 5550100]` is no phone
    "digits around a removed element": ('[5125, "jane@acme.com", 5550100]', [_JANE]),
    "digits in strings around a removed element":
        ('["512 555", "jane@acme.com", "0100"]', [_JANE]),
    "digits in keys around a removed member":
        ('{"512": 1, "jane@acme.com": 2, "5550100": 3}', [_JANE]),
    "escaped dashes around a join":
        ('["512\\u002d555\\u002d", "jane@acme.com", "\\u002d0100"]', [_JANE]),
    "escaped at signs around a join": ('["jane\\u0040", "jane@acme.com", "acme.com"]', [_JANE]),
    "separators the phone scanner accepts, then JSON whitespace":
        ('[ "512 (" ,\n\t"jane@acme.com" ,  ") 555-0100" ]', [_JANE]),
    "whitespace longer than the window around a join":
        ("[5125 ," + " " * 40 + '"jane@acme.com"' + " " * 40 + ", 5550100]", [_JANE]),
    "tokens far longer than the window on both sides":
        (f'["{_LONG}512", "jane@acme.com", "5550100{_LONG}"]', [_JANE]),
    "a local part past the 64-character bound next to a join":
        ('["' + "q" * 70 + '@acme.com", "5125550100", "' + "q" * 70 + '"]', [_PHONE]),
    "many joins close together":
        ("[" + ", ".join(['"jane@acme.com", 512, "5125550100", "0100"'] * 30) + "]",
         [_JANE, _PHONE]),
    "strip nulls a value between digit keys":
        ('{"512": "jane@acme.com", "5550100": "x"}', [_JANE]),
    "a denied contact point between phone fragments":
        ('[{"type": "phone", "value": "512"}, {"type": "email", "value": "jane@acme.com"},'
         ' {"type": "phone", "value": "5550100"}]', [_JANE]),
}


@pytest.mark.parametrize("policy", ["strip", "drop"])
@pytest.mark.parametrize("case", sorted(_CASES))
def test_crafted_joins_verify_the_same_windowed_and_in_full(case: str, policy: Policy) -> None:
    body, denied = _CASES[case]
    assert_windowed_is_full(body.encode(), policy, _answer(denied, []))


@pytest.mark.parametrize("policy", ["strip", "drop"])
def test_records_dropped_between_lists_by_a_domain_rule(policy: Policy) -> None:
    body = (b'{"a": [{"email": "jane@acme.com", "phone": "512 555"}], "b": [{"email": "x@y.io"}],'
            b' "c": [{"phone": "0100", "email": "bob@sub.acme.com"}]}')
    assert_windowed_is_full(body, policy, _answer([], ["acme.com"]))


@pytest.mark.parametrize("joins_count", [1, 2, 8, 40])
def test_either_side_of_windows_pay_gives_the_full_verdict(joins_count: int) -> None:
    """Bodies near the cost threshold: the verdict is the same whichever way it goes."""
    pad = '"' + "p" * (2 * (joins.WINDOW + joins.TOKEN_REACH)) + '"'
    items = ", ".join(['"jane@acme.com"', "5125", pad, '"5550100"'] * joins_count)
    assert_windowed_is_full(f"[{items}]".encode(), "strip", _answer([_JANE], []))


_COMPANY_BODIES = [
    b'{"data":[{"name":"Acme Inc","city":"Austin","website":"acme.com"} , {"email":'
    b'"jane@acme.com"},{"website":"y.io","phone":"512"},{"phone":"5550100"}]}',
    b'[{"website":"acme.com","p":"512"},"jane@acme.com",{"website":"y.io"},{"p":"5550100"}]',
]


@pytest.mark.parametrize("policy", ["strip", "drop"])
@pytest.mark.parametrize("body", _COMPANY_BODIES)
def test_company_records_cut_next_to_a_denied_token(body: bytes, policy: Policy) -> None:
    """A record cut and a token cut side by side: regions that touch, digits either side."""
    companies = sorted(pipeline.inspect(body, REGION).asked[RuleType.COMPANY])
    assert companies
    for key in companies:
        answer = _answer([_JANE], [])
        answer[RuleType.COMPANY] = {key}
        assert_windowed_is_full(body, policy, answer)
