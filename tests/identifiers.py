"""Key names real contact APIs use, written out here independently of the product's tables.

Property and parametrised tests draw from these lists, never from `PHONE_KEYS` or
`CONTACT_META_KEYS` in the code under test: a list copied from the product can only confirm it,
an independent one finds what it misses. Sources: the public response docs of Openmart, Apollo,
People Data Labs, Clearbit, Hunter, ZoomInfo, Lusha, Crustdata, RocketReach, HubSpot and
Salesforce objects (field names as those APIs spell them).
"""

from __future__ import annotations

# Keys whose value (string, number, or list of them) is a phone number.
PHONE_KEY_NAMES: tuple[str, ...] = (
    "phone", "phones", "phone_number", "phone_numbers", "phoneNumber", "phoneNumbers",
    "mobile", "mobile_phone", "mobilePhone", "MobilePhone", "mobile_number", "mobile_phones",
    "cell", "cell_phone", "cellphone", "landline", "work_phone", "home_phone", "office_phone",
    "direct_phone", "direct_dial", "directDial", "hq_phone", "company_phone", "business_phones",
    "store_phones", "sanitized_phone_number", "sanitized_number", "raw_number", "personal_phone",
    "fax", "fax_number", "tel", "telephone", "telephone_number", "whatsapp", "whatsapp_number",
    "sms", "msisdn", "phone_no", "phone_num", "contact_number", "contact_phone", "main_phone",
    "other_phone", "primary_phone", "Phone", "PHONE", "Office-Phone-Number",
)

# Keys that describe a contact point next to its value inside a wrapper object
# (`{"email": "a@b.co", "is_verified": true}`): the wrapper is the contact point.
CONTACT_WRAPPER_META: tuple[str, ...] = (
    "type", "label", "primary", "is_primary", "verified", "is_verified", "valid", "is_valid",
    "status", "line_type", "carrier", "country_code", "confidence", "score", "source",
    "sources", "first_seen", "last_seen", "validation", "deliverability", "catch_all",
    "do_not_call", "dnc", "is_mobile", "extension", "email_status", "verified_at",
    "last_verified", "opt_out",
)

# Keys that hold the value itself inside such a wrapper.
CONTACT_WRAPPER_VALUE: tuple[str, ...] = (
    "value", "email", "address", "phone_number", "number", "url", "raw", "sanitized_number",
    "raw_number", "e164",
)

# Typed contact points: a list element that says its own kind instead of its key.
TYPED_PHONE_WRAPPERS: tuple[dict[str, str], ...] = (
    {"type": "phone", "value": "{}"},
    {"type": "mobile", "value": "{}"},
    {"kind": "fax", "value": "{}"},
    {"channel": "whatsapp", "value": "{}"},
    {"label": "work", "number": "{}"},
)
