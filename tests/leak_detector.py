"""An independent judge of leaks: does a text still hold one of these denied identifiers?

Deliberately NOT the product's code (no import from rules/ or proxy/): slow, simple and
obviously correct. The text is read in several ways a client might read it (as written,
case-folded, NFKC, HTML entities decoded, percent-decoded, JSON-unescaped, invisible
characters removed, and all of them together); each denied identifier is searched in every
reading, spelled in every way listed below, as a whole token:

- email: the address, its domain also in Unicode (IDNA); not preceded by a letter, digit or
  `._+-` (that would be another, longer address) nor followed by a letter, digit or `-`.
- phone: digits only, inside a run of digit groups joined by 1-3 of ` .-/()` (NBSP too),
  starting and ending on group edges; the international digits (`15125550100`, also after
  `00`/`011`) and, when the number belongs to `region`, the national digits.
- LinkedIn: `linkedin.com[:port]/in/<slug>` ending where the slug ends.
Phones written as JSON numbers in exponent form (`1.5125550100e10`) are expanded first.
"""

from __future__ import annotations

import html
import json
import re
import unicodedata
from collections.abc import Callable, Iterable
from decimal import Decimal, InvalidOperation
from urllib.parse import unquote

import phonenumbers

INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0]"
)
_JSON_ESCAPE = re.compile(r"\\u[0-9a-fA-F]{4}|\\[\"\\/bfnrt]")
_EXPONENT = re.compile(r"-?\d+(?:\.\d+)?[eE][+-]?\d{1,3}")
_PHONE_RUN = re.compile(r"\d+(?:[ \u00a0.\-/()]{1,3}\d+)*")


def _json_unescape(text: str) -> str:
    return _JSON_ESCAPE.sub(lambda m: json.loads(f'"{m.group()}"'), text)


def _nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def _no_invisible(text: str) -> str:
    return INVISIBLE.sub("", text)


def _unquote(text: str) -> str:
    return unquote(text, errors="replace")


_DECODERS: tuple[Callable[[str], str], ...] = (
    _no_invisible,
    _json_unescape,
    html.unescape,
    _unquote,
    _nfkc,
)


def readings(text: str) -> list[str]:
    """The text as written, through each decoder alone, and through all of them in turn."""
    out = [text] + [decode(text) for decode in _DECODERS]
    combined = text
    for decode in _DECODERS:
        combined = decode(combined)
    out.append(combined)
    return list(dict.fromkeys(r.casefold() for r in out))


def _strong_local(char: str) -> bool:
    return char.isalnum() or char in "._+-"


def email_leaks(text: str, address: str) -> bool:
    """Whether `address` (already lowercase) appears as a whole address in any reading."""
    local, _, domain = address.rpartition("@")
    spellings = {address.casefold(), f"{local}@{_unicode_domain(domain)}".casefold()}
    for reading in readings(text):
        for spelling in spellings:
            for at in _occurrences(reading, spelling):
                before = reading[at - 1] if at else " "
                end = at + len(spelling)
                after = reading[end] if end < len(reading) else " "
                if not _strong_local(before) and not (after.isalnum() or after == "-"):
                    return True
    return False


def _unicode_domain(domain: str) -> str:
    try:
        return domain.encode("ascii").decode("idna")
    except UnicodeError:
        return domain


def _occurrences(text: str, needle: str) -> Iterable[int]:
    at = text.find(needle)
    while at != -1:
        yield at
        at = text.find(needle, at + 1)


def phone_leaks(text: str, e164: str, region: str) -> bool:
    """Whether the number's digits appear, on group edges, in a digit run of any reading."""
    wanted = _phone_spellings(e164, region)
    for reading in readings(text):
        reading = _EXPONENT.sub(_expand_number, reading)
        reading = "".join(_ascii_digit(c) for c in reading)
        for run in _PHONE_RUN.finditer(reading):
            groups = re.findall(r"\d+", run.group())
            for i in range(len(groups)):
                for j in range(i + 1, len(groups) + 1):
                    if "".join(groups[i:j]) in wanted:
                        return True
    return False


def _phone_spellings(e164: str, region: str) -> set[str]:
    international = e164.lstrip("+")
    spellings = {international, "00" + international, "011" + international}
    number = phonenumbers.parse(e164)
    if phonenumbers.region_code_for_number(number) == region or (
        region in phonenumbers.region_codes_for_country_code(number.country_code or 0)
    ):
        national = str(number.national_number)
        metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
        trunk = (metadata.national_prefix if metadata else None) or ""
        spellings |= {national, trunk + national}
    return spellings


def _expand_number(match: re.Match[str]) -> str:
    try:
        value = Decimal(match.group())
    except InvalidOperation:
        return match.group()
    if value.adjusted() > 20 or value != value.to_integral_value():
        return match.group()
    return str(abs(int(value)))


def _ascii_digit(char: str) -> str:
    value = unicodedata.decimal(char, None)
    return str(value) if value is not None else char


def linkedin_leaks(text: str, profile: str) -> bool:
    """Whether `linkedin.com/in/<slug>` appears with that exact slug in any reading, as a
    browser reads the URL: `linkedin。com`, `linkedin.com.`, `/./in/`, `/comm/in/` and the
    mobile `/m/in/`, `/mwlite/in/` and `/public-profile/in/` too, `\\` for any `/`."""
    slug = profile.removeprefix("linkedin.com/in/")
    pattern = re.compile(
        r"(?<![\w-])(?:[\w-]+\.)*linkedin[.\u3002]com\.?(?::\d+)?[/\\]"
        r"(?:(?:\.|comm|m|mwlite|public-profile)[/\\])*in[/\\]"
        + re.escape(slug.casefold())
        + r"(?![\w%-])"
    )
    return any(pattern.search(reading) for reading in readings(text))


def leaks(
    text: str,
    *,
    emails: Iterable[str] = (),
    phones: Iterable[str] = (),
    linkedins: Iterable[str] = (),
    region: str = "US",
) -> list[str]:
    """Every given identifier that still appears in `text` (empty: no leak)."""
    found = [e for e in emails if email_leaks(text, e)]
    found += [p for p in phones if phone_leaks(text, p, region)]
    found += [li for li in linkedins if linkedin_leaks(text, li)]
    return found
