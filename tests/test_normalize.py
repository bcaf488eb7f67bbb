"""The one normaliser (rules/normalize.py): real-world formats in, canonical forms out.

Expected values are written out by hand (never computed with the code under test), so a
change of behaviour shows up as a failing row. Property tests at the end check that the
normal forms are fixed points and that every format of one identifier meets in one form.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from rules import normalize
from rules.model import RuleType

# --------------------------------------------------------------------------------------
# phone
# --------------------------------------------------------------------------------------

US = "+15125550100"
UK = "+442079460958"

PHONES_DEFAULT_REGION = [
    # United States / NANP, read with the default region
    ("+1 (512) 555-0100", US),
    ("512.555.0100", US),
    ("(512) 555-0100", US),
    ("(512)555-0100", US),
    ("512-555-0100", US),
    ("512 555 0100", US),
    ("1-512-555-0100", US),
    ("+1.512.555.0100", US),
    ("  +15125550100  ", US),
    ("tel:+1-512-555-0100", US),
    ("TEL:+15125550100", US),
    ("tel:5125550100", US),
    ("(512) 555-0100 ext. 12", US),
    ("+1 512 555 0100 x12", US),
    ("512.555.0100 Ext 12", US),
    ("+1 512-555-0100;ext=12", US),
    ("512-555-0100 #12", US),
    ("５１２５５５０１００", US),  # full-width digits (CJK input methods)
    (5125550100, US),
    (15125550100, US),
    ("1-800-356-9377", "+18003569377"),
    ("+1 416 555 0123", "+14165550123"),  # Canada shares +1
    # United Kingdom
    ("+44 20 7946 0958", UK),
    ("0044 20 7946 0958", UK),
    ("00 44 20 7946 0958", UK),
    ("011 44 20 7946 0958", UK),  # US international prefix
    ("+44 (0)20 7946 0958", UK),
    ("+44 (0) 20 7946 0958", UK),
    ("tel:+44-20-7946-0958", UK),
    ("+44 (0)20 7946 0958 ext. 3", UK),
    ("+44 7700 900123", "+447700900123"),
    # Germany
    ("+49 30 901820", "+4930901820"),
    ("+49 (0)30 9018 2000", "+493090182000"),
    ("0049 30 90182000", "+493090182000"),
    ("+49 89 1234567", "+49891234567"),
    # France
    ("+33 1 42 68 53 00", "+33142685300"),
    ("+33 (0)1 42 68 53 00", "+33142685300"),
    ("0033 1 42 68 53 00", "+33142685300"),
    # Japan, India, Australia, Brazil, and a few more
    ("+81 3-1234-5678", "+81312345678"),
    ("+91 98765 43210", "+919876543210"),
    ("+61 2 9374 4000", "+61293744000"),
    ("+61 412 345 678", "+61412345678"),
    ("+55 11 91234-5678", "+5511912345678"),
    ("+353 1 234 5678", "+35312345678"),
    ("+7 495 123-45-67", "+74951234567"),
    ("+34 912 34 56 78", "+34912345678"),
    ("+39 06 1234 5678", "+390612345678"),  # Italy keeps the leading 0
    ("+52 55 1234 5678", "+525512345678"),
    ("+86 10 1234 5678", "+861012345678"),
]


@pytest.mark.parametrize(("raw", "expected"), PHONES_DEFAULT_REGION)
def test_phone_to_e164_default_region(raw: str | int, expected: str) -> None:
    assert normalize.phone(raw) == expected
    # The response side agrees with the rules side whenever the number parses.
    assert normalize.phone_candidates(raw) == (expected,)


PHONES_NATIONAL = [
    ("020 7946 0958", "GB", UK),
    ("07700 900123", "GB", "+447700900123"),
    ("0044 20 7946 0958", "GB", UK),
    ("030 90182000", "DE", "+493090182000"),
    ("01 42 68 53 00", "FR", "+33142685300"),
    ("03-1234-5678", "JP", "+81312345678"),
    ("098765 43210", "IN", "+919876543210"),
    ("98765 43210", "IN", "+919876543210"),
    ("(02) 9374 4000", "AU", "+61293744000"),
    ("0412 345 678", "AU", "+61412345678"),
    ("(11) 91234-5678", "BR", "+5511912345678"),
    ("+1 (512) 555-0100", "GB", US),  # an explicit country code beats the region
    ("+44 20 7946 0958", "DE", UK),
]


@pytest.mark.parametrize(("raw", "region", "expected"), PHONES_NATIONAL)
def test_phone_national_format_takes_the_region(raw: str, region: str, expected: str) -> None:
    assert normalize.phone(raw, region) == expected
    assert normalize.phone_candidates(raw, region) == (expected,)


def test_phone_region_changes_the_reading_of_national_numbers() -> None:
    assert normalize.phone("512.555.0100", "US") == US
    assert normalize.phone("512.555.0100", "GB") == "+445125550100"


@pytest.mark.parametrize(
    ("raw", "candidate"),
    [
        ("12345", None),  # too short
        ("123-456", None),
        ("+1 555", None),
        ("+44 1234", None),
        ("", None),
        ("   ", None),
        ("N/A", None),
        ("abcdefg", None),  # letters
        ("phone: none", None),
        ("+1 800 FLOWERS", None),  # vanity: only 4 digits
        ("tel:", None),
        (0, None),
        (123456, None),
        # unparseable, but with enough digits: the response side compares `+<digits>`
        ("12345678901234567890", "+12345678901234567890"),
        ("+999 1234 5678", "+99912345678"),  # no such country code
        ("2023-01-15", "+20230115"),
        ("512555010O", "+512555010"),  # letter O typed for a zero
        ("+1 512 555 01OO", "+151255501"),
        (12345678901234567890, "+12345678901234567890"),
    ],
)
def test_invalid_phone_is_none_for_rules_and_digits_for_responses(
    raw: str | int, candidate: str | None
) -> None:
    assert normalize.phone(raw) is None
    assert normalize.phone_candidates(raw) == ((candidate,) if candidate else ())


@pytest.mark.parametrize("raw", ["555-0100", "1234567", "555 0100 ext. 12"])
def test_phone_without_area_code_is_not_a_rule(raw: str) -> None:
    """A 7-digit US local number has no E.164 form; `+15550100` would be a rule that can
    never match the real subscriber (who is `+1 <area> 555 0100`)."""
    assert normalize.phone(raw) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("512-555-0100 (Main)", US),
        ("(512) 555-0100 (cell)", US),
        ("512-555-0100 - office", US),
        ("Main: 512-555-0100", US),
        ("+1 512 555 0100 (m)", US),
    ],
)
def test_phone_candidates_with_a_label_still_match_the_rule(raw: str, expected: str) -> None:
    """Scraped listings label their numbers; the digits fallback (`+5125550100`, no country
    code) would never equal the rule `+15125550100`, so the number would pass the filter."""
    assert normalize.phone_candidates(raw) == (expected,)


def test_phone_int_with_country_code_matches_through_the_digits_fallback() -> None:
    # 442079460958 is not a US number; the response side still reads it as +44...
    assert normalize.phone(442079460958) is None
    assert normalize.phone_candidates(442079460958) == (UK,)


# --------------------------------------------------------------------------------------
# email
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Jane@ACME.com", "jane@acme.com"),
        ("  Jane.Doe+Sales@Acme.COM ", "jane.doe+sales@acme.com"),  # no +tag folding
        ("Jane.Doe@Gmail.com", "jane.doe@gmail.com"),  # no dot folding
        ("janedoe@gmail.com", "janedoe@gmail.com"),
        ("a@Bücher.de", "a@xn--bcher-kva.de"),
        ("JANE@BÜCHER.DE", "jane@xn--bcher-kva.de"),
        ("jane@xn--bcher-kva.de", "jane@xn--bcher-kva.de"),
        ("info@例え.jp", "info@xn--r8jz45g.jp"),
        ("mailto:Jane@acme.com", "jane@acme.com"),
        ("MAILTO:Jane@acme.com", "jane@acme.com"),
        ("jane@sub.acme.com.", "jane@sub.acme.com"),
        ("jane@acme.com.", "jane@acme.com"),
        ("o'brien@acme.com", "o'brien@acme.com"),
        ("first_last-1@acme.co.uk", "first_last-1@acme.co.uk"),
        ("j@a.co", "j@a.co"),
    ],
)
def test_email(raw: str, expected: str) -> None:
    assert normalize.email(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "jane",
        "acme.com",
        "jane@acme",
        "jane@@acme.com",
        "@acme.com",
        "jane@",
        "jane@localhost",
        "jane@1.2.3.4",
        "jane@[1.2.3.4]",
        "jane doe@acme.com",
        "jane@-bad-.com",
        "jane@acme..com",
        "user:pw@acme.com",
        "jane@" + "a" * 64 + ".com",
    ],
)
def test_invalid_email_is_none(raw: str) -> None:
    assert normalize.email(raw) is None


def test_email_with_non_ascii_local_part_is_kept() -> None:
    """RFC 6531 addresses exist (`jüri@`, `张伟@`). As None they are invisible on the response
    side, so even a domain rule on acme.com lets `jüri@acme.com` through."""
    assert normalize.email("Jüri@Acme.com") == "jüri@acme.com"


# --------------------------------------------------------------------------------------
# domain
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://www.Acme.com/about", "acme.com"),
        ("acme.com", "acme.com"),
        ("@acme.com", "acme.com"),
        ("acme.com.", "acme.com"),
        ("user:pw@Acme.com:8080/x?q", "acme.com"),
        ("jane@acme.com", "acme.com"),  # userinfo
        ("bücher.de", "xn--bcher-kva.de"),
        ("BÜCHER.de", "xn--bcher-kva.de"),
        ("https://www.bücher.de/", "xn--bcher-kva.de"),
        ("xn--bcher-kva.de", "xn--bcher-kva.de"),
        ("例え.jp", "xn--r8jz45g.jp"),
        ("WWW.Acme.Com", "acme.com"),
        ("http://www.acme.com./", "acme.com"),
        ("www.acme.com.", "acme.com"),
        ("acme.com?x=1", "acme.com"),
        ("acme.com#frag", "acme.com"),
        ("acme.com/path/x.html", "acme.com"),
        ("ftp://acme.com", "acme.com"),
        ("  acme.com  ", "acme.com"),
        ("sub.Acme.co.uk", "sub.acme.co.uk"),  # subdomains are kept
        ("mail.acme.com", "mail.acme.com"),
        ("3m.com", "3m.com"),
        ("1-800-contacts.com", "1-800-contacts.com"),
    ],
)
def test_domain(raw: str, expected: str) -> None:
    assert normalize.domain(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "http://",
        "localhost",
        "acme",
        "www",
        "1.2.3.4",  # an IP address is not a domain rule
        "http://1.2.3.4:8080/",
        "http://[::1]/",
        "-bad-.com",
        "bad-.com",
        "a_b.com",
        "acme..com",
        ".acme.com",
        "acme.123",
        "a" * 64 + ".com",  # label longer than 63
    ],
)
def test_invalid_domain_is_none(raw: str) -> None:
    assert normalize.domain(raw) is None


def test_domain_idna_2008_for_sharp_s() -> None:
    """`straße.de` and `strasse.de` are different registrations (DENIC, IDNA 2008); Python's
    `idna` codec is IDNA 2003 and folds ß to ss, so a rule on `straße.de` misses the punycode
    `xn--strae-oqa.de` that browsers, registries and APIs use (and denies strasse.de)."""
    assert normalize.domain("straße.de") == "xn--strae-oqa.de"
    assert normalize.domain("straße.de") == normalize.domain("xn--strae-oqa.de")


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("acme.com", ["acme.com"]),
        ("mail.acme.com", ["mail.acme.com", "acme.com"]),
        ("a.b.acme.com", ["a.b.acme.com", "b.acme.com", "acme.com"]),
        ("eu.mail.acme.co.uk", ["eu.mail.acme.co.uk", "mail.acme.co.uk", "acme.co.uk", "co.uk"]),
        ("xn--bcher-kva.de", ["xn--bcher-kva.de"]),
    ],
)
def test_parent_domains(host: str, expected: list[str]) -> None:
    assert list(normalize.parent_domains(host)) == expected


# --------------------------------------------------------------------------------------
# linkedin
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://www.linkedin.com/in/Jane-Doe/", "linkedin.com/in/jane-doe"),
        ("http://uk.linkedin.com/in/jane-doe?trk=abc", "linkedin.com/in/jane-doe"),
        ("https://de.linkedin.com/in/jane-doe-4b2a1c", "linkedin.com/in/jane-doe-4b2a1c"),
        ("linkedin.com/in/jane-doe", "linkedin.com/in/jane-doe"),
        ("www.linkedin.com/in/jane-doe", "linkedin.com/in/jane-doe"),
        ("https://LINKEDIN.COM/in/JANE", "linkedin.com/in/jane"),
        ("www.linkedin.com/IN/jane", "linkedin.com/in/jane"),
        ("https://www.linkedin.com/in/jane-doe#experience", "linkedin.com/in/jane-doe"),
        ("https://linkedin.com/in/jane-doe/details/experience/", "linkedin.com/in/jane-doe"),
        ("https://www.linkedin.com/in/jane-doe/?originalSubdomain=uk", "linkedin.com/in/jane-doe"),
        ("linkedin.com/in/J%C3%A9r%C3%B4me", "linkedin.com/in/jérôme"),
        ("linkedin.com/in/J%C3%89R%C3%94ME", "linkedin.com/in/jérôme"),
        ("linkedin.com/in/jérôme", "linkedin.com/in/jérôme"),
        ("https://www.linkedin.com/in/Jane%20Doe", "linkedin.com/in/jane doe"),
        ("https://user@linkedin.com:443/in/jane", "linkedin.com/in/jane"),
        ("https://linkedin.com./in/jane", "linkedin.com/in/jane"),
        ("  https://www.linkedin.com/in/jane-doe/  ", "linkedin.com/in/jane-doe"),
    ],
)
def test_linkedin(raw: str, expected: str) -> None:
    assert normalize.linkedin(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "jane-doe",
        "in/jane",
        "https://www.linkedin.com/company/acme",
        "https://www.linkedin.com/company/acme/about/",
        "https://www.linkedin.com/school/mit",
        "https://www.linkedin.com/sales/people/ACwAAA",
        "https://www.linkedin.com/in/",
        "https://www.linkedin.com/in/%20",
        "https://www.linkedin.com/",
        "notlinkedin.com/in/x",
        "https://linkedin.com.evil.com/in/x",
        "https://evil.com/in/x?u=linkedin.com/in/jane",
        "https://acme.com/in/jane",
    ],
)
def test_not_a_linkedin_profile_is_none(raw: str) -> None:
    assert normalize.linkedin(raw) is None


# --------------------------------------------------------------------------------------
# detect (bulk import auto-typing) and for_type
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Jane@ACME.com", (RuleType.EMAIL, "jane@acme.com")),
        ("mailto:jane@acme.com", (RuleType.EMAIL, "jane@acme.com")),
        ("a@Bücher.de", (RuleType.EMAIL, "a@xn--bcher-kva.de")),
        ("https://www.linkedin.com/in/Jane-Doe/", (RuleType.LINKEDIN, "linkedin.com/in/jane-doe")),
        ("uk.linkedin.com/in/jane-doe?trk=x", (RuleType.LINKEDIN, "linkedin.com/in/jane-doe")),
        ("+1 (512) 555-0100", (RuleType.PHONE, US)),
        ("512.555.0100", (RuleType.PHONE, US)),
        ("tel:+44-20-7946-0958", (RuleType.PHONE, UK)),
        ("0044 20 7946 0958", (RuleType.PHONE, UK)),
        ("(512) 555-0100 ext. 12", (RuleType.PHONE, US)),
        ("https://www.Acme.com/about", (RuleType.DOMAIN, "acme.com")),
        ("acme.com", (RuleType.DOMAIN, "acme.com")),
        ("bücher.de", (RuleType.DOMAIN, "xn--bcher-kva.de")),
        ("linkedin.com", (RuleType.DOMAIN, "linkedin.com")),
        ("3m.com", (RuleType.DOMAIN, "3m.com")),
        ("1800flowers.com", (RuleType.DOMAIN, "1800flowers.com")),
        ("@acme.com", (RuleType.DOMAIN, "acme.com")),
        ("pizza5551234.com", (RuleType.DOMAIN, "pizza5551234.com")),
        ("12345678.com", (RuleType.DOMAIN, "12345678.com")),
    ],
)
def test_detect(raw: str, expected: tuple[RuleType, str]) -> None:
    assert normalize.detect(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "hello",
        "jane@",
        "jane@localhost",
        "12345",
        "localhost",
        "1.2.3.4",
        # a company page is no profile; typed as DOMAIN linkedin.com it would deny every
        # @linkedin.com address
        "https://www.linkedin.com/company/acme",
    ],
)
def test_detect_rejects(raw: str) -> None:
    assert normalize.detect(raw) is None


def test_detect_uses_the_region_for_national_numbers() -> None:
    assert normalize.detect("020 7946 0958", "GB") == (RuleType.PHONE, UK)
    assert normalize.detect("512.555.0100", "US") == (RuleType.PHONE, US)


@pytest.mark.parametrize(
    ("rule_type", "raw", "region", "expected"),
    [
        (RuleType.EMAIL, "Jane@ACME.com", "US", "jane@acme.com"),
        (RuleType.DOMAIN, "https://www.Acme.com/about", "US", "acme.com"),
        (RuleType.LINKEDIN, "https://www.linkedin.com/in/Jane-Doe/", "US", "linkedin.com/in/jane-doe"),
        (RuleType.PHONE, "512.555.0100", "US", US),
        (RuleType.PHONE, "020 7946 0958", "GB", UK),
        (RuleType.PHONE, "512.555.0100", "GB", "+445125550100"),
        (RuleType.EMAIL, "acme.com", "US", None),
        (RuleType.DOMAIN, "localhost", "US", None),
        (RuleType.PHONE, "abc", "US", None),
    ],
)
def test_for_type(rule_type: RuleType, raw: str, region: str, expected: str | None) -> None:
    assert normalize.for_type(rule_type, region)(raw) == expected


@pytest.mark.parametrize(
    ("rule_type", "raws", "region", "normal", "bad"),
    [
        (RuleType.EMAIL, ["Jane@ACME.com", "jane@acme.com ", "bob@beta.io", "not-an-email", "a@b"],
         "US", ("jane@acme.com", "bob@beta.io"), ["not-an-email", "a@b"]),
        (RuleType.PHONE, ["+1 (512) 555-0100", "512.555.0100", "020 7946 0958", "12"], "GB",
         ("+15125550100", "+445125550100", "+442079460958"), ["12"]),
        (RuleType.PHONE, ["+1 (512) 555-0100", "512.555.0100", 5125550100], "US",
         ("+15125550100",), [5125550100]),  # rules arrive as text: a bare int is rejected
        (RuleType.DOMAIN, ["https://www.Acme.com/about", "@acme.com", "localhost", "bücher.de"], "US",
         ("acme.com", "xn--bcher-kva.de"), ["localhost"]),
        (RuleType.LINKEDIN, ["https://www.linkedin.com/in/Jane-Doe/", "linkedin.com/in/jane-doe",
                             "https://www.linkedin.com/company/acme"], "US",
         ("linkedin.com/in/jane-doe",), ["https://www.linkedin.com/company/acme"]),
        (RuleType.EMAIL, [], "US", (), []),
    ],
)
def test_normalize_all(rule_type, raws, region, normal, bad) -> None:
    assert normalize.normalize_all(rule_type, raws, region) == (normal, bad)


# --------------------------------------------------------------------------------------
# idempotence: explicit rows (edge cases the generators below stay away from)
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fn", "raw"),
    [
        (normalize.domain, "http://www.www.acme.com"),
        (normalize.email, "jane@www.www.acme.com"),
        (normalize.linkedin, "linkedin.com/in/jane%2Fdoe"),
        (normalize.linkedin, "linkedin.com/in/jane%3Fdoe"),
        (normalize.linkedin, "linkedin.com/in/100%2541"),
        (normalize.phone, "0044 20 7946 0958"),
        (normalize.email, "MAILTO:Jane@Bücher.de."),
    ],
)
def test_normal_form_is_a_fixed_point(fn, raw: str) -> None:
    once = fn(raw)
    assert once is not None
    assert fn(once) == once


# --------------------------------------------------------------------------------------
# property tests
# --------------------------------------------------------------------------------------

_IDN = {
    "bücher": "xn--bcher-kva",
    "münchen": "xn--mnchen-3ya",
    "café": "xn--caf-dma",
    "zürich": "xn--zrich-kva",
    "例え": "xn--r8jz45g",
}
_TLDS = ["com", "io", "de", "co.uk", "com.au", "jp", "fr"]

ascii_label = st.from_regex(r"[a-z][a-z0-9-]{0,10}[a-z0-9]", fullmatch=True).filter(
    lambda s: "--" not in s and s != "www"
)
label_pair = st.one_of(
    ascii_label.map(lambda s: (s, s)),
    st.sampled_from(sorted(_IDN.items())),
)


@st.composite
def hosts(draw) -> tuple[str, str]:
    """(host as written, its normal form), possibly with subdomains and an IDN label."""
    subs = draw(st.lists(ascii_label, max_size=2))
    unicode_label, ascii_form = draw(label_pair)
    tld = draw(st.sampled_from(_TLDS))
    written = ".".join([*subs, unicode_label, tld])
    normal = ".".join([*subs, ascii_form, tld])
    return written, normal


def random_case(draw, text: str) -> str:
    flips = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    return "".join(c.upper() if f else c for c, f in zip(text, flips, strict=True))


@st.composite
def emails(draw) -> tuple[str, str]:
    local = draw(st.from_regex(r"[a-z][a-z0-9]{0,7}([._+-][a-z0-9]{1,6}){0,2}", fullmatch=True))
    host, normal_host = draw(hosts())
    written = random_case(draw, f"{local}@{host}")
    written = draw(st.sampled_from(["", "mailto:", "MAILTO:"])) + written
    written += draw(st.sampled_from(["", "."]))
    written = draw(st.sampled_from(["", " ", "\t"])) + written + draw(st.sampled_from(["", " ", "\n"]))
    return written, f"{local}@{normal_host}"


@st.composite
def domains(draw) -> tuple[str, str]:
    host, normal = draw(hosts())
    host = draw(st.sampled_from(["", "www."])) + host + draw(st.sampled_from(["", "."]))
    scheme = draw(st.sampled_from(["", "http://", "https://", "//"]))
    userinfo = draw(st.sampled_from(["", "user@", "user:pw@"])) if scheme else ""
    lead_at = draw(st.sampled_from(["", "@"])) if not scheme else ""
    port = draw(st.sampled_from(["", ":8080", ":443"]))
    path = draw(st.sampled_from(["", "/", "/about", "/a/b.html"]))
    query = draw(st.sampled_from(["", "?q=1", "#top", "?utm_source=x#y"]))
    if (port or query) and not path:
        path = "/"
    written = random_case(draw, f"{lead_at}{scheme}{userinfo}{host}{port}{path}{query}")
    return written, normal


# (country code, national significant number template, international writings)
_PHONE_PLANS = {
    "US": ("1", "{a}{e}{l}"),
    "GB": ("44", "20{e}{l}"),
    "DE": ("49", "30{e}{l}"),
    "FR": ("33", "1{e}{l2}"),
    "JP": ("81", "3{e}{l}"),
    "IN": ("91", "9{e}{l2}"),
    "AU": ("61", "2{e}{l}"),
    "BR": ("55", "119{e}{l}"),
}


@st.composite
def phones(draw) -> tuple[str | int, str]:
    """A valid number in one of its common written forms, and its E.164 form."""
    country = draw(st.sampled_from(sorted(_PHONE_PLANS)))
    cc, template = _PHONE_PLANS[country]
    nsn = template.format(
        a=draw(st.sampled_from(["212", "303", "415", "512", "617", "646", "702", "808"])),
        e=draw(st.integers(200, 999)),
        l=f"{draw(st.integers(0, 9999)):04d}",
        l2=f"{draw(st.integers(0, 99999)):05d}",
    )
    e164 = f"+{cc}{nsn}"
    groups = [nsn[:3], nsn[3:6], nsn[6:]] if country == "US" else [nsn[:2], nsn[2:6], nsn[6:]]
    forms: list[str | int] = [
        e164,
        f"+{cc} {' '.join(groups)}",
        f"+{cc}-{'-'.join(groups)}",
        f"+{cc}.{'.'.join(groups)}",
        f"tel:+{cc}-{'-'.join(groups)}",
        f"00{cc} {' '.join(groups)}",
        f"011 {cc} {' '.join(groups)}",
        f"+{cc} {' '.join(groups)} ext. {draw(st.integers(1, 9999))}",
        f"+{cc} {' '.join(groups)} x{draw(st.integers(1, 999))}",
    ]
    if country == "US":
        forms += [
            f"({groups[0]}) {groups[1]}-{groups[2]}",
            f"{groups[0]}.{groups[1]}.{groups[2]}",
            f"1-{groups[0]}-{groups[1]}-{groups[2]}",
            f"+1 ({groups[0]}) {groups[1]}-{groups[2]}",
            int(nsn),
            int(cc + nsn),
        ]
    else:
        forms += [f"+{cc} (0){' '.join(groups)}"] if country in {"GB", "DE", "FR"} else []
    raw = draw(st.sampled_from(forms))
    if isinstance(raw, str):
        raw = draw(st.sampled_from(["", " "])) + raw + draw(st.sampled_from(["", " "]))
    return raw, e164


@st.composite
def linkedins(draw) -> tuple[str, str]:
    names = st.one_of(
        st.from_regex(r"[a-z][a-z0-9]{1,8}(-[a-z0-9]{1,8}){0,2}", fullmatch=True),
        st.sampled_from(["jérôme", "zoë-adams", "müller", "søren-k", "łukasz", "josé-garcía"]),
    )
    slug = draw(names)
    written_slug = random_case(draw, slug)
    if draw(st.booleans()):
        written_slug = quote(written_slug)
    host = draw(st.sampled_from(["linkedin.com", "www.linkedin.com", "uk.linkedin.com",
                                 "de.linkedin.com", "WWW.LinkedIn.com"]))
    scheme = draw(st.sampled_from(["", "http://", "https://"]))
    tail = draw(st.sampled_from(["", "/", "/details/experience/", "?trk=public_profile",
                                 "/?originalSubdomain=uk", "#about"]))
    return f"{scheme}{host}/in/{written_slug}{tail}", f"linkedin.com/in/{slug}"


@given(emails())
def test_email_formats_meet_in_one_idempotent_form(case: tuple[str, str]) -> None:
    raw, expected = case
    normal = normalize.email(raw)
    assert normal == expected
    assert normalize.email(normal) == normal


@given(emails())
def test_email_is_case_insensitive(case: tuple[str, str]) -> None:
    raw, expected = case
    assert normalize.email(raw.upper()) == expected
    assert normalize.email(raw.lower()) == expected
    assert normalize.email(raw.swapcase()) == expected


@given(domains())
def test_domain_formats_meet_in_one_idempotent_form(case: tuple[str, str]) -> None:
    raw, expected = case
    normal = normalize.domain(raw)
    assert normal == expected
    assert normalize.domain(normal) == normal
    assert normalize.domain(raw.upper()) == expected


@given(phones())
def test_phone_formats_meet_in_one_idempotent_form(case: tuple[str | int, str]) -> None:
    raw, e164 = case
    assert normalize.phone(raw) == e164
    assert normalize.phone(e164) == e164
    assert normalize.phone_candidates(raw) == (e164,)
    assert normalize.phone_candidates(e164) == (e164,)


@given(st.text(alphabet="0123456789 +-.()x#abctel:", max_size=25))
@example("+31000000000")  # found by this test: `+31 0…` loses one more 0 on every pass
@example("+9800000")  # found by this test: read as +98 0…, leaves 6 digits that are no rule
@example("+430000")  # found by this test: 6 digits, below the 7-digit minimum
def test_phone_rule_form_is_a_fixed_point_for_any_text(raw: str) -> None:
    """phone() makes the stored rules: its output must normalise to itself. The response
    side agrees with it whenever the value parses, and otherwise yields `+<digits>` forms."""
    once = normalize.phone(raw)
    candidates = normalize.phone_candidates(raw)
    if once is not None:
        assert once.startswith("+") and once[1:].isdigit()
        assert normalize.phone(once) == once
        assert candidates == (once,)
    for candidate in candidates:
        assert candidate.startswith("+") and candidate[1:].isdigit()
        assert len(candidate) > 7  # at least 7 digits


@given(linkedins())
def test_linkedin_formats_meet_in_one_idempotent_form(case: tuple[str, str]) -> None:
    raw, expected = case
    normal = normalize.linkedin(raw)
    assert normal == expected
    assert normalize.linkedin(normal) == normal


@given(st.one_of(emails().map(lambda c: (RuleType.EMAIL, c[0], c[1])),
                 phones().filter(lambda c: isinstance(c[0], str))
                 .map(lambda c: (RuleType.PHONE, c[0], c[1])),
                 linkedins().map(lambda c: (RuleType.LINKEDIN, c[0], c[1]))))
def test_detect_types_generated_values(case: tuple[RuleType, str, str]) -> None:
    rule_type, raw, expected = case
    assert normalize.detect(raw) == (rule_type, expected)
