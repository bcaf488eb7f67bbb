"""The quick reading of plain phone spellings: what phonenumbers gives, without its general parser.

Most phones a response holds are spelled plainly: `+15125550100`, `+44 20 7946 0958`,
`(512) 555-0100`. phonenumbers.parse reads every spelling there is (letters, extensions,
RFC 3966, IDD prefixes, national prefixes with carrier codes), ~35 µs a number, and
is_valid_number tests each number type through a dozen function calls. For the plain shapes
the answer is simpler and this module computes it directly, from phonenumbers' own metadata:

- only ASCII digits and `space ( ) . -`, a `+` only first, never Mexico (`+52 1…`); leading
  zeros of the national number are kept as phonenumbers keeps them (`italian_leading_zero`);
- the region's international prefix, its own country code and its national prefix must not
  start the digits: when one could, the reading is left to phonenumbers (`None`: undecided).

So a decided reading is, by construction, the number phonenumbers.parse returns, and `valid`
is phonenumbers.is_valid_number on it; tests/test_phonequick.py compares both over generated
numbers of every region. rules/phones.py uses this first and phonenumbers as the fallback.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneMetadata
from phonenumbers.phonemetadata import PhoneNumberDesc

_PLAIN = re.compile(r"\+?[0-9 ().\-]*[0-9]")
_SEPARATORS = str.maketrans("", "", " ().-")
_NON_GEO = "001"  # phonenumbers' region code for non-geographic numbers (+800, +882, ...)
_MAX_NATIONAL = 17  # phonenumbers' longest national significant number
_MAX_INPUT = 250  # phonenumbers.parse refuses longer strings
_MEXICO = 52  # phonenumbers.parse keeps `+52 1…`; rules/phones.py rewrites it: not plain
# Tables of phonenumbers' metadata, filled as regions are met and then constant (like the
# metadata phonenumbers loads per region): keyed by metadata, never by a value a request brings.
_CODES = {str(code): code for code in COUNTRY_CODE_TO_REGION_CODE}
_METADATA: dict[tuple[int, str], PhoneMetadata | None] = {}
_COMPILED: dict[str, re.Pattern[str]] = {}
_VALIDATORS: dict[tuple[int, str, int], tuple[re.Pattern[str], ...] | None] = {}


@dataclass(frozen=True, slots=True)
class Reading:
    """A number as phonenumbers.parse reads it: country code and national significant digits."""

    country_code: int
    national: str

    @property
    def e164(self) -> str:
        return f"+{self.country_code}{self.national}"


def read(text: str, region: str) -> Reading | None:
    """phonenumbers.parse(text, region) for a plain spelling; None when it is not plain."""
    if len(text) > _MAX_INPUT or not _PLAIN.fullmatch(text):
        return None
    digits = text.translate(_SEPARATORS)
    if text[0] == "+":
        return _international(digits[1:])
    return _national(digits, region)


def _international(digits: str) -> Reading | None:
    """`+<country code><national>`: the shortest known code, as phonenumbers extracts it."""
    if len(digits) <= 2 or digits[0] == "0":
        return None
    for size in (1, 2, 3):
        code = _CODES.get(digits[:size])
        if code is not None:
            main = COUNTRY_CODE_TO_REGION_CODE[code][0]  # region_code_for_country_code
            return _checked(code, digits[size:], _metadata(code, main))
    return None


def _national(digits: str, region: str) -> Reading | None:
    """National digits read in `region`, unless an IDD or the country code may start them."""
    metadata = _metadata(0, region)
    code = None if metadata is None else metadata.country_code
    if metadata is None or code is None or digits.startswith(str(code)):
        return None
    if _starts(metadata.international_prefix, digits):
        return None
    return _checked(code, digits, metadata)


def _checked(code: int, national: str, metadata: PhoneMetadata | None) -> Reading | None:
    """The reading, unless phonenumbers would strip a national prefix or reject the length."""
    if metadata is None or code == _MEXICO or not 2 <= len(national) <= _MAX_NATIONAL:
        return None
    if _starts(metadata.national_prefix_for_parsing, national):
        return None
    return Reading(code, national)


def _starts(pattern: str | None, digits: str) -> bool:
    """Whether a metadata pattern matches at the start of `digits` (even the empty string)."""
    if not pattern:
        return False
    return _compiled(pattern).match(digits) is not None


def valid_nanp(text: str) -> bool | None:
    """`valid(read(text, region))` for `text` a `+1` and ten digits, the first not 0 or 1 (the
    usual phone of a response), in two regex matches: `read` decides it in any region (a `+`,
    code 1, no national prefix to strip) and `valid` tries the US patterns first. True when
    they match; else `valid` itself; None if this metadata lets `read` leave it undecided."""
    plan = _nanp_plan()
    if not plan:
        return None
    national = text[2:]
    general, types = plan
    if general.fullmatch(national) is not None and types.fullmatch(national) is not None:
        return True
    return valid(Reading(1, national))


@lru_cache(maxsize=1)
def _nanp_plan() -> tuple[re.Pattern[str], ...]:
    """The US patterns of ten national digits, checked once against what `valid_nanp` assumes
    of the metadata (empty: it does not hold, every number goes the general way)."""
    metadata = _metadata(0, "US")
    prefix = None if metadata is None else metadata.national_prefix_for_parsing
    holds = (
        metadata is not None and metadata.country_code == 1 and _CODES.get("1") == 1
        and COUNTRY_CODE_TO_REGION_CODE[1][0] == "US" and metadata.leading_digits is None
        and (not prefix or (prefix.isdigit() and prefix[0] in "01"))  # never a [2-9] start
    )
    return (_patterns(1, "US", 10) or ()) if holds else ()


def valid(number: Reading) -> bool:
    """phonenumbers.is_valid_number: the number's region by the country code's region list
    (leading digits, else the first region it is valid in), then its patterns there."""
    code = number.country_code
    regions = COUNTRY_CODE_TO_REGION_CODE.get(code, ())
    if len(regions) == 1:
        return _valid_in(number, code, regions[0])
    for region in regions:
        metadata = _metadata(code, region)
        if metadata is None:
            continue
        if metadata.leading_digits is not None:
            if _compiled(metadata.leading_digits).match(number.national):
                return _valid_in(number, code, region)
        elif _valid_in(number, code, region):
            return True
    return False


def _valid_in(number: Reading, code: int, region: str) -> bool:
    """phonenumbers' number type is not UNKNOWN: the general pattern and one type's pattern."""
    national = number.national
    general = _patterns(code, region, len(national))
    return general is not None and all(p.fullmatch(national) for p in general)


def _patterns(code: int, region: str, length: int) -> tuple[re.Pattern[str], ...] | None:
    """What a national number of `length` digits must match to be valid in the region: its
    general pattern and any type's (one alternation); None if no pattern takes the length."""
    key = (code, region, length)
    if key not in _VALIDATORS:
        _VALIDATORS[key] = _validator(code, region, length)
    return _VALIDATORS[key]


def _validator(code: int, region: str, length: int) -> tuple[re.Pattern[str], ...] | None:
    metadata = _metadata(code, region)
    if metadata is None or metadata.country_code != code:
        return None
    general = _pattern(metadata.general_desc, length)
    types = [p for p in (_pattern(d, length) for d in _type_descs(metadata)) if p]
    if general is None or not types:
        return None
    return _compiled(general), _compiled("|".join(f"(?:{p})" for p in types))


def _type_descs(metadata: PhoneMetadata) -> tuple[PhoneNumberDesc | None, ...]:
    """The descriptions phonenumbers' _number_type_helper tries (mobile only when it differs)."""
    mobile = () if metadata.same_mobile_and_fixed_line_pattern else (metadata.mobile,)
    return (
        metadata.premium_rate, metadata.toll_free, metadata.shared_cost, metadata.voip,
        metadata.personal_number, metadata.pager, metadata.uan, metadata.voicemail,
        metadata.fixed_line, *mobile,
    )


def _pattern(desc: PhoneNumberDesc | None, length: int) -> str | None:
    """phonenumbers' _is_number_matching_desc: the pattern, if the desc has one and its
    possible lengths (when it lists any) include `length`."""
    if desc is None or not desc.national_number_pattern:
        return None
    if desc.possible_length and length not in desc.possible_length:
        return None
    return str(desc.national_number_pattern)


def _metadata(code: int, region: str) -> PhoneMetadata | None:
    """A region's metadata (a non-geographic code's own for `001`), None if there is none."""
    key = (code, region) if region == _NON_GEO else (0, region)
    if key not in _METADATA:
        if region == _NON_GEO:
            _METADATA[key] = PhoneMetadata.metadata_for_nongeo_region(code, None)
        else:
            _METADATA[key] = PhoneMetadata.metadata_for_region(region, None)
    return _METADATA[key]


def _compiled(pattern: str) -> re.Pattern[str]:
    """Metadata patterns compiled once (phonenumbers re-compiles through re's cache per call)."""
    found = _COMPILED.get(pattern)
    if found is None:
        found = _COMPILED[pattern] = re.compile(pattern)
    return found
