"""Normalising what the finder found: each raw candidate text to the normal forms looked up.

The finder (rules/detect/finder.py) is pure and knows nothing of phone plans or IDNA; this module
is the other half of the scanner's contract. It calls the one normaliser (rules/normalize.py)
and caches per candidate string: responses repeat the same contacts, so a warm cache turns
normalising into a dict lookup.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from functools import lru_cache

from rules import normalize
from rules.model import RuleType

MIN_DIGITS = 7
MAX_DIGITS = 18

# What a finder's kind code means: phone windows and JSON numbers both become phones.
EMAIL, LINKEDIN, PHONE, NUMBER = 0, 1, 2, 3
RULE_TYPE = (RuleType.EMAIL, RuleType.LINKEDIN, RuleType.PHONE, RuleType.PHONE)


@lru_cache(maxsize=131_072)
def normals(kind: int, text: str, region: str) -> tuple[str, ...]:
    """`normal_forms`, cached per string (the reference finder's; the compiled scan keeps
    its own answers: rules/detect/scan.py)."""
    return normal_forms(kind, text, region)


def normal_forms(kind: int, text: str, region: str) -> tuple[str, ...]:
    """The normal forms of one raw candidate of finder kind `kind` (empty: not an identifier)."""
    if kind == EMAIL:
        return _one(normalize.email(text))
    if kind == LINKEDIN:
        return _one(normalize.linkedin(text))
    if kind == PHONE:
        return phone_readings(text, region)
    digits = number_digits(text)
    return phone_readings(digits, region) if digits is not None else ()


def _one(normal: str | None) -> tuple[str, ...]:
    return () if normal is None else (normal,)


# Unicode separators a phone window may hold (rules/detect/phonescan.py `_SEP`), as ASCII.
_FOLD = str.maketrans(
    dict.fromkeys("\u1680\u202f\u205f\u3000" + "".join(map(chr, range(0x2000, 0x200B))), " ")
    | dict.fromkeys("\u2212" + "".join(map(chr, range(0x2010, 0x2016))), "-")
    | {"\u2024": "."}
)


def phone_readings(window: str, region: str) -> tuple[str, ...]:
    """The window read in the region, and read as an international number (`00` included:
    the international prefix of most of the world, even where the region dials `011`).
    A window that starts at a bracket is also read without it: `(0044 20 7946 0958)`.
    Not cached: `normals` and the compiled memos keep its answers, `normalize.phone` each
    reading's."""
    if not window.isascii():  # phonenumbers knows ASCII punctuation, not U+2009
        window = window.translate(_FOLD)
    if window.startswith("+"):  # international as written: its one reading
        normal = normalize.phone(window, region)
        return () if normal is None else (normal,)
    readings = list(dict.fromkeys((window, window.lstrip("( "))))
    digits = "".join(c for c in window if c.isdigit())
    readings.append("+" + digits)
    if digits.startswith("00"):
        readings.append("+" + digits[2:])
    found = (normalize.phone(reading, region) for reading in readings)
    return tuple(dict.fromkeys(normal for normal in found if normal is not None))


def number_digits(token: str) -> str | None:
    """The digits of a JSON number that is a whole number of phone length, else None.

    `15125550100.0`, `1.5125550100e10` and `15125550100` all give `15125550100`: a phone
    written as a float still reaches the lookup. Exponents are bounded (no `1e999999`).
    """
    try:
        value = Decimal(token)
    except InvalidOperation:
        return None
    if not value.is_finite() or value.adjusted() >= MAX_DIGITS:
        return None
    if value != value.to_integral_value():
        return None
    digits = str(abs(int(value)))
    return digits if MIN_DIGITS <= len(digits) <= MAX_DIGITS else None


def clear_caches() -> None:
    """Forget every cached normal form (benchmarks measure cold caches with it)."""
    for cached in (normalize.email, normalize.phone, normalize.linkedin, normals):
        cached.cache_clear()
