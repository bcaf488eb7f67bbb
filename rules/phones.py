"""Phone numbers: the strict rule side and the over-matching response side, side by side.

Rule side (`phone`): a rule must be a *valid* number by phonenumbers' metadata, read in the
given region unless written internationally (`+`, `00`, or the region's own prefix such as
US `011`). `01 23 45 67 89` under US is no number; it is rejected, never stored as nonsense.

Response side (`phone_candidates`): every E.164 form a value under a phone key may stand for.
Over-matching is the safe failure of a suppression filter, so a value that is no valid number
is still compared: by the numbers found in it, else by its digits read in the region
(`+<country code><national digits>`) and as written (`+<digits>`).

Both sides agree: whatever `phone(raw, region)` accepts, `phone_candidates(raw, region)` yields
first. Mexican mobiles written with the old `1` after `+52` are read without it, as
phonenumbers reads `+52 1 …` as no number at all.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from functools import lru_cache

import phonenumbers
from phonenumbers import PhoneNumber

from rules import phonequick
from rules.text import clean

_TEL_PREFIX = re.compile(r"^tel:", re.IGNORECASE)
# A phone rule is digits and separators, optionally an extension: letters mean it is not one.
_PHONE_SHAPE = re.compile(
    r"\+?[\d\s().\-/]+(?:(?:;ext=|ext\.?|extension|x|#)\s*\d+)?", re.IGNORECASE
)
MIN_DIGITS = 7
"""No normal form has fewer digits: shorter values are local numbers or noise."""
_CACHE = 65_536  # responses repeat the same contacts: normalise each raw value once
_E164 = phonenumbers.PhoneNumberFormat.E164
_MEXICO = 52
_NANP_FORM = re.compile(r"\+1[2-9][0-9]{9}")
_NOT_DIGIT = re.compile(r"\D")  # \d is Unicode category Nd, as str.isdecimal


def _text(raw: str | int) -> str:
    return _TEL_PREFIX.sub("", clean(str(raw)).strip())


def _digits(text: str) -> str:
    """ASCII digits of every decimal digit in `text` (full-width digits included)."""
    found = _NOT_DIGIT.sub("", text)
    return found if found.isascii() else "".join(str(unicodedata.decimal(c)) for c in found)


@lru_cache(maxsize=_CACHE)
def phone(raw: str | int, region: str) -> str | None:
    """Rule side: E.164 of a valid number, else None.

    Numbers without a country code are read in `region`; a local-only number (no area code)
    is not one. `00` is read as `+` when the region's own reading is not a valid number, so
    `0044 20 7946 0958` under US is `+442079460958`.
    """
    if type(raw) is str and _NANP_FORM.fullmatch(raw):  # `+12125550100`: most phones
        valid = phonequick.valid_nanp(raw)  # what the steps below decide, in fewer of them
        if valid is not None:
            return raw if valid else None
    text = _text(raw)
    if not _PHONE_SHAPE.fullmatch(text) or len(_digits(text)) < MIN_DIGITS:
        return None
    for attempt in _attempts(text):  # the first reading that is a valid number decides
        plain = phonequick.read(attempt, region)  # plain spellings without phonenumbers.parse
        if plain is None:
            number = _parsed(attempt, region)
            if number is not None and phonenumbers.is_valid_number(number):
                return _e164(number)
        elif phonequick.valid(plain):
            return _plain_e164(plain)
    return None


def parsed_phone(text: str, region: str) -> str | None:
    """`phone` of a cleaned text by phonenumbers alone: the reference and the fallback of the
    quick reader (rules/phonequick.py), for every spelling it leaves undecided."""
    for number in _readings(text, region):
        if phonenumbers.is_valid_number(number):
            return _e164(number)
    return None


def _readings(text: str, region: str) -> Iterator[PhoneNumber]:
    """The ways `text` can be read in `region`: as written, then `00…` as `+…`."""
    for attempt in _attempts(text):
        number = _parsed(attempt, region)
        if number is not None:
            yield number


def _attempts(text: str) -> tuple[str, ...]:
    return (text, "+" + text[2:]) if text.startswith("00") else (text,)


def _parsed(attempt: str, region: str) -> PhoneNumber | None:
    """phonenumbers' reading (Mexico's old mobile `1` dropped), None if it is no number."""
    try:
        return _without_mexican_mobile_one(phonenumbers.parse(attempt, region))
    except phonenumbers.NumberParseException:
        return None


def _without_mexican_mobile_one(number: PhoneNumber) -> PhoneNumber:
    """`+52 1 55 1234 5678` → `+52 55 1234 5678` (Mexico dropped the mobile `1` in 2019)."""
    national = str(number.national_number)
    if number.country_code != _MEXICO or len(national) != 11 or national[0] != "1":
        return number
    shorter = PhoneNumber(country_code=_MEXICO, national_number=int(national[1:]))
    return shorter if phonenumbers.is_valid_number(shorter) else number


def _e164(number: PhoneNumber) -> str | None:
    """E.164 that reads back as itself, with at least MIN_DIGITS digits, else None."""
    normal = phonenumbers.format_number(number, _E164)
    if len(normal) <= MIN_DIGITS:  # `+98 00000` → `+980000`: too short to be a rule
        return None
    if _NANP_FORM.fullmatch(normal):  # `+1` and ten digits, no leading 0 or 1: no national
        return normal  # prefix to strip, so it reads back as itself (tests/test_phones.py)
    return normal if _reads_back(normal) else None


def _plain_e164(number: phonequick.Reading) -> str | None:
    """`_e164` of a plain reading: the same checks, the read-back through the quick reader."""
    normal = number.e164
    if len(normal) <= MIN_DIGITS:
        return None
    if _NANP_FORM.fullmatch(normal):
        return normal
    again = phonequick.read(normal, "")  # `+…`: the region plays no part
    if again is None:
        return normal if _reads_back(normal) else None
    return normal if again.e164 == normal else None


def _reads_back(normal: str) -> bool:
    """phonenumbers reads the E.164 form `normal` back as the same number."""
    again = phonenumbers.parse(normal)
    return bool(phonenumbers.format_number(again, _E164) == normal)


@lru_cache(maxsize=_CACHE)
def phone_candidates(raw: str | int, region: str) -> tuple[str, ...]:
    """Response side: every E.164 form a value under a phone key may stand for.

    A valid number gives exactly its rule form. `512-555-0100 (Main)` and
    `Main: 512-555-0100 Fax: 512-555-0199` give each number in them. Anything else with enough
    digits gives its digits read in `region` and as written, so an odd format is still
    looked up.
    """
    normal = phone(raw, region)
    if normal is not None:
        return (normal,)
    text = _text(raw)
    matches = phonenumbers.PhoneNumberMatcher(text, region, phonenumbers.Leniency.POSSIBLE)
    found = [_e164(_without_mexican_mobile_one(m.number)) for m in matches]
    if not any(found):
        found = list(_by_digits(text, region))
    # a form below the rule minimum (`0010000` read in GB is +10000) can never be a rule
    return tuple(dict.fromkeys(n for n in found if n and len(n) > MIN_DIGITS))


def _by_digits(text: str, region: str) -> tuple[str, ...]:
    """`+<digits>` for an international spelling (`+`, `00`); else the region's reading of the
    digits and `+<digits>` (an int like 442079460958 is often a full number without its +)."""
    digits = _digits(text)
    if len(digits) < MIN_DIGITS:
        return ()
    if text.startswith("+"):
        found = ["+" + digits]
    elif text.startswith("00") and len(digits) - 2 >= MIN_DIGITS:
        found = ["+" + digits[2:]]
    else:
        found = [_in_region(digits, region), "+" + digits]
    return tuple(dict.fromkeys(_mexican_mobile(n) for n in found))


def _mexican_mobile(e164: str) -> str:
    """`+5215512345678` → `+525512345678`; any other form unchanged."""
    if not e164.startswith("+521") or len(e164) != 14:
        return e164
    number = phonenumbers.parse(e164)
    return phonenumbers.format_number(_without_mexican_mobile_one(number), _E164)


def _in_region(digits: str, region: str) -> str:
    """National digits with the region's country code (national prefix dropped when known)."""
    try:
        number = phonenumbers.parse(digits, region)
    except phonenumbers.NumberParseException:
        return f"+{phonenumbers.country_code_for_region(region)}{digits}"
    return phonenumbers.format_number(number, _E164)
