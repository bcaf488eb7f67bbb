"""The one normaliser: rules and response values go through the same functions.

Every function returns the canonical form, or None when the value is not of that type.
Pure functions, no I/O: the same input always compares equal on both sides.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import lru_cache
from urllib.parse import unquote, urlsplit

import idna
import phonenumbers

from rules.model import RuleType

_LOCAL = re.compile(r"[^\s@\"(),:;<>\[\]\\]{1,64}")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_TEL_PREFIX = re.compile(r"^tel:", re.IGNORECASE)
# A phone rule is digits and separators, optionally an extension: letters mean it is not one.
_PHONE_SHAPE = re.compile(
    r"\+?[\d\s().\-/]+(?:(?:;ext=|ext\.?|extension|x|#)\s*\d+)?", re.IGNORECASE
)
_MIN_PHONE_DIGITS = 7
_CACHE = 65_536  # responses repeat the same contacts: normalise each raw value once


@lru_cache(maxsize=_CACHE)
def email(raw: str) -> str | None:
    """Trimmed and lowercased, domain in punycode; literal otherwise (no +tag/dot folding)."""
    value = raw.strip().lower()
    if value.startswith("mailto:"):
        value = value[7:]
    local, at, host = value.rpartition("@")
    if not at or not _LOCAL.fullmatch(local) or local[0] == "." or local[-1] == ".":
        return None
    normal_host = _host(host.rstrip("."))
    return f"{local}@{normal_host}" if normal_host else None


@lru_cache(maxsize=_CACHE)
def domain(raw: str) -> str | None:
    """`https://user@www.Acme.com:443/about?x#y` and `@acme.com.` both become `acme.com`."""
    value = raw.strip().lower().removeprefix("@")
    if not value:
        return None
    if "//" not in value:
        value = "//" + value
    try:
        host = (urlsplit(value).hostname or "").rstrip(".")
    except ValueError:
        return None
    while host.startswith("www."):
        host = host[4:]
    return _host(host)


@lru_cache(maxsize=4096)
def _host(host: str) -> str | None:
    """IDN labels to punycode (IDNA 2008, UTS 46); None unless a valid, dotted host name."""
    if not host.isascii():
        try:
            host = idna.encode(host, uts46=True).decode("ascii")
        except idna.IDNAError:
            return None
    labels = host.split(".")
    if len(labels) < 2 or len(host) > 253 or not all(_LABEL.fullmatch(x) for x in labels):
        return None
    return None if labels[-1].isdigit() else host


@lru_cache(maxsize=4096)
def parent_domains(host: str) -> tuple[str, ...]:
    """`a.b.acme.com` → itself, `b.acme.com`, `acme.com`: a rule on any of them matches."""
    labels = host.split(".")
    return tuple(".".join(labels[i:]) for i in range(len(labels) - 1))


@lru_cache(maxsize=_CACHE)
def phone(raw: str | int, region: str = "US") -> str | None:
    """E.164 via phonenumbers; None unless it is a complete, possible number.

    Numbers without a country code take `region`; a local-only number (no area code) is not
    one. `00` is read as `+` only when the region's own reading fails, so
    `0044 20 7946 0958` still matches `+442079460958`.
    """
    text = _TEL_PREFIX.sub("", str(raw).strip())
    if not _PHONE_SHAPE.fullmatch(text) or sum(c.isdigit() for c in text) < _MIN_PHONE_DIGITS:
        return None
    attempts = [text, "+" + text[2:]] if text.startswith("00") else [text]
    for attempt in attempts:
        try:
            number = phonenumbers.parse(attempt, region)
        except phonenumbers.NumberParseException:
            continue
        normal = _e164(number)
        if normal:
            return normal
    return None


def _e164(number: phonenumbers.PhoneNumber) -> str | None:
    """E.164 of a complete, possible number that reads back as itself, else None."""
    if phonenumbers.is_possible_number_with_reason(number) != _POSSIBLE:
        return None
    normal = phonenumbers.format_number(number, _E164)
    if len(normal) <= _MIN_PHONE_DIGITS:  # `+98 00000` → `+980000`: too short to be a rule
        return None
    again = phonenumbers.parse(normal)
    return normal if phonenumbers.format_number(again, _E164) == normal else None


_POSSIBLE = phonenumbers.ValidationResult.IS_POSSIBLE
_E164 = phonenumbers.PhoneNumberFormat.E164


@lru_cache(maxsize=_CACHE)
def phone_candidates(raw: str | int, region: str = "US") -> tuple[str, ...]:
    """Response side: every number in a value under a phone key.

    `512-555-0100 (Main)` and `Main: 512-555-0100 Fax: 512-555-0199` yield each number; a
    value with no recognisable number is compared by its digits (`+<digits>`): over-matching
    is the safe failure of a suppression filter, so an odd format is still looked up.
    """
    normal = phone(raw, region)
    if normal is not None:
        return (normal,)
    text = str(raw)
    matches = phonenumbers.PhoneNumberMatcher(text, region, phonenumbers.Leniency.POSSIBLE)
    found = tuple(dict.fromkeys(n for m in matches if (n := _e164(m.number))))
    if found:
        return found
    digits = "".join(c for c in text if c.isdigit())
    return ("+" + digits,) if len(digits) >= _MIN_PHONE_DIGITS else ()


@lru_cache(maxsize=_CACHE)
def linkedin(raw: str) -> str | None:
    """`https://uk.linkedin.com/in/Jane%20Doe/?trk=x` → `linkedin.com/in/jane doe`.

    The slug is percent-decoded, except the characters that would change the path
    (`/ ? # %`), which stay encoded so the normal form normalises to itself.
    """
    parts = _linkedin_url(raw)
    if parts is None:
        return None
    segments = [s for s in parts.split("/") if s]
    if len(segments) < 2 or segments[0].lower() != "in":
        return None
    slug = unquote(segments[1]).strip().lower()
    for char, code in (("%", "%25"), ("/", "%2F"), ("?", "%3F"), ("#", "%23")):
        slug = slug.replace(char, code)
    return f"linkedin.com/in/{slug}" if slug else None


def _linkedin_url(raw: str) -> str | None:
    """The path of a URL on linkedin.com or one of its subdomains, else None."""
    value = raw.strip()
    if "//" not in value:
        value = "//" + value
    try:
        parts = urlsplit(value)
        host = (parts.hostname or "").rstrip(".")
    except ValueError:
        return None
    if host != "linkedin.com" and not host.endswith(".linkedin.com"):
        return None
    return parts.path


def for_type(rule_type: RuleType, region: str = "US") -> Callable[[str], str | None]:
    """The normaliser of one rule type, with the phone region bound."""
    if rule_type is RuleType.PHONE:
        return lambda raw: phone(raw, region)
    return _BY_TYPE[rule_type]


_BY_TYPE: dict[RuleType, Callable[[str], str | None]] = {
    RuleType.EMAIL: email,
    RuleType.DOMAIN: domain,
    RuleType.LINKEDIN: linkedin,
}


def detect(raw: str, region: str = "US") -> tuple[RuleType, str] | None:
    """Guess a raw value's type for bulk import: email, LinkedIn, phone, then domain.

    `@acme.com` is Openmart's way of writing a domain; other LinkedIn pages (companies,
    posts) are rejected rather than read as a rule on the domain linkedin.com.
    """
    if "@" in raw.strip().removeprefix("@"):
        normal = email(raw)
        return (RuleType.EMAIL, normal) if normal else None
    if (_linkedin_url(raw) or "/").strip("/"):
        normal = linkedin(raw)
        return (RuleType.LINKEDIN, normal) if normal else None
    for rule_type in (RuleType.PHONE, RuleType.DOMAIN):
        normal = for_type(rule_type, region)(raw)
        if normal:
            return rule_type, normal
    return None


def normalize_all(
    rule_type: RuleType, raw_values: Iterable[str], region: str = "US"
) -> tuple[tuple[str, ...], list[str]]:
    """Normal forms of a rule's values (deduplicated, in order) and the raw ones that failed."""
    normal = for_type(rule_type, region)
    good: dict[str, None] = {}
    bad: list[str] = []
    for raw in raw_values:
        value = normal(raw) if isinstance(raw, str) else None
        if value is None:
            bad.append(raw)
        else:
            good[value] = None
    return tuple(good), bad
