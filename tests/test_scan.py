"""The text scanner (rules/detect/scan.py): identifiers anywhere in a text, whatever surrounds them.

Expected normal forms are written out by hand. The properties at the end plant identifiers
in random text and judge the output with tests/leak_detector.py, which is not the product's
code: whatever the detector can read, the scanner must have found, and redaction must leave
no denied identifier and every allowed one.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from rules.detect import textfind as scan_module
from rules.detect.scan import (
    Candidate,
    denied_spans,
    drop_lines,
    number_digits,
    redact_text,
    scan,
    scan_bytes,
)
from rules.model import RuleType
from tests import leak_detector
from tests.budgets import examples

JANE = "jane@acme.com"
PHONE = "+15125550100"
PROFILE = "linkedin.com/in/jane-doe"


def normals(text: str, kind: RuleType, region: str = "US") -> set[str]:
    return {n for c in scan(text, region) if c.kind is kind for n in c.normal}


def spans_of(text: str, denied: set[str], region: str = "US") -> list[tuple[int, int]]:
    """What the proxy removes: the shortest denied reading per start (rules.detect.scan)."""
    return denied_spans(scan(text, region), denied)


EMAILS_IN_TEXT = [
    '<a href="mailto:jane@acme.com?subject=Hello%20there">mail</a>',
    "MAILTO:JANE@ACME.COM?cc=x@y.org",
    "&lt;jane@acme.com&gt;",
    "Jane Doe &lt;jane@acme.com&gt;, Bob",
    "jane&#64;acme.com",
    "jane&#x40;acme.com",
    "jane&#X40;acme&#46;com",
    "jane&commat;acme.com",
    "https://x.io/unsubscribe?email=jane%40acme.com&list=3",
    "https://x.io/?e=JANE%40ACME.COM",
    "a|jane@acme.com|b",
    "a;jane@acme.com;b",
    "a/jane@acme.com/b",
    "“jane@acme.com”",
    "‘jane@acme.com’",
    "«jane@acme.com»",
    "请联系jane@acme.com。谢谢",
    "jane@acme.com、bob",
    "邮箱：jane@acme.com，电话",
    "Mail jane@acme.com！",
    "ja\u200bne@acme.com",
    "\u200bjane@acme.com\u200b",
    "jane\u200d@\u200cacme.com",
    '{"note": "write to jane\\u0040acme.com"}',
    '{"url": "mailto:jane@acme.com\\/x"}',
    '{"note": "line one\\njane@acme.com"}',
    "JANE@ACME.COM",
    "Contact: jane@acme.com.",
    "(jane@acme.com)",
    "ｊａｎｅ＠ａｃｍｅ．ｃｏｍ",
    "jane﹫acme.com",
    "jane@acme.com.evil.io",
    '{"note": "jane\\uff20acme.com"}',  # an escape of a full-width form: folded
    "jane&#xff20;acme&#xff0e;com",
    "jane%EF%BC%A0acme.com",
    "ja&#x200b;ne@acme.com",
]


@pytest.mark.parametrize("text", EMAILS_IN_TEXT)
def test_email_found_in_text(text: str) -> None:
    assert JANE in normals(text, RuleType.EMAIL)


@pytest.mark.parametrize("text", EMAILS_IN_TEXT)
def test_email_redacted_leaves_no_trace(text: str) -> None:
    out = redact_text(text, spans_of(text, {JANE}))
    assert leak_detector.leaks(out, emails=[JANE]) == []


def test_email_span_is_the_address_as_written() -> None:
    text = "x jane&#64;acme.com y"
    (found,) = [c for c in scan(text, "US") if JANE in c.normal]
    assert text[found.start : found.end] == "jane&#64;acme.com"


def test_separator_reading_keeps_its_neighbour() -> None:
    text = "bob@x.org|jane@acme.com"
    assert redact_text(text, spans_of(text, {JANE})) == "bob@x.org|"


def test_longer_address_is_not_the_denied_one() -> None:
    assert JANE not in normals("mary.jane@acme.com xjane@acme.com", RuleType.EMAIL)


LINKEDIN_IN_TEXT = [
    'See <a href="https://www.linkedin.com/in/jane-doe?trk=x">her profile</a>',
    "Her profile: https://www.linkedin.com/in/jane-doe.",
    "(https://linkedin.com/in/jane-doe)",
    "linkedin.com/in/jane-doe, then",
    'url="linkedin.com/in/jane-doe/"',
    "https://www.linkedin.com:443/in/jane-doe/",
    "https://uk.linkedin.com/in/Jane-Doe",
    "https://de.linkedin.com/in/jane%2Ddoe?locale=de",
    "https%3A%2F%2Fwww.linkedin.com%2Fin%2Fjane-doe",
    '{"u": "https:\\/\\/www.linkedin.com\\/in\\/jane-doe"}',
    "LINKEDIN.COM/IN/JANE-DOE",
    "linkedin.com/in/jane-doe。",
    '{"note": "profile:\\nhttps://www.linkedin.com/in/jane-doe"}',  # scheme glued to `n`
    "xhttps://linkedin.com/in/jane-doe",
]


@pytest.mark.parametrize("text", LINKEDIN_IN_TEXT)
def test_linkedin_found_in_text(text: str) -> None:
    assert PROFILE in normals(text, RuleType.LINKEDIN)


@pytest.mark.parametrize("text", LINKEDIN_IN_TEXT)
def test_linkedin_redacted_leaves_no_trace(text: str) -> None:
    out = redact_text(text, spans_of(text, {PROFILE}))
    assert leak_detector.leaks(out, linkedins=[PROFILE]) == []


def test_other_hosts_are_not_linkedin() -> None:
    assert normals("https://notlinkedin.com/in/jane-doe", RuleType.LINKEDIN) == set()
    assert normals("notlinkedin.com/in/jane-doe", RuleType.LINKEDIN) == set()


def test_linkedin_path_is_cut_at_each_further_slash() -> None:
    text = "https://www.linkedin.com/in/jane-doe//bob@other.net"
    out = redact_text(text, spans_of(text, {PROFILE}))
    assert leak_detector.leaks(out, linkedins=[PROFILE]) == []
    assert "bob@other.net" in out


def test_shortest_denied_reading_keeps_an_allowed_neighbour() -> None:
    text = " jane@acme.com  https://uk.linkedin.com/in/jane-doe/?trk=x;;bob@other.net "
    out = redact_text(text, spans_of(text, {JANE, PROFILE}))
    assert leak_detector.leaks(out, emails=[JANE], linkedins=[PROFILE]) == []
    assert leak_detector.leaks(out, emails=["bob@other.net"]) == ["bob@other.net"]


PHONES_IN_TEXT = [
    "Call +1 (512) 555-0100 today",
    "call 512.555.0100.",
    "tel:+1-512-555-0100",
    '<a href="tel:5125550100">',
    "office 512 555 0100 / fax 512 555 0199",
    "1-512-555-0100",
    "0015125550100",
    "011 1 512 555 0100",
    "ID 7 512-555-0100",
    '{"msisdn": 15125550100}',
    '{"landline": 15125550100.0}',
    '{"n": 1.5125550100e10}',
    '{"n": 15125550100e0}',
    "phone_no=5125550100&x=1",
    "５１２５５５０１００",
    "(0015125550100)",
    "(011 1 512 555 0100)",
]


@pytest.mark.parametrize("text", PHONES_IN_TEXT)
def test_phone_found_in_text(text: str) -> None:
    assert PHONE in normals(text, RuleType.PHONE)


@pytest.mark.parametrize("text", PHONES_IN_TEXT)
def test_phone_redacted_leaves_no_trace(text: str) -> None:
    out = redact_text(text, spans_of(text, {PHONE}))
    assert leak_detector.leaks(out, phones=[PHONE]) == []


def test_phone_read_in_the_given_region() -> None:
    assert "+442079460958" in normals("ring 020 7946 0958", RuleType.PHONE, "GB")
    assert "+442079460958" in normals("ring +44 (0)20 7946 0958", RuleType.PHONE, "US")
    assert "+442079460958" in normals("ring (0044 20 7946 0958)", RuleType.PHONE, "US")
    assert "+442079460958" in normals("ring (0044 20 7946 0958)", RuleType.PHONE, "GB")


def test_two_numbers_side_by_side_are_both_found() -> None:
    found = normals("512 555 0100 512 555 0199", RuleType.PHONE)
    assert {"+15125550100", "+15125550199"} <= found


def test_short_digit_runs_are_not_phones() -> None:
    assert normals("lat 30.2672, lng -97.7431, zip 78701, 2024", RuleType.PHONE) == set()


@pytest.mark.parametrize(
    ("token", "digits"),
    [
        ("15125550100", "15125550100"),
        ("15125550100.0", "15125550100"),
        ("1.5125550100e10", "15125550100"),
        ("1.5125550100E+10", "15125550100"),
        ("-15125550100", "15125550100"),
        ("1.5", None),
        ("123", None),
        ("1e999999", None),
        ("NaN", None),
        ("abc", None),
    ],
)
def test_number_digits(token: str, digits: str | None) -> None:
    assert number_digits(token) == digits


def test_scan_bytes_spans_are_byte_offsets() -> None:
    body = "é “jane@acme.com” \xff".encode() + b"\xff"
    (found,) = [c for c in scan_bytes(body, "US") if JANE in c.normal]
    assert body[found.start : found.end] == b"jane@acme.com"


def test_scan_bytes_reads_past_invalid_utf8() -> None:
    body = b"\xff\xfejane@acme.com\xc3"
    assert any(JANE in c.normal for c in scan_bytes(body, "US"))


def test_redact_text_merges_overlapping_spans() -> None:
    assert redact_text("0123456789", [(2, 5), (4, 7), (8, 9)], "#") == "01#7#9"


def test_drop_lines_removes_whole_lines() -> None:
    text = "name,email\nJane,jane@acme.com\nBob,bob@x.org\n"
    assert drop_lines(text, spans_of(text, {JANE})) == "name,email\nBob,bob@x.org\n"


def test_drop_lines_last_line_without_newline() -> None:
    text = '{"a":1}\n{"e":"jane@acme.com"}'
    assert drop_lines(text, spans_of(text, {JANE})) == '{"a":1}\n'


def test_candidates_are_frozen() -> None:
    found = scan(JANE, "US")[0]
    assert isinstance(found, Candidate)
    with pytest.raises(AttributeError):
        found.start = 3  # type: ignore[misc]  # asserting that the dataclass is frozen


# ----------------------------------------------------------------------- linear time


def _work(text: str, monkeypatch: pytest.MonkeyPatch) -> int:
    """Characters the reference finder's expansions examined."""
    count = [0]
    for name in ("_is_local", "_is_domain", "_is_path"):
        original = getattr(scan_module, name)

        def counted(char: str, _original: Callable[[str], object] = original) -> bool:
            count[0] += 1
            return bool(_original(char))

        monkeypatch.setattr(scan_module, name, counted)
    scan_module.find_text(text)  # the reference: the compiled core's work is not countable
    return count[0]


@pytest.mark.parametrize(
    "unit", ["a", "@a", "a@", "a.", "|a", "linkedin.com/in/", "@a.b", "1 ", "1"]
)
def test_work_grows_linearly(unit: str, monkeypatch: pytest.MonkeyPatch) -> None:
    small = _work(unit * 1_000, monkeypatch)
    large = _work(unit * 4_000, monkeypatch)
    assert large <= 4.2 * small + 100  # linear: 4× the input, 4× the work (edges aside)
    assert large <= 400 * len(unit * 4_000)


@pytest.mark.parametrize("text", ["@" + "a" * 1_000_000, "a" * 1_000_000 + "@", "@a" * 500_000])
def test_one_megabyte_adversarial_input_completes(text: str) -> None:
    assert all(c.kind is RuleType.EMAIL for c in scan(text, "US"))


# ----------------------------------------------------------------------- properties

# Written independently of the scanner's character classes: what people and tools put
# between an identifier and the text around it.
SEPARATORS = [
    " ",
    "\n",
    "\t",
    "|",
    ";",
    "/",
    "<",
    ">",
    '"',
    "'",
    ",",
    "(",
    ")",
    "“",
    "”",
    "‘",
    "’",
    "«",
    "»",
    "。",
    "、",
    "，",
    "：",
    "！",
    "\u200b ",
    " \u200d",
    "&lt;",
    "&gt;",
    "&quot;",
    "%20",
    "\\n",
    '\\"',
    "<br/>",
    "\u00a0",
    "\r\n",
]
DENIED_EMAILS = ["jane@acme.com", "o'brien@example.org", "sales+eu@shop.co.uk"]
ALLOWED_EMAILS = ["bob@other.net", "jane@acme.co", "ane@acme.com"]
DENIED_PHONES = ["+15125550100", "+442079460958"]
ALLOWED_PHONES = ["+15125550199"]
DENIED_PROFILES = ["linkedin.com/in/jane-doe"]
ALLOWED_PROFILES = ["linkedin.com/in/jane-doe-2"]


def _email_spellings(address: str) -> st.SearchStrategy[str]:
    local, _, domain = address.partition("@")
    return st.sampled_from(
        [
            address,
            address.upper(),
            f"{local}&#64;{domain}",
            f"{local}&#x40;{domain}",
            f"{local}%40{domain}",
            f"{local}\\u0040{domain}",
            f"mailto:{address}?subject=Hi",
            f"{local[:2]}\u200b{local[2:]}@{domain}",
            f"&lt;{address}&gt;",
            f"{local}＠{domain}",
        ]
    )


def _phone_spellings(e164: str) -> st.SearchStrategy[str]:
    digits = e164[1:]
    cc = 1 if digits.startswith("1") else 2
    rest = digits[cc:]
    return st.sampled_from(
        [
            e164,
            f"+{digits[:cc]} {rest[:3]} {rest[3:6]} {rest[6:]}",
            f"+{digits[:cc]} ({rest[:3]}) {rest[3:6]}-{rest[6:]}",
            f"00{digits}",
            f"tel:+{digits[:cc]}-{rest[:3]}-{rest[3:]}",
            f"{digits}.0",
            f"{digits[0]}.{digits[1:]}e{len(digits) - 1}",
        ]
    )


def _profile_spellings(profile: str) -> st.SearchStrategy[str]:
    slug = profile.rsplit("/", 1)[1]
    return st.sampled_from(
        [
            f"https://www.{profile}",
            f"https://uk.linkedin.com/in/{slug}/?trk=x",
            f"http://linkedin.com:443/in/{slug.upper()}",
            f"https:\\/\\/www.linkedin.com\\/in\\/{slug}",
            f'<a href="https://www.{profile}">',
            f"https%3A%2F%2Fwww.{profile.replace('/', '%2F')}",
            f"https://www.linkedin.com/m/in/{slug}",
            f"https:\\/\\/uk.linkedin.com\\/mwlite\\/in\\/{slug}",
        ]
    )


def _spelled(kind: str, value: str) -> st.SearchStrategy[str]:
    by_kind = {"email": _email_spellings, "phone": _phone_spellings}
    return by_kind.get(kind, _profile_spellings)(value)


def _planted(pool: list[tuple[str, str]]) -> st.SearchStrategy[list[tuple[str, str, str]]]:
    one = st.sampled_from(pool).flatmap(
        lambda kv: _spelled(*kv).map(lambda spelling: (kv[0], kv[1], spelling))
    )
    return st.lists(one, min_size=1, max_size=4)


_DENIED = (
    [("email", e) for e in DENIED_EMAILS]
    + [("phone", p) for p in DENIED_PHONES]
    + [("linkedin", li) for li in DENIED_PROFILES]
)
_ALLOWED = (
    [("email", e) for e in ALLOWED_EMAILS]
    + [("phone", p) for p in ALLOWED_PHONES]
    + [("linkedin", li) for li in ALLOWED_PROFILES]
)
_FILLER = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)


@st.composite
def documents(draw: st.DrawFn) -> tuple[str, list[tuple[str, str, str]]]:
    """Random text with identifiers planted, each between two separators."""
    planted = draw(_planted(_DENIED))
    if draw(st.booleans()):
        planted += draw(_planted(_ALLOWED))
    planted = draw(st.permutations(planted))
    parts = [draw(_FILLER)]
    for _, _, spelling in planted:
        left, right = draw(st.sampled_from(SEPARATORS)), draw(st.sampled_from(SEPARATORS))
        parts += [left, spelling, right, draw(_FILLER)]
    return "".join(parts), planted


def _leaked(text: str, values: list[tuple[str, str]]) -> list[str]:
    return leak_detector.leaks(
        text,
        emails=[v for k, v in values if k == "email"],
        phones=[v for k, v in values if k == "phone"],
        linkedins=[v for k, v in values if k == "linkedin"],
    )


PROPERTY = settings(max_examples=examples(300), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(documents())
def test_whatever_the_detector_reads_the_scanner_found(
    doc: tuple[str, list[tuple[str, str, str]]],
) -> None:
    text, planted = doc
    values = [(kind, value) for kind, value, _ in planted]
    visible = _leaked(text, values)
    assume(visible)  # random filler may glue onto a planted value and change what it reads
    found = {n for c in scan(text, "US") for n in c.normal}
    assert set(visible) <= found


@PROPERTY
@given(documents())
def test_redaction_leaves_no_denied_and_keeps_allowed(
    doc: tuple[str, list[tuple[str, str, str]]],
) -> None:
    text, planted = doc
    denied = {value for kind, value, _ in planted if (kind, value) in _DENIED}
    allowed = [(kind, value) for kind, value, _ in planted if (kind, value) in _ALLOWED]
    visible_allowed = _leaked(text, allowed)
    out = redact_text(text, spans_of(text, denied))
    assert _leaked(out, list(_DENIED)) == []
    assert _leaked(out, allowed) == visible_allowed


@pytest.mark.parametrize("text", ["1" * 1_000_000, "1x" * 500_000, "-" + "9" * 999_999])
def test_reference_reads_a_megabyte_of_digits_and_finds_no_phone(text: str) -> None:
    # Completes at all only because the exponent scan skips a digit run it cannot start in:
    # `_EXPONENT.finditer` alone retries every position of the run (quadratic: hours here).
    assert scan_module.find_text(text) == []
