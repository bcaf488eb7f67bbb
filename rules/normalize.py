"""The one normaliser: rules and response values go through the same functions.

Every value is cleaned first (rules/text.py: NFC, no format characters), then put in the
canonical form of its type, or rejected. Pure functions, no I/O: the same input always
compares equal on both sides, and every normal form normalises to itself.

Emails: the local part is any run of up to 64 characters other than white space, `@`, the
RFC 5322 specials `"(),:;<>[]\\` and `/`. **Choice:** `/` is legal in RFC 5322 but in text it
is far more often a path separator (`…/contact/jane@acme.com`), so responses read
`jane/doe@acme.com` as `doe@acme.com`, and a rule `jane/doe@acme.com` is rejected: a rule that
responses could never produce would deny nothing. The pattern pieces below are the only email
pattern in the code base: text scanning and log redaction import them. Every quantifier is
bounded (local ≤ 64, domain ≤ 253), so a scan is linear in the text's length.

Phones live in rules/phones.py (rule side `phone`, response side `phone_candidates`); the
region is always an argument (rules.model.DEFAULT_REGION is the one default, for settings).
Domains: a rule is a bare registrable domain or subdomain (rules/psl.py says which are not).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache, partial
from urllib.parse import SplitResult, unquote, urlsplit

import idna

from rules import psl
from rules.model import RuleType
from rules.phones import phone, phone_candidates
from rules.text import REPLACEMENT_CHARACTER, clean, folded
from rules.urlpath import HOST_DOTS, profile_slug

__all__ = [
    "AROUND_EMAIL", "DOMAIN_CHAR", "DOMAIN_MAX", "EMAIL_IN_TEXT", "LOCAL_CHAR", "LOCAL_MAX",
    "Normalised", "Rejected", "classify", "clean", "detect", "domain", "email", "emails_in_text",
    "for_type", "linkedin", "normalize_all", "parent_domains", "phone", "phone_candidates",
]

LOCAL_CHAR = r"[^\s@\"(),:;<>\[\]\\/]"
"""One character of an email local part (see the module docstring for `/`)."""
DOMAIN_CHAR = r"[^\s@\"'(),:;<>\[\]\\/]"
"""One character of an email's domain as it may appear in text (validated by `email`)."""
LOCAL_MAX = 64  # RFC 5321 4.5.3.1.1
DOMAIN_MAX = 253  # RFC 1035, without the root dot
EMAIL_IN_TEXT = re.compile(rf"{LOCAL_CHAR}{{1,{LOCAL_MAX}}}@{DOMAIN_CHAR}{{1,{DOMAIN_MAX}}}")
"""Email-shaped tokens in free text; bounded quantifiers only, so linear time."""
AROUND_EMAIL = "'`.!?"
"""Quotes and sentence punctuation that may touch an address in text."""
_LOCAL = re.compile(rf"{LOCAL_CHAR}{{1,{LOCAL_MAX}}}")
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DOTTED_HOST = re.compile(rf"(?:{_LABEL}\.)+{_LABEL}")  # two labels or more
_CACHE = 65_536  # responses repeat the same contacts: normalise each raw value once
PLAIN_PROFILE = re.compile(
    r"(?:https?://)?(?:[a-z0-9-]{1,63}\.)?linkedin\.com/in/([a-z0-9][\w-]{0,99})/?", re.I | re.A
)
"""`https://www.linkedin.com/in/Jane-Doe/`: parsed_linkedin gives its slug lowercased (ASCII only:
tests/test_normalize_quick.py proves it), so no URL parsing; any other spelling is parsed."""


@lru_cache(maxsize=_CACHE)
def email(raw: str) -> str | None:
    """Trimmed and lowercased, domain in punycode; literal otherwise (no +tag/dot folding)."""
    value = folded(raw).removeprefix("mailto:")
    local, at, host = value.rpartition("@")
    if not at or len(host) > DOMAIN_MAX + 1 or not _LOCAL.fullmatch(local):
        return None
    if local[0] == "." or local[-1] == ".":
        return None
    normal_host = _host(host.removesuffix("."))
    return f"{local}@{normal_host}" if normal_host else None


@lru_cache(maxsize=_CACHE)
def emails_in_text(text: str) -> tuple[str, ...]:
    """Response side: the normal form of every address in a string (`o'brien@…`, `'jane@…'`)."""
    found: dict[str, None] = {}
    for match in EMAIL_IN_TEXT.finditer(clean(text)):
        raw = match.group()
        for variant in (raw, raw.strip(AROUND_EMAIL)):
            normal = email(variant)
            if normal:
                found[normal] = None
    return tuple(found)


_NOT_A_DOMAIN = "not a valid domain"
_DOMAIN_REASONS = {
    "@": "an email address or a URL with user info, not a domain",
    "path": "a URL with a path, query or fragment, not a domain",
    "suffix": "a public suffix: a rule on it would deny every domain under it",
    "freemail": "a free-mail provider's domain (allow free-mail domains to add it)",
}


def domain(raw: str, *, allow_freemail: bool = False) -> str | None:
    """`acme.com`, `@acme.com.`, `https://www.Acme.com/` → `acme.com`; None for anything else."""
    normal, _ = domain_verdict(raw, allow_freemail)
    return normal


@lru_cache(maxsize=4096)
def domain_verdict(raw: str, allow_freemail: bool) -> tuple[str | None, str]:
    """(normal form, "") of a domain rule, or (None, the reason it is not one)."""
    value = folded(raw).removeprefix("@")
    if "@" in value:
        return None, _DOMAIN_REASONS["@"]
    parts = _split(value)
    if parts is None:
        return None, _NOT_A_DOMAIN
    if parts.path not in ("", "/") or parts.query or parts.fragment or "?" in value:
        return None, _DOMAIN_REASONS["path"]
    host = (parts.hostname or "").removesuffix(".")
    while host.startswith("www."):
        host = host[4:]
    normal = _host(host)
    if normal is None:
        return None, _NOT_A_DOMAIN
    if psl.is_public_suffix(normal):
        return None, _DOMAIN_REASONS["suffix"]
    if psl.is_freemail(normal) and not allow_freemail:
        return None, _DOMAIN_REASONS["freemail"]
    return normal, ""


def _split(value: str) -> SplitResult | None:
    """The URL parts of `value` (`acme.com` read as `//acme.com`), None if it is no URL."""
    try:
        return urlsplit(value if "//" in value else "//" + value)
    except ValueError:
        return None


@lru_cache(maxsize=4096)
def _host(host: str) -> str | None:
    """IDN labels to punycode (IDNA 2008, UTS 46); None unless a valid, dotted host name."""
    if len(host) > DOMAIN_MAX:
        return None
    if not host.isascii():
        try:
            host = idna.encode(host, uts46=True).decode("ascii")
        except idna.IDNAError:
            return None
    if len(host) > DOMAIN_MAX or not _DOTTED_HOST.fullmatch(host):
        return None
    return None if host.rpartition(".")[2].isdigit() else host


@lru_cache(maxsize=4096)
def parent_domains(host: str) -> tuple[str, ...]:
    """`a.b.acme.com` → itself, `b.acme.com`, `acme.com`: a rule on any of them matches."""
    labels = host.split(".")
    return tuple(".".join(labels[i:]) for i in range(len(labels) - 1))


@lru_cache(maxsize=_CACHE)
def linkedin(raw: str) -> str | None:
    """`https://uk.linkedin.com/in/Jane%20Doe/?trk=x` → `linkedin.com/in/jane doe`.

    Every path LinkedIn shows the same profile under (`/m/in/`, `/mwlite/in/`, legacy `/pub/`:
    rules/urlpath.py) gives the same form. The slug is percent-decoded, cleaned and lowercased,
    except the characters that would change the path (`/ ? # %`), which stay encoded so the
    normal form normalises to itself.
    """
    plain = PLAIN_PROFILE.fullmatch(raw)  # the common spelling: no URL parsing needed
    return f"linkedin.com/in/{plain.group(1).lower()}" if plain else parsed_linkedin(raw)


def parsed_linkedin(raw: str) -> str | None:
    """`linkedin` of any spelling, by URL parsing: the reference of the plain spelling above."""
    written = profile_slug(_linkedin_path(raw) or "")
    if written is None:
        return None
    slug = folded(unquote(written))
    if slug in (".", ".."):  # `/in/%2E`: a dot segment to a browser, never a profile
        return None
    for char, code in (("%", "%25"), ("/", "%2F"), ("?", "%3F"), ("#", "%23")):
        slug = slug.replace(char, code)
    return f"linkedin.com/in/{slug}" if slug else None


def _linkedin_path(raw: str) -> str | None:
    """The path of a URL on linkedin.com or one of its subdomains, else None."""
    parts = _split(clean(raw).strip().replace("\\", "/"))  # a browser reads `\` as `/`
    if parts is None:
        return None
    try:
        host = (parts.hostname or "").translate(HOST_DOTS).removesuffix(".")
    except ValueError:
        return None
    if host != "linkedin.com" and not host.endswith(".linkedin.com"):
        return None
    return parts.path


def for_type(
    rule_type: RuleType, region: str, *, allow_freemail: bool = False
) -> Callable[[str], str | None]:
    """The rule-side normaliser of one type, with the region (and free-mail choice) bound."""
    if rule_type is RuleType.PHONE:
        return partial(phone, region=region)
    if rule_type is RuleType.DOMAIN:
        return partial(domain, allow_freemail=allow_freemail)
    if rule_type is RuleType.COMPANY:
        from rules.company import company_key  # builds on this module: imported when used

        return company_key
    return email if rule_type is RuleType.EMAIL else linkedin


Classified = tuple[RuleType, str] | str
"""A value's type and normal form, or the reason it is rejected (never naming the value)."""

_UNRECOGNISED = "not an email, phone, domain or LinkedIn URL"


def classify(
    raw: object, rule_type: RuleType | None, region: str, *, allow_freemail: bool = False
) -> Classified:
    """One rule value → (type, normal form), or why not; `rule_type` None detects the type."""
    if not isinstance(raw, str):
        return "not a string"
    if REPLACEMENT_CHARACTER in raw:
        return "contains U+FFFD: the text was not valid UTF-8"
    if rule_type is None:
        return _detect(raw, region, allow_freemail)
    if rule_type is RuleType.DOMAIN:
        normal, reason = domain_verdict(raw, allow_freemail)
        return (rule_type, normal) if normal else reason
    normal = for_type(rule_type, region)(raw)
    return (rule_type, normal) if normal else f"not a valid {rule_type.value}"


def _detect(raw: str, region: str, allow_freemail: bool) -> Classified:
    text = clean(raw).strip()
    if "@" in text.removeprefix("@"):
        normal = email(raw)
        return (RuleType.EMAIL, normal) if normal else "not a valid email"
    if (_linkedin_path(raw) or "/").strip("/"):
        normal = linkedin(raw)
        return (RuleType.LINKEDIN, normal) if normal else "a LinkedIn page that is no profile"
    normal = phone(raw, region)
    if normal:
        return RuleType.PHONE, normal
    normal, reason = domain_verdict(raw, allow_freemail)
    if normal:
        return RuleType.DOMAIN, normal
    return _UNRECOGNISED if reason == _NOT_A_DOMAIN else reason


def detect(
    raw: str, region: str, *, allow_freemail: bool = False
) -> tuple[RuleType, str] | None:
    """Guess a raw value's type for bulk import: email, LinkedIn, phone, then domain.

    `@acme.com` is Openmart's way of writing a domain; other LinkedIn pages (companies,
    posts) and URLs with a path are rejected, never read as a rule on their host.
    """
    found = classify(raw, None, region, allow_freemail=allow_freemail)
    return None if isinstance(found, str) else found


@dataclass(frozen=True, slots=True)
class Rejected:
    """A value that is no rule of the type: its position, the value, and why."""

    index: int
    value: object
    reason: str


@dataclass(frozen=True, slots=True)
class Normalised:
    """The normal form of each value (None where rejected, aligned with the input)."""

    normal: tuple[str | None, ...]
    rejected: tuple[Rejected, ...]

    @property
    def values(self) -> tuple[str, ...]:
        """The accepted normal forms, duplicates dropped, in order."""
        return tuple(dict.fromkeys(n for n in self.normal if n is not None))


def normalize_all(
    rule_type: RuleType, raw_values: Iterable[object], region: str, *, allow_freemail: bool = False
) -> Normalised:
    """The one list normaliser: every value of a rule, with the rejected ones and reasons."""
    normal: list[str | None] = []
    rejected: list[Rejected] = []
    for i, raw in enumerate(raw_values):
        found = classify(raw, rule_type, region, allow_freemail=allow_freemail)
        if isinstance(found, str):
            normal.append(None)
            rejected.append(Rejected(i, raw, found))
        else:
            normal.append(found[1])
    return Normalised(tuple(normal), tuple(rejected))
