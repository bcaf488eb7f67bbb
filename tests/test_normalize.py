"""The one normaliser (rules/normalize.py): real-world formats in, canonical forms out.

Expected values are written out by hand (never computed with the code under test), so a
change of behaviour shows up as a failing row. Property tests at the end check that the
normal forms are fixed points and that every format of one identifier meets in one form.
"""

from __future__ import annotations

import hashlib
import inspect
import re
import unicodedata
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from rules import events, importer, normalize, publisher
from rules import phones as phones_module
from rules.model import RuleType, tenant_of

Normaliser = Callable[[str], str | None]
"""One type's normaliser: the normal form, or None when the value is not one."""


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
    ("+44 7911 123456", "+447911123456"),
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
    assert normalize.phone(raw, "US") == expected
    # The response side agrees with the rules side whenever the number parses.
    assert normalize.phone_candidates(raw, "US") == (expected,)


PHONES_NATIONAL = [
    ("020 7946 0958", "GB", UK),
    ("07911 123456", "GB", "+447911123456"),
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
    # not a valid UK number: rejected, never stored as a nonsense `+44 512…`
    assert normalize.phone("512.555.0100", "GB") is None


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("01 23 45 67 89", "US", None),  # only *possible* under US: no rule
        ("01 23 45 67 89", "FR", "+33123456789"),
        ("+33 1 23 45 67 89", "US", "+33123456789"),  # explicitly international
        ("0033 1 23 45 67 89", "US", "+33123456789"),
        ("+33 9 99 99 99 99 99", "US", None),  # international, but no valid number
        ("+1 555 555 0100", "US", None),  # 555 is no US area code
    ],
)
def test_phone_rule_must_be_a_valid_number(raw: str, region: str, expected: str | None) -> None:
    assert normalize.phone(raw, region) == expected


@pytest.mark.parametrize(
    "raw", ["+52 1 55 1234 5678", "+52 55 1234 5678", "+5215512345678", "+525512345678",
            "tel:+52-1-55-1234-5678", "0052 1 55 1234 5678"],
)
def test_mexican_mobile_with_and_without_the_old_1_is_one_number(raw: str) -> None:
    """phonenumbers reads `+52 1 …` as no number at all; both sides drop the `1`."""
    assert normalize.phone(raw, "US") == "+525512345678"
    assert normalize.phone_candidates(raw, "US") == ("+525512345678",)
    assert normalize.phone_candidates(raw + " (cell)", "US") == ("+525512345678",)


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
        # unparseable, but with enough digits: the response side compares the digits read
        # in the region (+1 for US) and as written
        ("12345678901234567890", ("+112345678901234567890", "+12345678901234567890")),
        ("+999 1234 5678", ("+99912345678",)),  # no such country code
        ("2023-01-15", ("+120230115", "+20230115")),
        ("512555010O", ("+1512555010", "+512555010")),  # letter O typed for a zero
        ("+1 512 555 01OO", ("+151255501",)),
        (12345678901234567890, ("+112345678901234567890", "+12345678901234567890")),
    ],
)
def test_invalid_phone_is_none_for_rules_and_digits_for_responses(
    raw: str | int, candidate: tuple[str, ...] | None
) -> None:
    assert normalize.phone(raw, "US") is None
    assert normalize.phone_candidates(raw, "US") == (candidate or ())


@pytest.mark.parametrize("raw", ["555-0100", "1234567", "555 0100 ext. 12"])
def test_phone_without_area_code_is_not_a_rule(raw: str) -> None:
    """A 7-digit US local number has no E.164 form; `+15550100` would be a rule that can
    never match the real subscriber (who is `+1 <area> 555 0100`)."""
    assert normalize.phone(raw, "US") is None


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
    assert normalize.phone_candidates(raw, "US") == (expected,)


def test_phone_int_with_country_code_matches_through_the_digits_fallback() -> None:
    # 442079460958 is not a US number; the response side reads it in the region and as +44...
    assert normalize.phone(442079460958, "US") is None
    assert normalize.phone_candidates(442079460958, "US") == ("+1442079460958", UK)


def test_digits_fallback_includes_the_regions_country_code() -> None:
    """A national spelling that is no valid number is looked up with the region's code."""
    assert normalize.phone_candidates("(512) 555-01", "US") == ("+151255501", "+51255501")
    assert normalize.phone_candidates("+(512) 555-01", "US") == ("+51255501",)  # international


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
        ("acme.com", "acme.com"),
        ("@acme.com", "acme.com"),
        ("acme.com.", "acme.com"),
        ("bücher.de", "xn--bcher-kva.de"),
        ("BÜCHER.de", "xn--bcher-kva.de"),
        ("https://www.bücher.de/", "xn--bcher-kva.de"),
        ("xn--bcher-kva.de", "xn--bcher-kva.de"),
        ("例え.jp", "xn--r8jz45g.jp"),
        ("WWW.Acme.Com", "acme.com"),
        ("http://www.acme.com./", "acme.com"),
        ("www.acme.com.", "acme.com"),
        ("ftp://acme.com", "acme.com"),
        ("https://www.Acme.com/", "acme.com"),
        ("acme.com:8080", "acme.com"),
        ("jane.github.io", "jane.github.io"),  # registrable under a private suffix
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
        ("https://www.linkedin.com/in/jane-doe/fr", "linkedin.com/in/jane-doe"),
        ("https://www.linkedin.com/comm/in/jane-doe", "linkedin.com/in/jane-doe"),
    ],
)
def test_linkedin(raw: str, expected: str) -> None:
    assert normalize.linkedin(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://www.linkedin.com/m/in/janedoe", "linkedin.com/in/janedoe"),
        ("https://www.linkedin.com/mwlite/in/janedoe", "linkedin.com/in/janedoe"),
        ("HTTPS://WWW.LINKEDIN.COM/M/IN/JANEDOE/", "linkedin.com/in/janedoe"),
        ("https://www.linkedin.com/MWLite/In/JaneDoe?trk=x", "linkedin.com/in/janedoe"),
        ("linkedin.com/m/in/janedoe", "linkedin.com/in/janedoe"),
        ("uk.linkedin.com/mwlite/in/jane%20doe/#about", "linkedin.com/in/jane doe"),
        ("https://mobile.linkedin.com/in/janedoe", "linkedin.com/in/janedoe"),
        ("https://m.linkedin.com/in/janedoe", "linkedin.com/in/janedoe"),
        ("https://www.linkedin.com/m/in/janedoe/details/experience/", "linkedin.com/in/janedoe"),
        ("https://www.linkedin.com/public-profile/in/janedoe", "linkedin.com/in/janedoe"),
        ("https://www.linkedin.com/comm/mwlite/in/janedoe", "linkedin.com/in/janedoe"),
        ("https://www.linkedin.com/m/./in/janedoe", "linkedin.com/in/janedoe"),
        ("https://www.linkedin.com/x/../m/in/janedoe", "linkedin.com/in/janedoe"),
    ],
)
def test_a_mobile_path_is_the_same_profile(raw: str, expected: str) -> None:
    assert normalize.linkedin(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [  # LinkedIn redirects `/pub/<name>/<a>/<b>/<c>` to `/in/<name>-<c><b><a>`
        ("https://sy.linkedin.com/pub/krzysztof-marzec/a7/576/b50?trk=biz_employee_pub",
         "linkedin.com/in/krzysztof-marzec-b50576a7"),
        ("https://uk.linkedin.com/pub/abdi-ahmed/100/384/6b0",
         "linkedin.com/in/abdi-ahmed-6b0384100"),
        ("linkedin.com/pub/Jane-Doe/1a/2b/3/", "linkedin.com/in/jane-doe-00302b1a"),
        ("https://www.linkedin.com/m/pub/jane-doe/a7/576/b50", "linkedin.com/in/jane-doe-b50576a7"),
    ],
)
def test_a_legacy_pub_url_is_the_profile_it_redirects_to(raw: str, expected: str) -> None:
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
        "https://www.linkedin.com/m/",
        "https://www.linkedin.com/m/in/",
        "https://www.linkedin.com/mwlite/company/acme",
        "https://www.linkedin.com/m/jane",
        "https://www.linkedin.com/pub/dir/jane/doe",
        "https://www.linkedin.com/pub/jane-doe",
        "https://www.linkedin.com/pub/jane-doe/a7/576",
        "https://www.linkedin.com/pub/jane-doe/a7/5766/b50",
        "https://acme.com/m/in/jane",
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
        ("https://www.linkedin.com/m/in/Jane-Doe", (RuleType.LINKEDIN, "linkedin.com/in/jane-doe")),
        ("www.linkedin.com/mwlite/in/jane-doe/", (RuleType.LINKEDIN, "linkedin.com/in/jane-doe")),
        ("+1 (512) 555-0100", (RuleType.PHONE, US)),
        ("512.555.0100", (RuleType.PHONE, US)),
        ("tel:+44-20-7946-0958", (RuleType.PHONE, UK)),
        ("0044 20 7946 0958", (RuleType.PHONE, UK)),
        ("(512) 555-0100 ext. 12", (RuleType.PHONE, US)),
        ("https://www.Acme.com/", (RuleType.DOMAIN, "acme.com")),
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
    assert normalize.detect(raw, "US") == expected


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
        # never a URL's host
        "https://twitter.com/x",
        "https://www.Acme.com/about",
        "acme.com?x=1",
        "gmail.com",  # free-mail, not allowed
        "co.uk",
        "+33 1 23 45 67 89 00",
    ],
)
def test_detect_rejects(raw: str) -> None:
    assert normalize.detect(raw, "US") is None


def test_detect_uses_the_region_for_national_numbers() -> None:
    assert normalize.detect("020 7946 0958", "GB") == (RuleType.PHONE, UK)
    assert normalize.detect("512.555.0100", "US") == (RuleType.PHONE, US)


@pytest.mark.parametrize(
    ("rule_type", "raw", "region", "expected"),
    [
        (RuleType.EMAIL, "Jane@ACME.com", "US", "jane@acme.com"),
        (RuleType.DOMAIN, "https://www.Acme.com/", "US", "acme.com"),
        (
            RuleType.LINKEDIN,
            "https://www.linkedin.com/in/Jane-Doe/",
            "US",
            "linkedin.com/in/jane-doe",
        ),
        (RuleType.PHONE, "512.555.0100", "US", US),
        (RuleType.PHONE, "020 7946 0958", "GB", UK),
        (RuleType.PHONE, "512.555.0100", "GB", None),
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
         "US", ("jane@acme.com", "bob@beta.io"),
         [(3, "not a valid email"), (4, "not a valid email")]),
        (RuleType.PHONE, ["+1 (512) 555-0100", "512.555.0100", "020 7946 0958", "12"], "GB",
         ("+15125550100", UK), [(1, "not a valid phone"), (3, "not a valid phone")]),
        (RuleType.PHONE, ["+1 (512) 555-0100", "512.555.0100", 5125550100], "US",
         (US,), [(2, "not a string")]),  # rules arrive as text: a bare int is rejected
        (RuleType.DOMAIN, ["https://www.Acme.com/", "@acme.com", "localhost", "bücher.de",
                           "co.uk", "jane@acme.com", "acme.com/about", "gmail.com"], "US",
         ("acme.com", "xn--bcher-kva.de"),
         [(2, "not a valid domain"),
          (4, "a public suffix: a rule on it would deny every domain under it"),
          (5, "an email address or a URL with user info, not a domain"),
          (6, "a URL with a path, query or fragment, not a domain"),
          (7, "a free-mail provider's domain (allow free-mail domains to add it)")]),
        (RuleType.LINKEDIN, ["https://www.linkedin.com/in/Jane-Doe/", "linkedin.com/in/jane-doe",
                             "https://www.linkedin.com/company/acme"], "US",
         ("linkedin.com/in/jane-doe",), [(2, "not a valid linkedin")]),
        (RuleType.EMAIL, ["jane@acme.com", "ja\ufffdne@acme.com"], "US", ("jane@acme.com",),
         [(1, "contains U+FFFD: the text was not valid UTF-8")]),
        (RuleType.EMAIL, [], "US", (), []),
    ],
)
def test_normalize_all(
    rule_type: RuleType,
    raws: list[object],
    region: str,
    normal: tuple[str, ...],
    bad: list[tuple[int, str]],
) -> None:
    result = normalize.normalize_all(rule_type, raws, region)
    assert result.values == normal
    assert [(r.index, r.reason) for r in result.rejected] == bad
    assert [r.value for r in result.rejected] == [raws[i] for i, _ in bad]
    assert len(result.normal) == len(raws)  # aligned with the input


def test_normalize_all_allows_freemail_domains_only_when_asked() -> None:
    raws = ["gmail.com", "GMX.de", "yandex.ru", "qq.com", "163.com", "proton.me"]
    assert normalize.normalize_all(RuleType.DOMAIN, raws, "US").values == ()
    allowed = normalize.normalize_all(RuleType.DOMAIN, raws, "US", allow_freemail=True)
    assert allowed.values == ("gmail.com", "gmx.de", "yandex.ru", "qq.com", "163.com", "proton.me")
    assert not allowed.rejected


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
        (lambda raw: normalize.phone(raw, "US"), "0044 20 7946 0958"),
        (normalize.email, "MAILTO:Jane@Bücher.de."),
    ],
)
def test_normal_form_is_a_fixed_point(fn: Normaliser, raw: str) -> None:
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
# Invisible characters a copy-paste leaves behind (written out here, not taken from the code).
_INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u200e", "\u200f", "\u202a",
              "\u202c", "\u202e", "\u2066", "\u2069", "\u00ad"]

sub_label = st.from_regex(r"[a-z][a-z0-9-]{0,10}[a-z0-9]", fullmatch=True).filter(
    lambda s: "--" not in s and s != "www"
)
# A registrable label that no public-suffix or free-mail list holds (`zq…`).
own_label = st.from_regex(r"zq[a-z0-9]{2,9}", fullmatch=True)
label_pair = st.one_of(own_label.map(lambda s: (s, s)), st.sampled_from(sorted(_IDN.items())))


@st.composite
def hosts(draw: st.DrawFn) -> tuple[str, str]:
    """(host as written, its normal form), possibly with subdomains and an IDN label."""
    subs = draw(st.lists(sub_label, max_size=2))
    unicode_label, ascii_form = draw(label_pair)
    tld = draw(st.sampled_from(_TLDS))
    written = ".".join([*subs, unicode_label, tld])
    normal = ".".join([*subs, ascii_form, tld])
    return written, normal


def random_case(draw: st.DrawFn, text: str) -> str:
    flips = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    return "".join(c.upper() if f else c for c, f in zip(text, flips, strict=True))


def garble(draw: st.DrawFn, text: str) -> str:
    """Decompose (NFD) or not, and sprinkle up to two invisible characters anywhere."""
    if draw(st.booleans()):
        text = unicodedata.normalize("NFD", text)
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(_INVISIBLE)) + text[at:]
    return text


@st.composite
def emails(draw: st.DrawFn) -> tuple[str, str]:
    local = draw(st.one_of(
        st.from_regex(r"[a-z][a-z0-9]{0,7}([._+-][a-z0-9]{1,6}){0,2}", fullmatch=True),
        st.sampled_from(["jérôme", "zoë.adams", "müller", "søren", "josé-garcía", "o'brien"]),
    ))
    host, normal_host = draw(hosts())
    written = random_case(draw, f"{local}@{host}")
    written = draw(st.sampled_from(["", "mailto:", "MAILTO:"])) + written
    written += draw(st.sampled_from(["", "."]))
    lead, trail = draw(st.sampled_from(["", " ", "\t"])), draw(st.sampled_from(["", " ", "\n"]))
    written = lead + written + trail
    return garble(draw, written), f"{local}@{normal_host}"


@st.composite
def domains(draw: st.DrawFn) -> tuple[str, str]:
    """A bare domain in the ways people write one: case, www., scheme, @, port, `/`."""
    host, normal = draw(hosts())
    host = draw(st.sampled_from(["", "www."])) + host + draw(st.sampled_from(["", "."]))
    scheme = draw(st.sampled_from(["", "http://", "https://", "//"]))
    lead_at = draw(st.sampled_from(["", "@"])) if not scheme else ""
    port = draw(st.sampled_from(["", ":8080", ":443"]))
    slash = draw(st.sampled_from(["", "/"]))
    written = random_case(draw, f"{lead_at}{scheme}{host}{port}{slash}")
    written = draw(st.sampled_from(["", " "])) + written + draw(st.sampled_from(["", "\n"]))
    return garble(draw, written), normal


@st.composite
def urls_with_more_than_a_host(draw: st.DrawFn) -> str:
    host, _ = draw(hosts())
    scheme = draw(st.sampled_from(["", "http://", "https://www."]))
    rest = draw(st.sampled_from(["/about", "/x", "/a/b.html", "?q=1", "/#top", "/?utm_source=x"]))
    user = draw(st.sampled_from(["", "user@", "user:pw@"])) if rest == "/" else ""
    return f"{scheme}{user}{host}{rest}"


# (region, country code, national prefix, leading digits, random digits after them): numbering
# plans written out by hand from the regulators' published ranges.
_PHONE_PLANS = [
    ("US", "1", "1", ["212", "303", "415", "512", "617", "646", "702", "808"], 7),
    ("GB", "44", "0", ["207"], 7),
    ("DE", "49", "0", ["30"], 8),
    ("FR", "33", "0", ["1"], 8),
    ("AU", "61", "0", ["29"], 7),
    ("IN", "91", "0", ["98"], 8),
    ("BR", "55", "", ["119"], 8),
    ("MX", "52", "", ["55"], 8),
]
_ANY_REGION = ["US", "GB", "DE", "FR", "AU", "IN", "BR", "MX", "JP"]


@st.composite
def phones(draw: st.DrawFn) -> tuple[str | int, str, str]:
    """(a valid number in one of its written forms, the region it is read in, its E.164)."""
    region, cc, prefix, leads, n = draw(st.sampled_from(_PHONE_PLANS))
    rest = "".join(draw(st.lists(st.sampled_from("0123456789"), min_size=n, max_size=n)))
    if region == "US":
        rest = draw(st.sampled_from("23456789")) + rest[1:]  # exchanges start 2-9
    nsn = draw(st.sampled_from(leads)) + rest
    e164 = f"+{cc}{nsn}"
    g = [nsn[:3], nsn[3:6], nsn[6:]] if region == "US" else [nsn[:2], nsn[2:6], nsn[6:]]
    international: list[str | int] = [
        e164, f"+{cc} {' '.join(g)}", f"+{cc}-{'-'.join(g)}", f"+{cc}.{'.'.join(g)}",
        f"+{cc} ({g[0]}) {g[1]}-{g[2]}", f"tel:+{cc}-{'-'.join(g)}", f"TEL:{e164}",
        f"00{cc} {' '.join(g)}", f"+{cc} {' '.join(g)} ext. {draw(st.integers(1, 9999))}",
        f"+{cc} {' '.join(g)} x{draw(st.integers(1, 999))}", f"+{cc} {''.join(g)};ext=12",
    ]
    national: list[str | int] = [
        f"{prefix}{' '.join(g)}", f"({prefix}{g[0]}) {g[1]}-{g[2]}", f"{prefix}{'.'.join(g)}",
        f"{prefix}{'-'.join(g)} #{draw(st.integers(1, 99))}", f"tel:{prefix}{''.join(g)}",
    ]
    if region == "US":
        national += [f"({g[0]}) {g[1]}-{g[2]}", f"{g[0]}.{g[1]}.{g[2]}", int(nsn), int(cc + nsn)]
    if region == "MX":
        international.append(f"+52 1 {' '.join(g)}")  # the pre-2019 mobile `1`
    if draw(st.booleans()):
        raw, read_in = draw(st.sampled_from(international)), draw(st.sampled_from(_ANY_REGION))
    else:
        raw, read_in = draw(st.sampled_from(national)), region
    if isinstance(raw, str):
        pad = draw(st.sampled_from(["", " "]))
        raw = garble(draw, pad + raw + draw(st.sampled_from(["", " "])))
    return raw, read_in, e164


@st.composite
def linkedins(draw: st.DrawFn) -> tuple[str, str]:
    names = st.one_of(
        st.from_regex(r"[a-z][a-z0-9]{1,8}(-[a-z0-9]{1,8}){0,2}", fullmatch=True),
        st.sampled_from(["jérôme", "zoë-adams", "müller", "søren-k", "łukasz", "josé-garcía"]),
    )
    slug = draw(names)
    written_slug = random_case(draw, slug)
    if draw(st.booleans()):
        written_slug = unicodedata.normalize("NFD", written_slug)
    if draw(st.booleans()):
        written_slug = quote(written_slug)
    host = draw(st.sampled_from(["linkedin.com", "www.linkedin.com", "uk.linkedin.com",
                                 "de.linkedin.com", "WWW.LinkedIn.com", "m.linkedin.com"]))
    scheme = draw(st.sampled_from(["", "http://", "https://"]))
    prefix = random_case(draw, draw(st.sampled_from(["", "m/", "mwlite/", "comm/"])))
    tail = draw(st.sampled_from(["", "/", "/details/experience/", "?trk=public_profile",
                                 "/?originalSubdomain=uk", "#about", "/en"]))
    return f"{scheme}{host}/{prefix}in/{written_slug}{tail}", f"linkedin.com/in/{slug}"


@given(emails())
def test_email_formats_meet_in_one_idempotent_form(case: tuple[str, str]) -> None:
    raw, expected = case
    normal = normalize.email(raw)
    assert normal == expected
    assert normalize.email(normal) == normal


@given(emails(), st.sampled_from(["{}", "Contact: {}, thanks", "<{}>", "'{}'", "({})", "{}!"]))
def test_the_response_side_finds_every_email_the_rule_side_accepts(
    case: tuple[str, str], sentence: str
) -> None:
    raw, expected = case
    assert expected in normalize.emails_in_text(raw)
    assert expected in normalize.emails_in_text(sentence.format(raw.strip()))


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
    assert normalize.detect(raw, "US") == (RuleType.DOMAIN, expected)


@given(urls_with_more_than_a_host())
def test_a_url_with_a_path_is_never_read_as_its_host(raw: str) -> None:
    assert normalize.domain(raw) is None
    assert normalize.detect(raw, "US") is None


@given(phones())
def test_phone_formats_meet_in_one_idempotent_form(case: tuple[str | int, str, str]) -> None:
    """Every spelling the rule side accepts, the response side produces (and nothing else)."""
    raw, region, e164 = case
    assert normalize.phone(raw, region) == e164
    assert normalize.phone_candidates(raw, region) == (e164,)
    for other in ("US", "GB", "JP"):
        assert normalize.phone(e164, other) == e164
        assert normalize.phone_candidates(e164, other) == (e164,)


@given(st.text(alphabet="0123456789 +-.()x#abctel:", max_size=25),
       st.sampled_from(["US", "GB", "MX", "FR"]))
@example("+31000000000", "US")  # found by this test: `+31 0…` loses one more 0 on every pass
@example("+9800000", "US")  # found by this test: read as +98 0…, leaves 6 digits that are no rule
@example("+430000", "US")  # found by this test: 6 digits, below the 7-digit minimum
@example("0010000", "GB")  # found by this test: the matcher read +10000, below the minimum
def test_phone_rule_form_is_a_fixed_point_for_any_text(raw: str, region: str) -> None:
    """phone() makes the stored rules: its output must normalise to itself. The response
    side agrees with it whenever the value parses, and otherwise yields `+<digits>` forms."""
    once = normalize.phone(raw, region)
    candidates = normalize.phone_candidates(raw, region)
    if once is not None:
        assert once.startswith("+") and once[1:].isdigit()
        assert normalize.phone(once, region) == once
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


_ANY_TEXT = st.text(
    alphabet=st.one_of(st.characters(), st.sampled_from(_INVISIBLE), st.sampled_from("@./:+%")),
    max_size=40,
)


@given(st.one_of(_ANY_TEXT, emails().map(lambda c: c[0]), domains().map(lambda c: c[0]),
                 linkedins().map(lambda c: c[0]),
                 phones().map(lambda c: str(c[0])), urls_with_more_than_a_host()))
def test_every_normal_form_is_a_fixed_point(raw: str) -> None:
    """normalise(normalise(x)) == normalise(x) for every type, on any text at all."""
    fns: list[Normaliser] = [
        normalize.email, normalize.linkedin, lambda v: normalize.domain(v, allow_freemail=True),
        lambda v: normalize.phone(v, "US"), lambda v: normalize.phone(v, "GB"),
    ]
    for fn in fns:
        once = fn(raw)
        if once is not None:
            assert fn(once) == once
            assert normalize.clean(once) == once


@given(st.one_of(emails().map(lambda c: (RuleType.EMAIL, c[0], c[1])),
                 phones().filter(lambda c: isinstance(c[0], str) and c[1] == "US")
                 .map(lambda c: (RuleType.PHONE, c[0], c[2])),
                 linkedins().map(lambda c: (RuleType.LINKEDIN, c[0], c[1])),
                 domains().map(lambda c: (RuleType.DOMAIN, c[0], c[1]))))
def test_detect_types_generated_values(case: tuple[RuleType, str, str]) -> None:
    rule_type, raw, expected = case
    assert normalize.detect(raw, "US") == (rule_type, expected)


# --------------------------------------------------------------------------------------
# one normal form on both sides: clean text, the email pattern, keys, regions
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fn", "nfc", "nfd"),
    [
        (normalize.email, "J\u00e9r\u00f4me@acme.com", "Je\u0301ro\u0302me@acme.com"),
        (normalize.linkedin, "linkedin.com/in/j\u00e9r\u00f4me",
         "linkedin.com/in/je\u0301ro\u0302me"),
        (normalize.linkedin, "linkedin.com/in/j%C3%A9r%C3%B4me",
         "linkedin.com/in/je%CC%81ro%CC%82me"),
    ],
)
def test_nfc_and_nfd_spellings_are_one_identifier(fn: Normaliser, nfc: str, nfd: str) -> None:
    assert fn(nfc) is not None
    assert fn(nfc) == fn(nfd)


@pytest.mark.parametrize("mark", ["\ufeff", "\u200b", "\u200c", "\u200d", "\u2060", "\u200e",
                                  "\u200f", "\u202a", "\u202e", "\u2066", "\u2069", "\u00ad"])
def test_format_characters_are_removed_on_every_input(mark: str) -> None:
    assert normalize.email(f"{mark}jane@ac{mark}me.com") == "jane@acme.com"
    assert normalize.emails_in_text(f"mail ja{mark}ne@acme.com{mark} now") == ("jane@acme.com",)
    assert normalize.domain(f"{mark}acme{mark}.com") == "acme.com"
    assert normalize.linkedin(f"linkedin.com/in/jane{mark}-doe") == "linkedin.com/in/jane-doe"
    assert normalize.phone(f"{mark}+1 512{mark} 555 0100", "US") == US
    assert normalize.phone_candidates(f"512 555 0100{mark}", "US") == (US,)


def test_a_slash_in_the_local_part_means_the_same_on_both_sides() -> None:
    """Responses read `jane/doe@acme.com` as `doe@acme.com`; a rule on the whole would never
    match anything, so it is rejected (see the module docstring)."""
    assert normalize.email("jane/doe@acme.com") is None
    assert normalize.detect("jane/doe@acme.com", "US") is None
    assert normalize.emails_in_text("jane/doe@acme.com") == ("doe@acme.com",)
    assert normalize.email("doe@acme.com") == "doe@acme.com"


# The regex parser is private (re._parser, re._constants) and absent from typeshed; its public
# aliases sre_parse/sre_constants warn as deprecated. Hence Any and the ignores below.
_SRE: Any = re._constants  # type: ignore[attr-defined]  # private module, not in typeshed
_PARSER: Any = re._parser  # type: ignore[attr-defined]  # private module, not in typeshed


def _repeats(tree: Any, nested: bool = False) -> Iterator[tuple[int, int, bool]]:
    """(min, max, nested) of every repeat in a parsed regular expression."""
    for op, arg in tree:
        if op in (_SRE.MAX_REPEAT, _SRE.MIN_REPEAT):
            low, high, body = arg
            yield low, high, nested
            yield from _repeats(body, True)
        elif op is _SRE.SUBPATTERN:
            yield from _repeats(arg[-1], nested)
        elif op is _SRE.BRANCH:
            for branch in arg[1]:
                yield from _repeats(branch, nested)


def test_email_pattern_is_linear_time() -> None:
    """Every quantifier is bounded and none is nested, so a scan does at most
    (longest match) steps per start position: work is linear in the text's length."""
    tree = _PARSER.parse(normalize.EMAIL_IN_TEXT.pattern)
    repeats = list(_repeats(tree))
    assert repeats and all(high <= 253 and not nested for _, high, nested in repeats)
    longest = tree.getwidth()[1]
    assert longest == 64 + 1 + 253
    hostile = "@" + "a" * 40_000
    assert len(hostile) * longest < 13_000_000  # the bound on steps for the 40 KB string
    assert normalize.EMAIL_IN_TEXT.findall(hostile) == []
    assert normalize.emails_in_text("a" * 40_000 + "@") == ()


def test_tenant_of_trims_the_key_and_rejects_an_empty_one() -> None:
    assert tenant_of("key-123\n") == tenant_of("  key-123 ") == tenant_of("key-123")
    assert tenant_of("key-123") == hashlib.sha256(b"key-123").hexdigest()
    for empty in ("", " ", "\n"):
        with pytest.raises(ValueError, match="must not be empty"):
            tenant_of(empty)


@pytest.mark.parametrize("module", [normalize, phones_module, events, importer, publisher])
def test_no_function_defaults_the_region(module: ModuleType) -> None:
    """A forgotten region must be an error, never a silent `US`."""
    checked = 0
    for name, obj in vars(module).items():
        if getattr(obj, "__module__", None) != module.__name__:
            continue
        target = getattr(obj, "__wrapped__", obj)
        if inspect.isclass(target):
            target = target.__init__
        if not inspect.isfunction(target):
            continue
        region = inspect.signature(target).parameters.get("region")
        assert region is None or region.default is inspect.Parameter.empty, name
        checked += region is not None
    assert checked  # each module has functions taking a region


def test_a_value_with_a_replacement_character_is_no_rule() -> None:
    assert normalize.classify("ja\ufffdne@acme.com", None, "US") == (
        "contains U+FFFD: the text was not valid UTF-8"
    )
