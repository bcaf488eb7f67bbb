"""The compiled finding core (rules._native) against its reference (rules/detect/textfind.py).

A hypothesis differential test: random documents and texts (identifiers planted in random
surroundings, random unicode, adversarial `@@@`, long digit runs, invalid UTF-8) must give
exactly the same raw candidates, spans, texts and order from both. Plus: the backend that
rules/detect/finder.py selected is the compiled one whenever DENYPROXY_REQUIRE_NATIVE=1 (as
scripts/test sets it), and scanning gives the same result through either backend.
"""

from __future__ import annotations

import gc
import json
import logging
import os
from types import ModuleType

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rules import normalize
from rules.detect import finder, pipeline, scan, structure, textfind
from tests.budgets import examples

try:
    from rules import _native as native  # type: ignore[attr-defined]  # optional extension
except ImportError:  # pragma: no cover - only without a Rust toolchain
    native = None

needs_native = pytest.mark.skipif(native is None, reason="rules._native is not built")
SETTINGS = settings(max_examples=examples(400), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

PLANTED = [
    "jane@acme.com",
    "JANE@ACME.COM",
    "jane&#64;acme.com",
    "jane&#x40;acme.com",
    "jane%40acme.com",
    "jane\\u0040acme.com",
    "jane＠acme.com",
    "jane﹫acme.com",
    "ｊａｎｅ＠ａｃｍｅ．ｃｏｍ",
    "ja\u200bne@acme.com",
    "mailto:jane@acme.com?subject=Hi",
    "o'brien@example.org",
    "sales+eu@shop.co.uk",
    "&lt;jane@acme.com&gt;",
    "jane&commat;acme.com",
    "请联系jane@acme.com。",
    "https://www.linkedin.com/in/jane-doe/",
    "LinkedIn.com/in/jane-doe,",
    "linkedin.com:443/in/x",
    "http://uk.linkedin.com/in/jane-doe.smith?trk=1",
    "https://www.linkedin.com/m/in/jane-doe",
    "linkedin.com/MWLITE/in/jane-doe/?trk=x",
    "https://mobile.linkedin.com/in/jane-doe",
    "linkedin.com/pub/jane-doe/a7/576/b50",
    "/m/in/",
    "\u212a",
    "\u0130",
    "ſ",
    "+1 512 555 0100",
    "(512) 555-0100",
    "+44 20 7946 0958",
    "0015125550100",
    "1.5125550100e10",
    "15125550100.0",
    "-1.5e10",
    "512.555.0100",
    "( 512) 555 0100",
    "٥١٢٥٥٥٠١٠٠",
    "+1\u00a0512",
    "&amp;",
    "&notit;",
    "&#128;",
    "&#x110000;",
    "&#0;",
    "%e2%82%ac",
    "%ff",
    "\\ud800",
    "\\/",
    "\u00ad",
    "\ufeff",
    "\U000e0041",
    "@@@",
    "@",
    ".",
    "-",
    "|",
    "\n",
    "\t",
    " ",
    "\\n",
    "jane\\uff20acme.com",
    "&#xff20;",
    "%EF%BC%A0",
    "&#x200b;",
    "&shy;",
    "%E2%80%8B",
    "\\uff61",
    "\\ufe6b",
    "(0044 20 7946 0958)",
    "(0015125550100)",
    "\\nhttps://www.linkedin.com/in/jane-doe",
    "notlinkedin.com/in/x",
    "x//linkedin.com/in/x",
    "/in/jane-doe//bob@other.net",
]
pieces = st.one_of(
    st.sampled_from(PLANTED),
    st.text(max_size=8),
    st.text(alphabet="0123456789 .-()/+", max_size=30),
    st.text(alphabet="@.a-_!|", max_size=20),
)
texts = st.lists(pieces, max_size=24).map("".join)


def _assert_same_bytes(body: bytes) -> None:
    assert native is not None
    assert native.find(body, False) == textfind.find_bytes(body)


@needs_native
@SETTINGS
@given(texts)
def test_same_candidates_on_random_text(text: str) -> None:
    assert native.find(text.encode(), True) == textfind.find_text(text)
    _assert_same_bytes(text.encode())


@needs_native
@SETTINGS
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=200))
def test_same_candidates_on_random_unicode(text: str) -> None:
    assert native.find(text.encode(), True) == textfind.find_text(text)


@needs_native
@SETTINGS
@given(st.lists(st.one_of(st.binary(max_size=6), texts.map(str.encode)), max_size=12))
def test_same_candidates_on_invalid_utf8(chunks: list[bytes]) -> None:
    _assert_same_bytes(b"".join(chunks))


# Long plain stretches between identifiers, multi-byte characters and undecodable bytes: the
# compiled core skips plain text a block at a time and maps character to byte offsets from one
# shift per multi-byte character; every candidate must still land where the reference's does.
plain = st.text(alphabet='abcdefghijklmnopqrstuvwxyz ":,{}[]', min_size=10, max_size=120)
odd_bytes = st.sampled_from([b"\xc3\xa9", b"\xe2\x82\xac", b"\xf0\x9f\x98\x80", b"\xff", b"\xc3"])
long_bodies = st.lists(
    st.one_of(st.sampled_from(PLANTED).map(str.encode), plain.map(str.encode), odd_bytes),
    max_size=40,
).map(b"".join)


@needs_native
@SETTINGS
@given(long_bodies)
def test_same_candidates_on_long_bodies(body: bytes) -> None:
    _assert_same_bytes(body)
    try:
        text = body.decode()
    except UnicodeDecodeError:
        return
    assert native.find(body, True) == textfind.find_text(text)


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), texts),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)


@needs_native
@SETTINGS
@given(json_values, st.booleans())
def test_same_candidates_on_json_documents(value: object, ascii_only: bool) -> None:
    _assert_same_bytes(json.dumps(value, ensure_ascii=ascii_only).encode())


@needs_native
@pytest.mark.parametrize(
    "text",
    [
        "@" * 20_000,
        "a@" * 10_000,
        "!a" * 40 + "@" + "b." * 200,
        "1" * 50_000,
        "1 " * 20_000,
        "-1" * 10_000 + "e5",
        "1.2.3.4." * 5_000,
        "linkedin.com/" * 3_000,
        "&#64;" * 10_000,
        "%40" * 20_000,
        "\u200b" * 20_000,
        "x." * 40 + "\nlinkedin.com/in/a",
        "https:/\nlinkedin.com/in/a",
    ],
)
def test_same_candidates_on_adversarial_input(text: str) -> None:
    assert native.find(text.encode(), True) == textfind.find_text(text)


@needs_native
@pytest.mark.parametrize(
    "url",
    [
        "https://www.linkedin.com/m/in/JaneDoe",
        "https://www.linkedin.com/mwlite/in/janedoe/?trk=x",
        "uk.linkedin.com/M/IN/janedoe/en",
        "https:\\/\\/www.linkedin.com\\/mwlite\\/in\\/janedoe",
        "https%3A%2F%2Fwww.linkedin.com%2Fm%2Fin%2Fjanedoe",
        "https://mobile.linkedin.com/in/janedoe",
        "https://www.linkedin.com/in\\janedoe",  # `\` is a `/` to a browser
        "https://www.linkedin.com\\m\\in\\janedoe\\",
        "linkedin.com/mwlite\\in/janedoe",
    ],
)
def test_both_finders_find_a_mobile_profile(url: str) -> None:
    text = f'{{"note": "see {url}, thanks"}}'
    found = textfind.find_bytes(text.encode())
    assert native.find(text.encode(), False) == found
    assert "linkedin.com/in/janedoe" in {normalize.linkedin(raw) for *_, raw in found}


@needs_native
@SETTINGS
@given(texts)
def test_scan_is_the_same_through_either_backend(text: str) -> None:
    """The compiled scan (finding and normalising in one call, its memo warm or cold) gives
    what the reference finder and `_candidates` give: same spans, types, forms and order."""
    reference = scan._candidates(textfind.find_text(text), "US")
    assert scan.scan(text, "US") == reference
    finder.forget()
    assert scan.scan(text, "US") == reference
    body = text.encode()
    assert scan.scan_bytes(body, "GB") == scan._candidates(textfind.find_bytes(body), "GB")


@needs_native
@SETTINGS
@given(st.one_of(long_bodies, json_values.map(lambda v: json.dumps(v).encode())))
def test_compiled_scan_of_bytes_matches_the_reference(body: bytes) -> None:
    assert scan.scan_bytes(body, "US") == scan._candidates(textfind.find_bytes(body), "US")


@needs_native
def test_compiled_scan_memo_is_bounded_and_right_after_it_starts_afresh() -> None:
    memo = native.Memo(3)
    context = (lambda kind, text: scan.normals(kind, text, "US"), scan._union,
               scan.RULE_TYPE[:3], scan.Candidate)
    body = b"a@x.org b@x.org c@x.org d@x.org +1 512 555 0100"
    first = native.candidates(body, False, memo, context)
    assert len(memo) <= 3
    assert first == native.candidates(body, False, memo, context)
    assert first == scan._candidates(textfind.find_bytes(body), "US")


@needs_native
def test_a_memo_keeps_no_huge_text_and_still_answers_it() -> None:
    """A free-text token of 200 kB is seen once: answered, not kept (a memo's bytes stay
    bounded whatever the token sizes), and answered the same from a full memo."""
    memo = native.Memo(1024)
    filler = "lorem ipsum " * 20_000
    body = orjson.dumps({"bio": f"{filler} a@x.org"})
    found = finder.json_structure(body, frozenset(), 64)
    identify = pipeline._identify("US")
    first = found.identified(memo, identify)
    assert len(memo) == 0
    reference = structure.reference(body, frozenset(), 64).identified(None, identify)
    assert first == found.identified(memo, identify) == reference
    assert any(ids for _, ids in first)


def _selected() -> ModuleType | None:
    return native if finder.BACKEND == "native" else None


@pytest.mark.skipif(
    os.environ.get("DENYPROXY_REQUIRE_NATIVE") != "1", reason="DENYPROXY_REQUIRE_NATIVE is not 1"
)
def test_compiled_core_is_built_and_selected() -> None:
    assert native is not None, "rules._native is not built"
    assert _selected() is native
    assert finder.find_bytes(b"jane@acme.com") == [
        (0, 0, 9, "jane@acme"),
        (0, 0, 13, "jane@acme.com"),
    ]


def test_backend_name_matches_what_is_importable() -> None:
    assert ("native" if native is not None else "python") == finder.BACKEND


def test_fallback_warns_once_at_start_up(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(finder, "BACKEND", "python")
    monkeypatch.setattr(finder, "_announced", False)
    with caplog.at_level(logging.WARNING, logger="rules.detect.finder"):
        assert [finder.announce(), finder.announce()] == ["python", "python"]
    assert [r.message for r in caplog.records].count(caplog.records[0].message) == 1
    assert "rules._native is not built" in caplog.records[0].message


def test_compiled_core_does_not_warn(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(finder, "BACKEND", "native")
    monkeypatch.setattr(finder, "_announced", False)
    with caplog.at_level(logging.WARNING, logger="rules.detect.finder"):
        assert finder.announce() == "native"
    assert caplog.records == []


@needs_native
def test_compiled_candidates_are_left_out_of_the_cycle_collector() -> None:
    """A body's ~800 candidates are immutable records of values that cannot refer back to them:
    built untracked, young collections do not traverse them (rules/native/src/named.rs); the
    reference's own NamedTuples stay tracked, equal all the same."""
    body = b'{"email": "jane@acme.com", "phone": "+1 512 555 0100"}'
    found = scan.scan_bytes(body, "US")
    reference = scan._candidates(textfind.find_bytes(body), "US")
    assert found == reference and found
    assert not any(gc.is_tracked(c) for c in found)
    assert all(gc.is_tracked(c) for c in reference)


@needs_native
def test_compiled_candidates_read_as_a_sequence_of_the_reference() -> None:
    """`scan_bytes` answers a compiled `Candidates`: each item, slice and iteration a
    `Candidate` equal to the reference's, built when read (and untracked, as above)."""
    body = b'{"a": "jane@acme.com", "p": "+1 512 555 0100", "l": "linkedin.com/in/jane"}'
    found = scan.scan_bytes(body, "US")
    expected = scan._candidates(textfind.find_bytes(body), "US")
    assert type(found) is native.Candidates and len(found) == len(expected) >= 4
    assert list(found) == expected and found == expected and found == tuple(expected)
    assert expected == found and tuple(expected) == found  # the reflected comparison too
    assert [found[i] for i in range(-len(found), len(found))] == expected + expected
    assert all(type(c) is scan.Candidate for c in found)
    for part in (slice(1, None), slice(None, -1), slice(None, None, -1), slice(0, 9, 2),
                 slice(3, 1)):
        assert type(found[part]) is native.Candidates and found[part] == expected[part]
    assert found != expected[:-1] and found != None and found != 3  # noqa: E711
    assert repr(found) == f"Candidates({expected!r})"
    assert not any(gc.is_tracked(c) for c in found)
    with pytest.raises(IndexError):
        found[len(found)]
    with pytest.raises(IndexError):
        found[-len(found) - 1]
    with pytest.raises(TypeError):
        found["0"]
