"""Company entries: what a deny rule of type `company` is, and the keys it is stored and matched by.

An entry (OpenProspect's blacklist entry; Puffle's blocked company) names a company by any of
`external_id`, `website_url`, `company_name` (at least one), with an optional `city` and
`reason`. It is stored as the values of `RuleType.COMPANY`, one per way it can match a record,
each prefixed with its tier (highest first):

1. `id:<external_id>` — the record's own id field equals it, exactly;
2. `domain:<registrable domain>` — of the entry's website and of the record's website/domain
   or a person's email (`https://shop.acme.co.uk/en` → `acme.co.uk`);
3. `namecity:<name>|<city>` — both in rules/company_name.py's spelling;
4. `name:<name>` — the name alone: stored for every named entry, matched only with
   `--company-name-only-match` (common names over-block; see the README).

Every key normalises to itself (`company_key`), so keys travel on Kafka and through the CLI like
any other rule value, and a replay stores the same members.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal
from urllib.parse import urlsplit

from rules import psl
from rules.catalogue.record import MAX_REASON
from rules.company_name import MAX_NAME, city, company_name
from rules.normalize import domain_verdict, email
from rules.text import clean, folded

Tier = Literal["external_id", "domain", "name_city", "name"]
TIERS: dict[str, Tier] = {
    "id": "external_id", "domain": "domain", "namecity": "name_city", "name": "name",
}
"""Key prefix → tier, highest first (the metrics' `tier` label)."""
MAX_EXTERNAL_ID = 256
_FIELDS = ("external_id", "website_url", "company_name", "city", "reason")
_ALIASES = {"domain": "website_url", "name": "company_name"}  # Puffle's blocked companies
_IGNORED = frozenset({"country", "type"})  # OpenProspect's country is informative only
_NEED_ONE = "a company entry needs at least one of external_id, website_url, company_name"


@dataclass(frozen=True, slots=True)
class CompanyEntry:
    """One company, in normal forms (None: not given)."""

    external_id: str | None = None
    domain: str | None = None  # registrable domain of the website
    name: str | None = None
    city: str | None = None
    reason: str | None = None

    def values(self) -> tuple[str, ...]:
        """The rule values (set members) this entry is stored as, highest tier first."""
        keys = [] if self.external_id is None else [f"id:{self.external_id}"]
        keys += [] if self.domain is None else [f"domain:{self.domain}"]
        if self.name is not None:
            keys += [] if self.city is None else [f"namecity:{self.name}|{self.city}"]
            keys.append(f"name:{self.name}")
        return tuple(keys)

    def label(self) -> str:
        """A readable normal form of the whole entry: its keys joined."""
        return " ".join(self.values())


def parse_company(obj: object) -> CompanyEntry:
    """A company entry from its JSON object; ValueError with a message for the user otherwise."""
    if not isinstance(obj, Mapping):
        raise ValueError("a company entry must be a JSON object")
    fields = _fields(obj)
    entry = CompanyEntry(
        external_id=_checked(fields, "external_id", external_id),
        domain=_website(fields.get("website_url")),
        name=_checked(fields, "company_name", company_name),
        city=_checked(fields, "city", city),
        reason=_reason(fields.get("reason")),
    )
    if entry.external_id is None and entry.domain is None and entry.name is None:
        raise ValueError(_NEED_ONE)
    return entry


def _fields(obj: Mapping[object, object]) -> dict[str, str]:
    """The entry's string fields, aliases resolved; null and "" count as absent."""
    out: dict[str, str] = {}
    for key, value in obj.items():
        if key in _IGNORED or value is None or value == "":
            continue
        name = _ALIASES.get(str(key), str(key))
        if name not in _FIELDS:
            raise ValueError(f"unknown field {str(key)[:40]!r} (fields: {', '.join(_FIELDS)})")
        if isinstance(value, int) and not isinstance(value, bool) and name == "external_id":
            value = str(value)
        if not isinstance(value, str):
            raise ValueError(f"{name} must be a string")
        if out.get(name, value) != value:
            raise ValueError(f"{name} is given twice with different values")
        out[name] = value
    return out


def _checked(
    fields: Mapping[str, str], name: str, normal: Callable[[str], str | None]
) -> str | None:
    raw = fields.get(name)
    if raw is None:
        return None
    found = normal(raw)
    if found is None:
        raise ValueError(f"{name} is not a valid {name.replace('_', ' ')}")
    return found


def _website(raw: str | None) -> str | None:
    if raw is None:
        return None
    found, reason = website_verdict(raw)
    if found is None:
        raise ValueError(f"website_url: {reason}")
    return found


def _reason(raw: str | None) -> str | None:
    if raw is not None and len(raw) > MAX_REASON:
        raise ValueError(f"reason must be at most {MAX_REASON} characters")
    return raw


def external_id(raw: str | int) -> str | None:
    """An id compares exactly (ids are case-sensitive): only cleaned and trimmed."""
    value = clean(str(raw)).strip()
    return value if 0 < len(value) <= MAX_EXTERNAL_ID else None


@lru_cache(maxsize=16_384)
def website_verdict(raw: str) -> tuple[str | None, str]:
    """(registrable domain, "") of a website URL or host, or (None, why not)."""
    value = folded(raw)
    try:
        host = urlsplit(value if "//" in value else "//" + value).hostname or ""
    except ValueError:
        return None, "not a URL or domain"
    normal, reason = domain_verdict(host, True)
    if normal is None:
        return None, reason
    if psl.is_freemail(normal):
        return None, "a free-mail provider's domain names no company"
    registrable = psl.registrable(normal)
    return (registrable, "") if registrable else (None, "not a URL or domain")


def website_domain(raw: str) -> str | None:
    """Response side: the registrable domain a website/domain field names, if any."""
    return website_verdict(raw)[0]


def email_domain(raw: str) -> str | None:
    """Response side: the registrable domain of an email address (free-mail: None)."""
    normal = email(raw)
    return website_domain(normal.rpartition("@")[2]) if normal else None


@lru_cache(maxsize=65_536)
def company_key(raw: str) -> str | None:
    """Rule side: a stored key (`domain:https://www.acme.com/` …) in its normal form, or None."""
    prefix, colon, rest = clean(raw).strip().partition(":")
    if not colon:
        return None
    if prefix == "id":
        found = external_id(rest)
    elif prefix == "domain":
        found = website_domain(rest)
    elif prefix == "name":
        found = company_name(rest)
    elif prefix == "namecity":
        name, bar, place = rest.rpartition("|")
        pair = (company_name(name), city(place)) if bar else (None, None)
        found = f"{pair[0]}|{pair[1]}" if pair[0] and pair[1] else None
    else:
        return None
    return f"{prefix}:{found}" if found else None


def tier_of(key: str) -> Tier:
    """The tier a stored key matches at."""
    return TIERS[key.partition(":")[0]]


__all__ = [
    "MAX_NAME", "TIERS", "CompanyEntry", "Tier", "company_key", "email_domain", "parse_company",
    "tier_of", "website_domain",
]
