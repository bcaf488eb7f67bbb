"""The text scanner (rules/scan.py): identifiers anywhere in a text, whatever surrounds them.

Expected normal forms are written out by hand. The properties at the end plant identifiers
in random text and judge the output with tests/leak_detector.py, which is not the product's
code: whatever the detector can read, the scanner must have found, and redaction must leave
no denied identifier and every allowed one.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from rules import scan as scan_module
from rules.model import RuleType
from rules.scan import Candidate, drop_lines, number_digits, redact_text, scan, scan_bytes
from tests import leak_detector

JANE = "jane@acme.com"
PHONE = "+15125550100"
PROFILE = "linkedin.com/in/jane-doe"


def normals(text: str, kind: RuleType, region: str = "US") -> set[str]:
    return {n for c in scan(text, region) if c.kind is kind for n in c.normal}


def spans_of(text: str, denied: set[str], region: str = "US") -> list[tuple[int, int]]:
    return [(c.start, c.end) for c in scan(text, region) if denied & set(c.normal)]


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
    """Characters the scanner's expansions examined, plus normaliser calls."""
    count = [0]
    for name in ("_is_local", "_is_domain", "_is_path"):
        original = getattr(scan_module, name)

        def counted(char: str, _original=original) -> bool:  # type: ignore[no-untyped-def]
            count[0] += 1
            return bool(_original(char))

        monkeypatch.setattr(scan_module, name, counted)
    scan(text, "US")
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
