"""The leak fuzzer (issue #10): random Openmart-like JSON with denied and allowed identifiers
planted in random spellings and places → the response path → zero denied identifiers in what
the client receives, judged by tests/leak_detector.py (not the product's detector); allowed
ones kept where the policy allows.

Volume runs through the pure pipeline (`proxy.respond` → `rules.detect.pipeline`, the functions the
proxy calls, with a store answer computed from the rules); a smaller number goes through the
running proxy against real Redis, encoded (gzip multi-member, br, deflate). Examples per test
come from the hypothesis profile (`ci`: bounded; `HYPOTHESIS_PROFILE=deep`: many more).
"""

from __future__ import annotations

import gzip
import html
import json
import unicodedata
import zlib
from typing import Any
from urllib.parse import quote

import aiohttp
import brotli
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy import respond
from proxy.settings import Settings
from rules.detect import pipeline
from rules.detect.match import Policy, is_denied
from rules.model import Lookup, RuleType, tenant_of
from tests.harness import fake_upstream, running_proxy
from tests.leak_detector import leaks
from tests.test_edge import EdgeFake, key
from tests.test_suppression import add

DENIED_EMAIL, ALLOWED_EMAIL = "jane.doe@acme.com", "karl.marx@beta.io"
DENIED_PHONE, ALLOWED_PHONE = "+15125550100", "+14155550123"
DENIED_LI, ALLOWED_LI = "linkedin.com/in/jane-doe", "linkedin.com/in/karl-marx"
RULES: dict[RuleType, set[str]] = {
    RuleType.EMAIL: {DENIED_EMAIL}, RuleType.PHONE: {DENIED_PHONE}, RuleType.LINKEDIN: {DENIED_LI},
}
ZW = "\u200b"


def email_spellings(address: str) -> st.SearchStrategy[str]:
    local, _, domain = address.partition("@")
    return st.sampled_from([
        address, address.upper(), f"{local}&#64;{domain}", f"{local}%40{domain}",
        f"{local}\\u0040{domain}", f"mailto:{address}?subject=hi", f"{local}{ZW}@{domain}",
        f"“{address}”", f"<{address}>", f"{address}。", f"a|{address}", f"&lt;{address}&gt;",
        quote(f"mailto:{address}"), f"{local}＠{domain}",
    ])


def phone_spellings(e164: str) -> st.SearchStrategy[Any]:
    nsn = e164[2:]
    area, exch, line = nsn[:3], nsn[3:6], nsn[6:]
    return st.sampled_from([
        e164, f"+1 {area}-{exch}-{line}", f"({area}) {exch}-{line}", f"{area}.{exch}.{line}",
        f"tel:{e164}", f"1{nsn}", f"call {area} {exch} {line} now", int("1" + nsn),
        float("1" + nsn), f"001{nsn}", f"{area}\u00a0{exch}\u00a0{line}",
    ])


def linkedin_spellings(profile: str) -> st.SearchStrategy[str]:
    slug = profile.rsplit("/", 1)[1]
    return st.sampled_from([
        f"https://www.linkedin.com/in/{slug}/", f"see linkedin.com/in/{slug}, thanks",
        f'<a href="https://uk.linkedin.com/in/{slug}?trk=x">x</a>',
        f"https://linkedin.com:443/in/{slug}.", f"HTTPS://WWW.LINKEDIN.COM/IN/{slug.upper()}",
        f"https://www.linkedin.com/m/in/{slug}", f"linkedin.com/MWLITE/in/{slug}/?trk=x",
        f"https://www.linkedin.com\\in\\{slug}", f"linkedin.com/m\\in/{slug}",
    ])


def planted(denied: bool) -> st.SearchStrategy[Any]:
    email, phone, li = ((DENIED_EMAIL, DENIED_PHONE, DENIED_LI) if denied
                        else (ALLOWED_EMAIL, ALLOWED_PHONE, ALLOWED_LI))
    spelled = st.one_of(email_spellings(email), phone_spellings(phone), linkedin_spellings(li))
    return spelled.map(lambda v: unicodedata.normalize("NFD", v) if isinstance(v, str) else v)


_KEYS = ["email", "phone_no", "msisdn", "notes", "bio", "value", "landline", "contact", "id",
         "misc", "links", "number"]
_filler = st.one_of(st.none(), st.booleans(), st.integers(-999, 999),
                    st.text("abcdef -", max_size=8))


@st.composite
def place(draw: Any, value: Any) -> Any:
    """One identifier in one place: a value, free text, a key, a typed contact point…"""
    how = draw(st.sampled_from(["value", "text", "key", "typed", "wrapper", "list"]))
    if how == "text" and isinstance(value, str):
        return {"bio": f"Reach me at {value} or later."}
    if how == "key" and isinstance(value, str):
        return {"by_contact": {value: {"seen": 1}}}
    if how == "typed":
        return {"contacts": [{"type": "phone", "value": value}, {"type": "note", "value": "hi"}]}
    if how == "wrapper":
        return {"emails": [{"address": value, "is_verified": True}]}
    if how == "list":
        return {"values": [draw(_filler), value]}
    return {draw(st.sampled_from(_KEYS)): value}


@st.composite
def documents(draw: Any) -> tuple[bytes, int]:
    """A list of person records, some holding a planted identifier; duplicate keys at times."""
    people, bad = [], 0
    for i in range(draw(st.integers(1, 5))):
        denied = draw(st.booleans())
        bad += denied
        person: dict[str, Any] = {"id": f"p{i}", "name": draw(st.text("abc ", max_size=6))}
        person.update(draw(place(draw(planted(denied)))))
        people.append(person)
    body = json.dumps({"status": "COMPLETED", "data": people}, ensure_ascii=draw(st.booleans()))
    if draw(st.booleans()) and bad:  # a duplicate key holding a denied value first
        spelled = draw(email_spellings(DENIED_EMAIL))
        body = body[:-1] + ', "owner": ' + json.dumps(spelled) + ', "owner": null}'
    return body.encode(), bad


def answer_for(query: Lookup) -> dict[RuleType, set[str]]:
    return {t: set(v) & RULES.get(t, set()) for t, v in query.items()}


def run_pipeline(body: bytes, policy: Policy) -> bytes:
    plan = respond.json_filter(body, "US")
    query = plan.query()
    answer = answer_for(query)
    result = plan.filtered(answer, policy)
    verdict = pipeline.verify(result.body, "US", answer, query)
    extra = answer_for(verdict.unasked)
    if verdict.leaked or any(is_denied(t, v, extra) for t, vs in extra.items() for v in vs):
        return b'{"detail": "response withheld"}'  # the proxy's 502: nothing leaks either
    return result.body


def judged(out: bytes) -> list[str]:
    return leaks(out.decode(), emails=[DENIED_EMAIL], phones=[DENIED_PHONE],
                 linkedins=[DENIED_LI])


# Ten times the profile's examples (`ci`: 2,000 documents per policy draw; `deep`: 200,000).
_FUZZ = settings(max_examples=settings.default.max_examples * 10,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@_FUZZ
@given(documents(), st.sampled_from(["strip", "drop"]))
def test_no_denied_identifier_leaves_the_pipeline(doc: tuple[bytes, int], policy: Policy) -> None:
    body, _ = doc
    out = run_pipeline(body, policy)
    json.loads(out)  # still JSON
    assert judged(out) == []


@_FUZZ
@given(st.lists(planted(False), min_size=1, max_size=4), st.sampled_from(["strip", "drop"]))
def test_allowed_identifiers_are_kept_byte_identical(values: list[Any], policy: Policy) -> None:
    body = json.dumps({"data": [{"id": i, "v": v} for i, v in enumerate(values)]}).encode()
    assert run_pipeline(body, policy) is body or run_pipeline(body, policy) == body


@_FUZZ
@given(st.sampled_from(["", "  ", "\n"]), st.sampled_from(["18446744073709551617", "1.0E+2",
       "-0", "0.50", "1e-2", "123456789012345678901234567890"]))
def test_nothing_denied_means_the_same_bytes(space: str, number: str) -> None:
    body = f'{{"n":{space}{number}, "a": [1,{space}2], "a": {number}, "e": "{ALLOWED_EMAIL}"}}'
    assert run_pipeline(body.encode(), "strip") == body.encode()


def _encode(body: bytes, how: str) -> tuple[bytes, dict[str, str]]:
    if how == "gzip":  # two members: clients decode all of them
        half = len(body) // 2
        return gzip.compress(body[:half]) + gzip.compress(body[half:]), {"Content-Encoding": "gzip"}
    if how == "br":
        return brotli.compress(body), {"Content-Encoding": "br"}
    if how == "deflate":
        return zlib.compress(body), {"Content-Encoding": "deflate"}
    return body, {}


@pytest.mark.parametrize("how", ["identity", "gzip", "br", "deflate"])
async def test_fuzzed_documents_through_the_running_proxy(redis_url: str, how: str) -> None:
    api_key = key()
    scope = tenant_of(api_key)
    for rule_type, values in RULES.items():
        await add(redis_url, scope, rule_type, *values)
    samples: list[bytes] = []

    @settings(max_examples=15, database=None, suppress_health_check=list(HealthCheck))
    @given(documents())
    def draw(doc: tuple[bytes, int]) -> None:
        samples.append(doc[0])

    draw()
    fake = EdgeFake()
    async with fake_upstream(fake) as (_, upstream), \
            running_proxy(Settings(upstream=upstream, redis=redis_url)) as proxy, \
            aiohttp.ClientSession(auto_decompress=True) as client:
        for i, body in enumerate(samples):
            encoded, headers = _encode(body, how)
            fake.canned[f"f{i}"] = (200, {"Content-Type": "application/json", **headers}, encoded)
            async with client.get(f"{proxy.url}/edge/f{i}", headers={"X-API-Key": api_key}) as r:
                out = await r.read()
            assert r.status in (200, 502) and judged(out) == [], body


@pytest.mark.parametrize(
    ("name", "doc"),
    [
        # a string holding a denied identifier goes as a whole (README: free text)
        ("text", {"bio": f"write to {html.escape('<' + DENIED_EMAIL + '>')}", "x": ALLOWED_EMAIL}),
        ("phone-anywhere", {"msisdn": "15125550100", "note": "call (512) 555-0100"}),
        ("object-key", {"by_email": {DENIED_EMAIL: {"id": 1}, ALLOWED_EMAIL: {"id": 2}}}),
        ("typed-point", {"contacts": [{"type": "phone", "value": "+1 512 555 0100"}]}),
    ],
)
async def test_leak_classes_through_the_running_proxy(redis_url: str, name: str, doc: Any) -> None:
    """Issue #10 classes 3-6 (text, phones anywhere, object keys, duplicate keys below)."""
    api_key = key()
    for rule_type, values in RULES.items():
        await add(redis_url, tenant_of(api_key), rule_type, *values)
    dup = b'{"e": "' + DENIED_EMAIL.encode() + b'", "e": "x", "n": 18446744073709551617}'
    bodies = {name: json.dumps(doc).encode(), "dup": dup}
    fake = EdgeFake()
    async with fake_upstream(fake) as (_, upstream), \
            running_proxy(Settings(upstream=upstream, redis=redis_url)) as proxy, \
            aiohttp.ClientSession() as client:
        for label, body in bodies.items():
            fake.canned[label] = (200, {"Content-Type": "application/json"}, body)
            async with client.get(f"{proxy.url}/edge/{label}", headers={"X-API-Key": api_key}) as r:
                assert r.status == 200, label
                out = await r.read()
            assert judged(out) == [], label
            assert b"18446744073709551617" in out or label != "dup"  # big ints never floats
            assert ALLOWED_EMAIL.encode() in out or ALLOWED_EMAIL not in body.decode()
