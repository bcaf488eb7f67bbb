"""Review 7: the cold-path fast paths (8713aee..cb9b3ff) against the code they replaced.

Each fast path of the one normaliser is asked, adversarially, whether it answers as its
reference (the pre-change steps, still in the tree) and whether the rule side and the response
side still meet: a rule written one way must be read in a response written another way.

* phones.phone's `+1` and ten digits (phonequick.valid_nanp): every area code against
  phonenumbers and against phone's own general steps (the fast path switched off);
  spellings the fast path must not take (full-width digits, `tel:`, white space, extensions).
* detect/match `_plain` and `_SEVEN_DIGITS`: Unicode lookalikes around plain addresses and
  profile URLs (Kelvin sign, long s, dotless i, full-width, format and control characters,
  surrogates), every Unicode decimal digit.
* detect/company `_normal_keys`: records sharing normal fields but not raw ones.
* company_name `_folded`: an ASCII name (lowercased only) meets its non-ASCII spellings
  (cleanco's folding).
* psl.is_public_suffix through `registrable`: suffixes, wildcard and exception rules.
"""

from __future__ import annotations

import random
import re
import sys
import unicodedata
from collections.abc import Iterator

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from publicsuffixlist import PublicSuffixList

from rules import company_name, normalize, phonequick, phones, psl
from rules.detect import company
from rules.detect import match as flt
from rules.model import RuleType
from tests.budgets import examples

# --- phones: `+1` and ten digits --------------------------------------------------------------

# Exchanges (digits 4-6) the US patterns single out: N11 service codes, 555, 950/958/959/976,
# a 0 or 1 first (no exchange), and a spread of ordinary ones.
_EXCHANGES = (
    "000", "099", "100", "199", "200", "211", "311", "411", "511", "555", "611", "711", "811",
    "911", "950", "958", "959", "976", "234", "456", "521", "729", "870", "989",
)
_LINES = ("0100", "0199", "4567")


def _general_phone(raw: str, region: str, monkeypatch: pytest.MonkeyPatch) -> str | None:
    """`phones.phone` as before 8713aee: the fast path off, phone's general steps only."""
    with monkeypatch.context() as patched:
        patched.setattr(phonequick, "valid_nanp", lambda text: None)
        return phones.phone.__wrapped__(raw, region)


def _nanp_numbers() -> Iterator[str]:
    """Every area code with the exchanges above; under the `deep` profile with every exchange
    (800,000 numbers, about a minute: a phonenumbers upgrade is checked whole)."""
    exchanges = [f"{e:03d}" for e in range(1000)] if examples(24) >= 1000 else _EXCHANGES
    for area in range(200, 1000):
        for exchange in exchanges:
            yield f"+1{area}{exchange}{random.Random(area).choice(_LINES)}"


def test_every_area_code_reads_as_phonenumbers_and_as_the_general_steps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """US, Canadian, Caribbean, toll-free, premium, personal, N11 and unassigned area codes:
    the fast path's answer is phonenumbers' (`parsed_phone`) and phone's general steps'."""
    wrong = []
    for raw in _nanp_numbers():
        fast = phones.phone.__wrapped__(raw, "US")
        if fast != phones.parsed_phone(raw, "US") or fast != _general_phone(raw, "US", monkeypatch):
            wrong.append((raw, fast))
    assert wrong == []


@pytest.mark.parametrize("region", ["US", "CA", "JM", "GB", "DE", "IN", "ZZ", ""])
def test_the_region_plays_no_part_in_a_plus_one_number(
    region: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`+1…` is international: any region (an unknown one too) gives the general steps' answer."""
    for raw in ("+12125550100", "+14165550100", "+12684601234", "+18005550100", "+19005550100",
                "+15005550100", "+12115550100", "+19115550100", "+12129110100", "+13405550100"):
        assert phones.phone.__wrapped__(raw, region) == _general_phone(raw, region, monkeypatch)


_NOT_FAST = [  # spellings of +1 212 555 0100 (and near misses) the fast path must not take
    "+１２１２５５５０１００", "+١٢١٢٥٥٥٠١٠٠", "+۱۲۱۲۵۵۵۰۱۰۰", "+1212555010٠",
    "tel:+12125550100", "TEL:+12125550100", " +12125550100", "+12125550100 ", "+12125550100\n",
    "\u200b+12125550100", "+1212\u00ad5550100", "+1 212 555 0100", "+1(212)555-0100",
    "+12125550100;ext=5", "+12125550100x5", "+12125550100#5", "＋12125550100",
    "+1212555010", "+121255501000", "+10125550100", "+11125550100", "12125550100",
    "0012125550100", "01112125550100", "+1+2125550100", "+12125550100\x00",
]


@pytest.mark.parametrize("raw", _NOT_FAST)
@pytest.mark.parametrize("region", ["US", "GB"])
def test_other_spellings_read_as_the_general_steps(
    raw: str, region: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert phones.phone.__wrapped__(raw, region) == _general_phone(raw, region, monkeypatch)


@pytest.mark.parametrize("raw", _NOT_FAST)
def test_a_response_spelling_meets_the_rule_of_its_number(raw: str) -> None:
    """The rule `+12125550100` (fast path) is found under a phone key however the response
    spells it (full-width or Arabic-Indic digits, `tel:`, an extension), as long as its digits
    are that number's."""
    rule = normalize.phone("+12125550100", "US")
    assert rule == "+12125550100"
    number = re.split(r"[;x#]", raw)[0]  # an extension is no part of the number
    digits = "".join(str(unicodedata.decimal(c)) for c in number if c.isdecimal())
    if digits.removeprefix("011").removeprefix("00") != "12125550100" or "+1+" in raw:
        return  # another number (or none): nothing to meet
    assert rule in normalize.phone_candidates(raw, "US")


# --- detect/match: `_plain` and `_SEVEN_DIGITS` -----------------------------------------------

_LOOKALIKES = [
    "\u212a", "\u017f", "\u0131", "\u0130", "\u00df", "\uff41", "\uff20", "\ufe6b", "\u0661",
    "\uff11", "\u00a0", "\u200b", "\u00ad", "\u2060", "\ufeff", "\u0301", "\n", "\t", "\r",
    "\x00", "\x85", "\x7f", "\ud800", "\udfff", "'", "`", ".", "!", "?", "/", "%40", "&#64;",
    "\\u0040", "\u3002", "\uff0e", "mailto:", "tel:", " ",
]
_PLAINS = [
    "jane.doe@acme.com", "Jane_Doe+x@Acme-Co.COM", "k@acme.com", "s@acme.com", "i@acme.com",
    "https://www.linkedin.com/in/jane-doe", "linkedin.com/in/Kate/", "http://uk.linkedin.com/in/s_i",
]


def _spliced(value: str, piece: str, at: int) -> str:
    where = at % (len(value) + 1)
    return value[:where] + piece + value[where:]


@settings(max_examples=examples(600), deadline=None)
@given(
    st.sampled_from(_PLAINS),
    st.lists(st.tuples(st.sampled_from(_LOOKALIKES), st.integers(0, 80)), max_size=3),
    st.sampled_from(["US", "GB"]),
    st.booleans(),
)
def test_lookalikes_around_a_plain_value_read_as_the_general_reading(
    plain: str, pieces: list[tuple[str, int]], region: str, replace: bool
) -> None:
    """A plain address or profile with Unicode lookalikes, control characters, surrogates,
    encodings or quotes spliced in (or put in place of a character): `read_identifiers` answers
    as `_read_text`, the reading before `_plain`."""
    value = plain
    for piece, at in pieces:
        if replace and value:
            where = at % len(value)
            value = value[:where] + piece + value[where + 1:]
        else:
            value = _spliced(value, piece, at)
    seven = flt._SEVEN_DIGITS(value) is not None
    assert flt.read_identifiers(value, False, region) == flt._read_text(value, False, region, seven)


@pytest.mark.parametrize("value", [
    "\u212aate@acme.com", "kate@\u212acme.com", "\u017fam@acme.com", "\u0131nfo@acme.com",
    "jane@ac\u017fme.com", "jane@acme.\u212aom", "ja\u00dfe@acme.com", "jane@acme.com\u200b",
    "\ufeffjane@acme.com", "jane@ａｃｍｅ.com", "jane\uff20acme.com", "https://www.linkedin.com/in/\u212aate",
    "https://www.lin\u212aedin.com/in/kate", "https://www.linkedin.com/in/\u017fam",
])
def test_non_ascii_spellings_take_the_general_reading(value: str) -> None:
    """`_PLAIN_EMAIL` and PLAIN_PROFILE are ASCII-only (re.ASCII with re.IGNORECASE: the
    Kelvin sign is no `k`, long s no `s`): a non-ASCII value never takes the plain steps."""
    assert flt._PLAIN_EMAIL.fullmatch(value) is None
    assert normalize.PLAIN_PROFILE.fullmatch(value) is None
    assert flt.read_identifiers(value, False, "US") == flt._read_text(value, False, "US", False)


def test_every_unicode_decimal_digit_counts_as_before() -> None:
    """`_SEVEN_DIGITS` (one match from the start) and the search it replaced agree on seven and
    six of every Nd digit, alone and between other characters (No digits like `²` are none)."""
    old = re.compile(r"\d(?:\D*+\d){6}").search
    digits = [chr(c) for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) == "Nd"]
    for digit in digits:
        for text in (digit * 7, digit * 6, f"x{digit}²" * 7, ("²" + digit) * 6 + "²³⁴"):
            assert (flt._SEVEN_DIGITS(text) is not None) == (old(text) is not None), repr(text)
            assert (old(text) is not None) == (sum(c.isdecimal() for c in text) >= 7)


@pytest.mark.parametrize(("rule", "response"), [
    ("kate@acme.com", "KATE@ACME.COM"),
    ("kate@acme.com", "\u212aATE@acme.com"),  # Kelvin sign: lower() is `k`
    ("jane@acme.com", "jane@ＡＣＭＥ.com"),  # full-width host: IDNA maps it
    ("jane@acme.com", "jane@acme.com\u200b"),  # a format character: cleaned
    ("jane@acme.com", "\u00adjane@acme.com"),
    ("linkedin.com/in/kate", "https://www.linkedin.com/in/KATE/"),
    ("linkedin.com/in/kate", "https://www.linkedin.com/in/\u212aate"),
])
def test_a_rule_meets_its_response_spelling(rule: str, response: str) -> None:
    """The rule's normal form (plain steps, when its spelling is plain) is what the response
    side reads from another spelling of it (general steps): the response value is denied."""
    kind = RuleType.LINKEDIN if "linkedin" in rule else RuleType.EMAIL
    normal = normalize.linkedin(rule) if kind is RuleType.LINKEDIN else normalize.email(rule)
    assert normal is not None
    denied = flt.collect({"contact": response}, "US").denied({kind: {normal}})
    assert denied == {response: kind}


# --- detect/company: `_normal_keys` -----------------------------------------------------------

_NAMES = ["Acme", "ACME Inc.", "ＡＣＭＥ", "Ac\u200bme", "Acme" + " ." * 1500, "A" * 2001, "Аcme"]
_CITIES = ["Berlin", "BERLIN", "Ｂerlin", "Berlin" + "\u00ad" * 3000, "Köln", "Koeln"]


def _keys_as_before(fields: company.RecordFields) -> company.Keys:
    """`_read_keys` as of 64331fa: field by field, no cache of normal fields."""
    found, unread = company._Fields(), False
    for kind, raw in fields:
        value = company._normal(kind, raw)
        found.add(company._STORED.get(kind, kind), value)
        unread = unread or (value is None and company._unreadable(kind, raw))
    keys, paired = found.keys()
    return keys, paired and not unread


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(
    st.lists(st.one_of(
        st.sampled_from(_NAMES).map(lambda v: ("name", v)),
        st.sampled_from(_CITIES).map(lambda v: ("city", v)),
        st.sampled_from(["acme.com", "ACME.com", "xn--acm-bma.com", "acmé.com"]).map(
            lambda v: ("domain", v)),
        st.sampled_from(["a@acme.com", "b@ACME.COM", "c@shop.acme.com"]).map(
            lambda v: ("email", v)),
    ), max_size=6).map(tuple), min_size=2, max_size=6,
))
def test_records_sharing_normal_fields_keep_their_own_completeness(
    records: list[company.RecordFields],
) -> None:
    """Records whose raw fields differ (lookalikes, an unreadable name beside a readable one)
    but whose normal fields are equal share `_normal_keys`' entry: each still gets the
    reference's keys and its own completeness, in any order."""
    for fields in [*records, *reversed(records)]:
        assert company._read_keys(fields) == _keys_as_before(fields)


def test_an_unreadable_name_is_not_hidden_by_a_warm_entry() -> None:
    """A complete record warms the entry of its normal fields; a record with the same normal
    fields and an unreadable name too is still incomplete (refused), not the cached answer."""
    plain = (("name", "Acme"), ("city", "Berlin"))
    hidden = (("name", "Acme"), ("name", "Acme" + "x" * 2001), ("city", "Berlin"))
    assert company._read_keys(plain) == (("namecity:acme|berlin", "name:acme"), True)
    keys, complete = company._read_keys(hidden)
    assert keys == ("namecity:acme|berlin", "name:acme") and not complete


# --- company_name: `_folded` ------------------------------------------------------------------

_SPELLINGS = {  # ASCII letter → non-ASCII spellings cleanco's folding reads as it
    "k": ["\u212a", "\uff4b", "\uff2b"], "s": ["\u017f", "\uff53"], "i": ["\u0131", "\uff49"],
    "a": ["\u00e0", "\uff41", "a\u0301", "\u00c5"], "e": ["\u00e9", "\uff45"], "o": ["\u00f6"],
    " ": ["\u00a0", "\u2003", "\u3000"],
}


@settings(max_examples=examples(400), deadline=None)
@given(
    st.sampled_from(["Kask Oil Inc", "Acme Corp.", "Sisko Steel GmbH", "Kiosk & Sons",
                     "Oskar Kessel AG", "Saint Kitts", "Kassel", "Iisalmi"]),
    st.lists(st.integers(0, 40), max_size=4),
    st.sampled_from(["", "\u200b", "\u00ad", "\ufeff"]),
)
def test_an_ascii_name_meets_its_non_ascii_spellings(
    name: str, where: list[int], invisible: str
) -> None:
    """The ASCII spelling (lowercased, the fast path) and a spelling with lookalikes in place
    of some letters (cleanco's folding: Kelvin sign, long s, dotless i, full-width, accents,
    wide spaces, format characters) give one company name and one city."""
    chars = list(name)
    for at in where:
        i = at % len(chars)
        options = _SPELLINGS.get(chars[i].lower())
        if options:
            chars[i] = options[at % len(options)]
    spelled = invisible.join(chars)
    assert company_name.company_name(spelled) == company_name.company_name(name)
    assert company_name.city(spelled) == company_name.city(name)


def test_ascii_and_non_ascii_folding_agree_on_every_ascii_character_in_context() -> None:
    """Every ASCII character beside a non-ASCII one (so cleanco folds it) folds as lowercasing
    alone folds it: the fast path leaves nothing that cleanco would change."""
    for code in range(128):
        char = chr(code)
        slow = company_name._folded(char + "\u00e9")
        assert slow == char.lower() + "e", repr(char)


# --- psl: is_public_suffix through registrable ------------------------------------------------

_HOSTS = [
    "com", "co.uk", "uk", "github.io", "acme.github.io", "ck", "foo.ck", "www.ck", "a.www.ck",
    "jp", "kawasaki.jp", "foo.kawasaki.jp", "city.kawasaki.jp", "a.city.kawasaki.jp",
    "bd", "com.bd", "x.com.bd", "acme.com", "shop.acme.co.uk", "COM", "Co.Uk", "acme.COM",
    "com.", "co.uk.", "acme.com.", "xn--p1ai", "xn--80ak6aa92e.xn--p1ai", "unknowntld",
    "acme.unknowntld", "s3.amazonaws.com", "x.s3.amazonaws.com", "blogspot.com", "", ".",
    "..com", "a..com",
]


@pytest.mark.parametrize("first", ["registrable", "is_public_suffix"])
def test_is_public_suffix_answers_as_before_in_either_order(first: str) -> None:
    """As of 64331fa `is_public_suffix` was `privatesuffix(host) is None`; it still is, whichever
    of the two caches is warm first."""
    reference = PublicSuffixList()
    psl.is_public_suffix.cache_clear()
    psl.registrable.cache_clear()
    for host in _HOSTS:
        if first == "registrable":
            psl.registrable(host)
        expected = reference.privatesuffix(host) is None
        assert psl.is_public_suffix(host) == expected, host
        assert psl.registrable(host) == reference.privatesuffix(host), host


@pytest.mark.parametrize("host", [h for h in _HOSTS if h and h != "."])
def test_a_domain_rule_is_a_suffix_exactly_when_it_has_no_registrable_domain(host: str) -> None:
    """The rule side (normalize.domain refuses a suffix) and the company side (a website's
    registrable domain) agree: a domain that is a rule has a registrable domain."""
    normal = normalize.domain(host, allow_freemail=True)
    if normal is not None:
        assert psl.registrable(normal) is not None
        assert not psl.is_public_suffix(normal)


def test_phonenumbers_is_the_metadata_the_fast_path_was_checked_against() -> None:
    """`valid_nanp` checks its metadata assumptions itself (`_nanp_plan`); with this metadata
    they hold, so the tests above exercise the fast path and not the fallback."""
    assert phonequick._nanp_plan(), phonenumbers.__version__
