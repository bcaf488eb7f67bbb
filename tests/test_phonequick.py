"""rules/phonequick.py against phonenumbers itself: the quick reader decides a plain spelling
exactly as phonenumbers.parse reads it, `valid` is phonenumbers.is_valid_number, and
rules/phones.py's `phone` (quick first) equals its phonenumbers-only reference `parsed_phone`.

The numbers come from phonenumbers' own example numbers of every region and type, their last
digits replaced (valid and invalid numbers alike), written E.164, international, national,
with random separators, and read in their own region, in `US` or in any other region.
"""

from __future__ import annotations

import re
import sys

import phonenumbers
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumber, PhoneNumberFormat, PhoneNumberType

from rules import phonequick, phones

_REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)
_NON_GEO = sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS)
_TYPES = [v for k, v in vars(PhoneNumberType).items() if k.isupper() and k != "UNKNOWN"]
_FORMATS = [PhoneNumberFormat.E164, PhoneNumberFormat.INTERNATIONAL, PhoneNumberFormat.NATIONAL]
_SEPARATORS = ["", " ", "-", ".", "(", ")", " (", ") "]
_EQUIVALENCE = settings(max_examples=settings.default.max_examples * 2, deadline=None)


def _examples() -> list[PhoneNumber]:
    """phonenumbers' example number of every region and type, and of every non-geographic code."""
    found = [phonenumbers.example_number_for_type(r, t) for r in _REGIONS for t in _TYPES]
    found += [phonenumbers.example_number_for_non_geo_entity(code) for code in _NON_GEO]
    return [number for number in found if number is not None]


_EXAMPLES = _examples()
_NANP_EXAMPLES = [n for n in _EXAMPLES if n.country_code == 1]


@st.composite
def example_numbers(draw: st.DrawFn) -> PhoneNumber:
    """An example number of a region (or a non-geographic code) and type, last digits redrawn,
    sometimes a digit more or less: valid numbers and near misses."""
    example = draw(st.sampled_from(_EXAMPLES))
    national = phonenumbers.national_significant_number(example)
    redrawn = draw(st.integers(0, min(6, len(national) - 1)))
    size = max(0, redrawn + draw(st.integers(-1, 1)))
    tail = draw(st.text("0123456789", min_size=size, max_size=size))
    return _number(example.country_code, national[: len(national) - redrawn] + tail)


def _number(country_code: int, national: str) -> PhoneNumber:
    """The PhoneNumber phonenumbers.parse makes of these national digits (leading zeros kept)."""
    number = PhoneNumber(country_code=country_code, national_number=int(national))
    zeros = len(national) - len(national.lstrip("0"))
    if len(national) > 1 and zeros:
        number.italian_leading_zero = True
        number.number_of_leading_zeros = min(zeros, len(national) - 1)
    return number


@st.composite
def spellings(draw: st.DrawFn) -> tuple[str, str]:
    """(text, region to read it in): a number formatted, or its digits with random separators;
    an international spelling sometimes with an IDD (or a lone 0) for its +."""
    number = draw(example_numbers())
    own = phonenumbers.region_code_for_number(number) or "US"
    region = draw(st.sampled_from([own, "US"]) | st.sampled_from(_REGIONS))
    if draw(st.booleans()):
        text = phonenumbers.format_number(number, draw(st.sampled_from(_FORMATS)))
    else:
        digits = phonenumbers.format_number(number, PhoneNumberFormat.E164)
        if draw(st.booleans()):  # the national digits only
            digits = phonenumbers.national_significant_number(number)
        text = "".join(c + draw(st.sampled_from(_SEPARATORS)) for c in digits).strip()
    if text.startswith("+"):  # sometimes with an IDD instead of the +: `00 44…`, `011 44…`
        text = draw(st.sampled_from(["+", "+", "00", "011", "0"])) + text[1:]
    return text, region


def _plain_texts() -> st.SearchStrategy[tuple[str, str]]:
    """Random strings of the plain alphabet, any region: odd shapes the examples never make."""
    text = st.from_regex(r"\A\+?[0-9 ().\-]{0,4}[0-9][0-9 ().\-]{5,20}[0-9]\Z")
    return st.tuples(text, st.sampled_from(["US", "GB", "DE", "IN", "FR", "BR", "MX", "AR"]))


@st.composite
def nanp_forms(draw: st.DrawFn) -> tuple[str, str]:
    """(`+1` and ten digits, any region): rules/phones.py's fast path. An example number of a
    NANP region (US, CA, the Caribbean) with its last digits redrawn, or any ten digits."""
    example = draw(st.sampled_from(_NANP_EXAMPLES))
    national = phonenumbers.national_significant_number(example)
    redrawn = draw(st.integers(0, 7))
    tail = draw(st.text("0123456789", min_size=redrawn, max_size=redrawn))
    drawn = draw(st.from_regex(r"\A[0-9]{10}\Z") | st.just(national[: 10 - redrawn] + tail))
    return "+1" + drawn, draw(st.sampled_from(["US", "CA", "JM", "GB"]) | st.sampled_from(_REGIONS))


def _check_read(text: str, region: str) -> None:
    found = phonequick.read(text, region)
    event("decided by the quick reader" if found else "left to phonenumbers")
    if found is None:
        return
    number = phonenumbers.parse(text, region)  # must not raise: the quick reader decided
    assert number.extension is None
    assert number.country_code == found.country_code
    assert phonenumbers.national_significant_number(number) == found.national


@_EQUIVALENCE
@given(spellings())
def test_a_decided_reading_is_what_phonenumbers_parses(spelled: tuple[str, str]) -> None:
    _check_read(*spelled)


@_EQUIVALENCE
@given(_plain_texts())
def test_a_decided_reading_of_any_plain_text_is_what_phonenumbers_parses(
    spelled: tuple[str, str],
) -> None:
    _check_read(*spelled)


@_EQUIVALENCE
@given(example_numbers())
def test_valid_is_phonenumbers_is_valid_number(number: PhoneNumber) -> None:
    national = phonenumbers.national_significant_number(number)
    reading = phonequick.Reading(number.country_code, national)
    assert phonequick.valid(reading) == phonenumbers.is_valid_number(number)
    event("valid" if phonenumbers.is_valid_number(number) else "invalid")


def _phone_uncached(text: str, region: str) -> str | None:
    return phones.phone.__wrapped__(text, region)  # type: ignore[attr-defined]


def _reference(text: str, region: str) -> str | None:
    """`phone` with phonenumbers alone: the same shape checks, then `parsed_phone`."""
    cleaned = phones._text(text)
    if not phones._PHONE_SHAPE.fullmatch(cleaned) or len(phones._digits(cleaned)) < 7:
        return None
    return phones.parsed_phone(cleaned, region)


@_EQUIVALENCE
@given(nanp_forms())
def test_valid_nanp_is_valid_of_the_quick_reading(spelled: tuple[str, str]) -> None:
    """phonequick.valid_nanp (phones.py's `+1` fast path) decides as `read` then `valid`."""
    text, region = spelled
    if not phones._NANP_FORM.fullmatch(text):
        return  # a 0 or 1 after `+1`: the fast path is never asked
    found = phonequick.valid_nanp(text)
    reading = phonequick.read(text, region)
    assert reading is not None and found is not None
    assert found == phonequick.valid(reading)
    event("valid" if found else "invalid")


@_EQUIVALENCE
@given(spellings() | _plain_texts() | nanp_forms())
def test_phone_equals_its_phonenumbers_reference(spelled: tuple[str, str]) -> None:
    text, region = spelled
    found = _phone_uncached(text, region)
    event("a rule form" if found else "no rule form")
    assert found == _reference(text, region)


@pytest.mark.parametrize(
    ("text", "region", "expected"),
    [
        ("+15125550100", "US", phonequick.Reading(1, "5125550100")),
        ("(512) 555-0100", "US", phonequick.Reading(1, "5125550100")),
        ("512.555.0100", "CA", phonequick.Reading(1, "5125550100")),
        ("+44 20 7946 0958", "US", phonequick.Reading(44, "2079460958")),
        ("+800 1234 5678", "US", phonequick.Reading(800, "12345678")),
        ("+39 06 1234 5678", "US", phonequick.Reading(39, "0612345678")),  # a leading zero kept
        ("0044 20 7946 0958", "US", phonequick.Reading(1, "00442079460958")),  # no US number
    ],
)
def test_the_common_spellings_are_read_quickly(
    text: str, region: str, expected: phonequick.Reading
) -> None:
    assert phonequick.read(text, region) == expected


@pytest.mark.parametrize(
    ("text", "region"),
    [
        ("+52 1 55 1234 5678", "US"),  # Mexico: rules/phones.py drops the mobile 1
        ("0044 20 7946 0958", "GB"),  # the region's own IDD
        ("011 44 20 7946 0958", "US"),  # the region's own IDD
        ("1 512 555 0100", "US"),  # the region's country code written without +
        ("020 7946 0958", "GB"),  # a national prefix to strip
        ("+1 512 555 0100 x12", "US"),  # an extension
        ("512 555 0100", "us"),  # no such region code (phonenumbers reads it upper case)
        ("５１２５５５０１００", "US"),  # full-width digits
    ],
)
def test_other_spellings_are_left_to_phonenumbers(text: str, region: str) -> None:
    assert phonequick.read(text, region) is None


def test_digits_keeps_exactly_the_decimal_characters() -> None:
    """`_digits` uses the regex `\\d` (Unicode Nd): the same characters as str.isdecimal."""
    decimal = re.compile(r"\d")
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        assert char.isdecimal() == bool(decimal.fullmatch(char)), hex(code)
