"""rules/phones.py's fast path: a `+1` form of ten digits (no leading 0 or 1) is returned
without reading it back; hypothesis proves phonenumbers reads every such form back as itself,
and that `_e164` agrees with the read-back on any number, NANP or not."""

from __future__ import annotations

import phonenumbers
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumber

from rules import phones
from tests.budgets import examples

_E164 = phonenumbers.PhoneNumberFormat.E164


def read_back(number: PhoneNumber) -> str | None:
    """The slow path as it was: format, parse the form again, keep it only if it is itself."""
    normal = phonenumbers.format_number(number, _E164)
    if len(normal) <= phones.MIN_DIGITS:
        return None
    again = phonenumbers.parse(normal)
    return normal if phonenumbers.format_number(again, _E164) == normal else None


@settings(max_examples=examples(500), deadline=None)
@given(st.from_regex(r"\A[2-9][0-9]{9}\Z"))
def test_every_nanp_form_reads_back_as_itself(national: str) -> None:
    form = "+1" + national
    assert phones._NANP_FORM.fullmatch(form)
    assert phonenumbers.format_number(phonenumbers.parse(form), _E164) == form


@settings(max_examples=examples(500), deadline=None)
@given(
    country=st.sampled_from([1, 1, 1, 44, 39, 52, 98, 7, 49]),
    national=st.integers(0, 10**12),
    leading_zero=st.booleans(),
    zeros=st.integers(1, 3),
)
def test_the_fast_path_agrees_with_the_read_back(
    country: int, national: int, leading_zero: bool, zeros: int
) -> None:
    number = PhoneNumber(country_code=country, national_number=national)
    if leading_zero:
        number.italian_leading_zero = True
        number.number_of_leading_zeros = zeros
    assert phones._e164(number) == read_back(number)


@settings(max_examples=examples(300), deadline=None)
@given(st.from_regex(r"\A[0-9]{10,11}\Z"), st.sampled_from(["", "+", "+1 ", "1-", "(", "00"]))
def test_rule_forms_are_unchanged_for_digit_strings(digits: str, prefix: str) -> None:
    """`phone` against the same steps with the read-back in place of the fast path."""
    raw = prefix + digits
    expected = None
    try:
        number = phones._without_mexican_mobile_one(phonenumbers.parse(raw, "US"))
        if phonenumbers.is_valid_number(number) and phones._PHONE_SHAPE.fullmatch(raw):
            expected = read_back(number)
    except phonenumbers.NumberParseException:
        pass
    if expected is not None:
        assert phones.phone(raw, "US") == expected
