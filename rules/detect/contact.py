"""What a key or member says about a contact point: phone keys, describing members, types.

Rules, not lists to keep growing: a key is read as a phone key by its words (`landline`,
`msisdn`, `whatsapp_number`, `phone_no` — any key with a phone word, or ending in a number
word), and a member *describes* a contact point by its value (a boolean, null or small
number: `"is_verified": true`, `"extension": 12`) or its key's shape (`is_*`, `*_at`,
`*_status`, `*_type`…). The named lists only add what the rules cannot see.
"""

from __future__ import annotations

import re
from functools import lru_cache

# The product's own phone key list (compared without case, `_` or `-`).
PHONE_KEYS = frozenset(
    {
        "phone", "phones", "phonenumber", "phonenumbers", "mobile", "mobiles", "mobilenumber",
        "cell", "cellphone", "tel", "telephone", "telephones", "fax", "directdial", "sms",
        "whatsapp", "contactnumber", "businessphones", "storephones",
    }
)
# Any key holding one of these words is a phone key (`home_landline`, `msisdn`, `fax_line`).
PHONE_WORDS = frozenset(
    {
        "phone", "phones", "telephone", "telephones", "tel", "mobile", "mobiles", "cell",
        "cellphone", "landline", "landlines", "msisdn", "fax", "whatsapp", "sms", "dial",
        "e164", "viber", "signal", "telegram",
    }
)
# A key whose last word counts (`raw_number`, `phone_no`, `sanitized_number`): over-matching
# an order number only costs a place in the lookup.
NUMBER_WORDS = frozenset({"number", "numbers", "num", "no", "nr", "nbr", "digits"})
# Words of a key whose list holds one person's own identifiers (`emails`, `linkedin_urls`),
# besides the phone keys: `--policy drop` reads its elements as her entries, not records.
IDENTIFIER_WORDS = frozenset({"email", "emails", "mail", "mails", "linkedin", "linkedins"})
# Keys that only describe a contact point: an object made of one denied value and describing
# members (`{"email": ..., "verified": true}`) is the contact point itself, removed as a whole.
CONTACT_META_KEYS = frozenset(
    {
        "verified", "valid", "line_type", "type", "label", "status", "primary", "is_primary",
        "confidence", "score", "source", "sources", "carrier", "country_code", "kind",
        "first_seen", "last_seen", "validation", "deliverability", "catch_all", "domain",
    }
)
_META_FIRST = frozenset({"is", "has", "can", "do", "does", "opt", "dnc"})
_META_LAST = frozenset(
    {
        "at", "date", "time", "status", "type", "kind", "label", "channel", "verified",
        "valid", "score", "confidence", "source", "sources", "seen", "primary", "extension",
        "ext", "carrier", "flag", "dnc", "rank", "priority",
    }
)
# Keys that say the kind of a typed contact point (`{"type": "phone", "value": …}`).
TYPE_KEYS = frozenset({"type", "kind", "channel", "label", "medium", "category"})
_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[0-9]+")
_SMALL = 10**6  # a number with fewer than 7 integer digits is no phone: it may describe


@lru_cache(maxsize=4096)
def words(key: str) -> tuple[str, ...]:
    """`Office-Phone-Number` → (office, phone, number); `msisdn` → (msisdn,)."""
    return tuple(w.lower() for w in _WORD.findall(key))


@lru_cache(maxsize=4096)
def is_phone_key(key: str) -> bool:
    """`phones`, `landline`, `mobilePhone`, `whatsapp_number`, `phone_no`; not `headphones`."""
    parts = words(key)
    if not parts:
        return False
    return (
        "".join(parts) in PHONE_KEYS
        or any(w in PHONE_WORDS for w in parts)
        or (len(parts) > 1 and parts[-1] in NUMBER_WORDS)
        or parts == ("number",)
    )


@lru_cache(maxsize=4096)
def is_entries_key(key: str) -> bool:
    """Does a list under `key` hold its holder's own identifiers (`emails`, `phone_numbers`,
    `linkedin_urls`)? Its elements are the holder's entries (`{"email": x, "domain": d}`), not
    records of their own: `--policy drop` removes the holder (rules/detect/splice.py)."""
    return is_phone_key(key) or any(w in IDENTIFIER_WORDS for w in words(key))


@lru_cache(maxsize=4096)
def is_meta_key(key: str) -> bool:
    """A key whose member describes a contact point: the list, or `is_*`, `*_at`, `*_status`."""
    if key in CONTACT_META_KEYS:
        return True
    parts = words(key)
    return bool(parts) and (parts[0] in _META_FIRST or parts[-1] in _META_LAST)


def describes(key: str, value: object) -> bool:
    """Does this member only describe the contact point it is in?

    By value: a boolean, null or small number (`"is_verified": true`, `"extension": 12`);
    by key: `is_meta_key`. A container, a string under another key or a phone-length number
    (it may be a phone) is content, never a description.
    """
    kind = type(value)
    if value is None or kind is bool:
        return True
    if isinstance(value, int | float):
        return abs(value) < _SMALL
    return kind is not dict and kind is not list and is_meta_key(key)


def typed_phone(node: dict[str, object]) -> bool:
    """`{"type": "phone", "value": …}`, `{"channel": "whatsapp", …}`: a typed phone point."""
    return any(
        type(value) is str and is_phone_type(value)
        for key, value in node.items() if key in TYPE_KEYS
    )


@lru_cache(maxsize=4096)
def is_phone_type(value: str) -> bool:
    """The value of a type key that names a phone channel (`phone`, `Mobile`, `whatsapp`)."""
    parts = words(value)
    return bool(parts) and any(w in PHONE_WORDS for w in parts)
