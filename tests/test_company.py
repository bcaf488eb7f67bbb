"""Company entries and names: the normal forms rules and responses are compared in."""

from __future__ import annotations

import sys
import unicodedata
from collections.abc import Callable

import pytest
from cleanco.clean import normalized  # type: ignore[import-untyped]  # no type information
from hypothesis import given
from hypothesis import strategies as st

from rules import company_name as company_name_module
from rules.company import (
    CompanyEntry,
    company_key,
    email_domain,
    parse_company,
    tier_of,
    website_domain,
)
from rules.company_name import city, company_name, readable
from rules.event_fields import InvalidEventError
from rules.events import decode_event, encode
from rules.model import DEFAULT_REGION, RuleType
from rules.normalize import normalize_all
from rules.text import clean

SAME_COMPANY = [
    ("Acme Corp.", "ACME Corporation"),
    ("Acme, Inc.", "Acme Incorporated"),
    ("The Coca-Cola Company", "Coca Cola"),
    ("Procter & Gamble", "Procter and Gamble Co."),
    ("Société Générale S.A.", "Societe Generale"),
    ("Nestlé S.A.", "NESTLE"),
    ("Siemens AG", "Siemens"),
    ("Robert Bosch GmbH", "Robert Bosch"),
    ("Müller GmbH & Co. KG", "Muller"),
    ("McDonald's Corporation", "McDonalds Corp"),
    ("Johnson & Johnson", "Johnson and Johnson"),
    ("AT&T Inc.", "AT and T"),
    ("Tesla, Inc.", "Tesla Inc"),
    ("Unilever PLC", "Unilever plc."),
    ("Tata Consultancy Services Limited", "Tata Consultancy Services Ltd"),
    ("Samsung Electronics Co., Ltd.", "Samsung Electronics"),
    ("Toyota Motor Corporation", "Toyota Motor Corp"),
    ("ING Groep N.V.", "ING Groep NV"),
    ("Banco Santander, S.A.", "Banco Santander SA"),
    ("L'Oréal S.A.", "LOreal"),
    ("Ericsson AB", "Ericsson"),
    ("Nokia Oyj", "Nokia"),
    ("Equinor ASA", "Equinor"),
    ("BHP Group Pty Ltd", "BHP Group"),
    ("Sony Group Corporation", "Sony Group"),
    ("Ben & Jerry's Homemade, Inc.", "Ben and Jerrys Homemade"),
    ("Marks and Spencer Group plc", "Marks & Spencer Group"),
    ("Škoda Auto a.s.", "Skoda Auto"),
    ("Firma Łódź Sp. z o.o.", "Firma Lodz"),
    ("Ørsted A/S", "Orsted"),
    ("The Home Depot, Inc.", "Home Depot"),
    ("Amazon.com, Inc.", "Amazon.com"),
    ("H&M Hennes & Mauritz AB", "H and M Hennes and Mauritz"),
    ("Crédit Agricole S.A.", "Credit Agricole"),
    ("7-Eleven, Inc.", "7 Eleven"),
    ("Moët et Chandon", "Moet & Chandon"),
    ("Global Industries GmbH", "GLOBAL INDUSTRIES"),
    ("TechStart AG", "techstart"),
]
DIFFERENT_COMPANY = [
    ("Apple", "Applied"),
    ("General Motors", "General Mills"),
    ("Acme Berlin", "Acme"),
    ("Acme Holdings", "Acme"),
]
SAME_CITY = [
    ("München", "Munchen"),
    ("St. Louis", "Saint Louis"),
    ("Saint-Louis", "saint louis"),
    ("NEW YORK", "New York"),
    ("Zürich", "Zurich"),
    ("Kraków", "Krakow"),
    ("Ft. Worth", "Fort Worth"),
    ("São Paulo", "Sao Paulo"),
    ("Köln", "Koeln"),
    ("Koeln", "Koln"),
    ("Düsseldorf", "Duesseldorf"),
    ("Gießen", "Giessen"),
    ("Zürich", "Zuerich"),
    ("Sankt Pölten", "SANKT POELTEN"),
    ("Århus", "Aarhus"),
    ("Ålborg", "AALBORG"),
    ("Diyarbakır", "Diyarbakir"),
    ("Þórshöfn", "Thorshofn"),
    ("Reyðarfjörður", "Reydarfjordur"),
    ("Ærøskøbing", "Aeroeskoebing"),
]


@pytest.mark.parametrize(("a", "b"), SAME_COMPANY)
def test_real_world_spellings_of_one_company_normalise_alike(a: str, b: str) -> None:
    assert company_name(a) == company_name(b) is not None


def test_at_least_thirty_real_world_pairs() -> None:
    assert len(SAME_COMPANY) >= 30


@pytest.mark.parametrize(("a", "b"), DIFFERENT_COMPANY)
def test_different_companies_stay_different(a: str, b: str) -> None:
    assert company_name(a) != company_name(b)


@pytest.mark.parametrize(("raw", "normal"), [
    ("Acme Corp.", "acme"), ("Société Générale S.A.", "societe generale"),
    ("Procter & Gamble", "procter gamble"), ("Müller GmbH & Co. KG", "muller"),
])
def test_the_normal_form(raw: str, normal: str) -> None:
    assert company_name(raw) == normal


def test_a_legal_form_alone_is_kept_never_emptied() -> None:
    assert company_name("Limited") == "limited"
    assert company_name("AG") == "ag"
    assert company_name("The") == "the"
    assert company_name(" & ., ") is None


@pytest.mark.parametrize(("a", "b"), SAME_CITY)
def test_city_spellings_normalise_alike(a: str, b: str) -> None:
    assert city(a) == city(b) is not None


@pytest.mark.parametrize(("a", "b"), [
    ("Müller Bau GmbH", "Mueller Bau"), ("Bäckerei Schäfer", "Baeckerei Schaefer"),
    ("Løkke Æble ApS", "Lokke Aeble"), ("Cœur de Lion", "Coeur de Lion"),
    ("C\u01fdsar Bau", "Caesar Bau"), ("C\u01e3sar Bau", "Cæsar Bau"),
])
def test_umlauts_written_out_or_stripped_fold_alike(a: str, b: str) -> None:
    assert company_name(a) == company_name(b) is not None


@pytest.mark.parametrize(("raw", "normal"), [
    ("Köln", "koln"), ("Koeln", "koln"), ("Queue", "quu"), ("Zoeey", "zoy"), ("Joe", "jo"),
])
def test_the_umlaut_fold_drops_every_e_after_a_o_u_once_for_all(raw: str, normal: str) -> None:
    """A run of `e` goes at once, so the fold is idempotent (`uee` is `u`, not `ue`)."""
    assert city(raw) == company_name(raw) == normal
    assert city(normal) == normal


def test_a_word_that_folds_to_a_connector_is_dropped_like_one() -> None:
    """The fold runs before connectors go: `Uend` is `und` and dropped, so the form is stable."""
    assert company_name("Acme Uend Sons") == company_name("Acme Sons") == "acme sons"


@given(st.text(max_size=60))
def test_company_name_is_idempotent(raw: str) -> None:
    once = company_name(raw)
    assert once is None or company_name(once) == once


@given(st.text(alphabet="aeouAEOUäöüåÅßæœÆŒǽǣǼǢᴭ\U00010783ꟹıIþÞðÐ &.'tk", max_size=30))
def test_umlaut_spellings_are_idempotent(raw: str) -> None:
    for normal in (company_name, city):
        once = normal(raw)
        assert once is None or normal(once) == once


@given(st.text(max_size=60))
def test_city_is_idempotent(raw: str) -> None:
    once = city(raw)
    assert once is None or city(once) == once


@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=60))
def test_ascii_is_folded_as_cleanco_folds_it(raw: str) -> None:
    """`_folded` lowercases ASCII only, as cleanco's folding (NFKD, no marks, its map) does."""
    folded = normalized(clean(raw).translate(company_name_module._MARKS)).casefold()
    assert company_name_module._folded(raw) == folded


def test_every_ascii_character_is_folded_as_cleanco_folds_it() -> None:
    every = "".join(map(chr, range(128)))
    assert normalized(every).casefold() == company_name_module._folded(every) == every.lower()


def _characters() -> list[str]:
    """Every assigned code point but private use: the ones that are characters."""
    return [c for c in map(chr, range(sys.maxunicode + 1))
            if unicodedata.category(c) not in ("Cn", "Co", "Cs")]


def _not_folded_once(normal: Callable[[str], str | None], texts: list[str]) -> list[str]:
    """The texts whose normal form changes when normalised again."""
    return [t for t in texts if (once := normal(t)) is not None and normal(once) != once]


@pytest.mark.parametrize("normal", [company_name, city])
@pytest.mark.parametrize("layout", ["{}", "a{}e"])
def test_every_character_normalises_once_for_all(
    normal: Callable[[str], str | None], layout: str
) -> None:
    """The API publishes normal keys and the consumer normalises them again: the fold must be
    idempotent for every code point, alone and between the letters the vowel fold joins. 32
    characters a text, as words; a text that fails or has no form (too long) is tried word by
    word, so the failures name their characters."""
    chars, failed = _characters(), []
    for start in range(0, len(chars), 32):
        words = [layout.format(c) for c in chars[start:start + 32]]
        text = " ".join(words)
        if normal(text) is None or _not_folded_once(normal, [text]):
            failed += _not_folded_once(normal, words)
    assert failed == []


def test_code_points_that_are_no_characters_are_dropped_like_punctuation() -> None:
    """Unassigned, private-use and surrogate code points have no fold: they split words."""
    others = [c for c in map(chr, range(sys.maxunicode + 1))
              if unicodedata.category(c) in ("Cn", "Co", "Cs")]
    for start in range(0, len(others), 400):
        text = "Acme" + "".join(others[start:start + 400]) + "Store"
        assert company_name(text) == city(text) == "acme store"


def test_a_name_padded_with_white_space_past_the_read_bound_is_read() -> None:
    assert company_name("Acme Store" + " " * 2000) == "acme store"
    assert city("\t Berlin" + "\n " * 3000) == "berlin"
    assert readable("Acme Store" + " " * 2000)


def test_a_name_too_long_to_read_has_no_form_and_is_unreadable() -> None:
    """Unreadable is not "no name" (`Acme` and 2,000 dots): the response side refuses it."""
    for raw in ("Acme Store" + "." * 2000, "a " * 1001):
        assert company_name(raw) is None and city(raw) is None
        assert not readable(raw)
    assert readable("") and readable("x" * 2000)


def test_an_entry_with_a_name_or_city_too_long_to_read_is_refused() -> None:
    with pytest.raises(ValueError, match="company_name is not a valid company name"):
        parse_company({"company_name": "Acme" + "." * 2000})
    with pytest.raises(ValueError, match="city is not a valid city"):
        parse_company({"company_name": "Acme", "city": "Berlin" + "-" * 2000})


def test_entry_with_every_field_is_stored_as_one_key_per_tier() -> None:
    entry = parse_company({
        "company_name": "Acme Corp", "website_url": "https://www.acme-corp.com/about",
        "city": "Berlin", "country": "Germany", "external_id": "CRM-5001",
        "reason": "Existing customer",
    })
    assert entry.values() == (
        "id:CRM-5001", "domain:acme-corp.com", "namecity:acme|berlin", "name:acme",
    )
    assert entry.reason == "Existing customer"
    assert [tier_of(v) for v in entry.values()] == ["external_id", "domain", "name_city", "name"]


def test_puffle_shape_domain_and_name_are_read() -> None:
    entry = parse_company({"domain": "https://www.Acme.com/", "name": "Acme Corp", "reason": None})
    assert entry == CompanyEntry(domain="acme.com", name="acme")


def test_website_is_read_as_its_registrable_domain() -> None:
    assert website_domain("https://shop.acme.co.uk/en?x=1") == "acme.co.uk"
    assert website_domain("www.acme.com") == "acme.com"
    assert website_domain("acme.github.io") == "acme.github.io"  # github.io: a public suffix
    assert website_domain("gmail.com") is None
    assert email_domain("Jane.Doe@EU.Acme.com") == "acme.com"
    assert email_domain("jane@gmail.com") is None


@pytest.mark.parametrize(("obj", "message"), [
    ({}, "at least one of external_id, website_url, company_name"),
    ({"city": "Berlin"}, "at least one of"),
    ({"reason": "x"}, "at least one of"),
    ("acme.com", "must be a JSON object"),
    ({"website_url": "https://gmail.com"}, "free-mail"),
    ({"website_url": "co.uk"}, "public suffix"),
    ({"website_url": "not a url"}, "website_url"),
    ({"company_name": 5}, "company_name must be a string"),
    ({"company_name": "Acme", "website": "acme.com"}, "unknown field 'website'"),
    ({"company_name": "Acme", "name": "Other"}, "given twice"),
    ({"external_id": "x" * 300}, "external_id is not a valid external id"),
    ({"company_name": "Acme", "reason": "r" * 501}, "reason must be at most 500"),
])
def test_bad_entries_say_why(obj: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_company(obj)


def test_numeric_external_id_is_its_digits() -> None:
    assert parse_company({"external_id": 5001}).values() == ("id:5001",)


@pytest.mark.parametrize(("raw", "normal"), [
    ("domain:https://www.ACME.com/", "domain:acme.com"),
    ("name:Acme Corp.", "name:acme"),
    ("namecity:Acme GmbH|München", "namecity:acme|munchen"),
    ("id: CRM-5001 ", "id:CRM-5001"),
])
def test_keys_normalise_on_the_rule_side(raw: str, normal: str) -> None:
    assert company_key(raw) == normal
    assert company_key(normal) == normal


@pytest.mark.parametrize("raw", ["acme.com", "domain:gmail.com", "namecity:acme", "zip:1", "id:"])
def test_bad_keys_are_rejected(raw: str) -> None:
    assert company_key(raw) is None


def test_company_keys_go_through_the_one_list_normaliser() -> None:
    result = normalize_all(RuleType.COMPANY, ["domain:www.acme.com", "nope"], DEFAULT_REGION)
    assert result.values == ("domain:acme.com",)
    assert [r.index for r in result.rejected] == [1]


@given(st.dictionaries(
    st.sampled_from(["external_id", "website_url", "company_name", "city"]),
    st.text(max_size=30), min_size=1,
))
def test_every_stored_key_normalises_to_itself(obj: dict[str, str]) -> None:
    try:
        entry = parse_company(obj)
    except ValueError:
        return
    for value in entry.values():
        assert company_key(value) == value


def test_company_events_carry_keys_and_the_consumer_normalises_them() -> None:
    raw = parse_company({"website_url": "https://www.Acme.com/", "company_name": "Acme GmbH",
                         "city": "München", "reason": "customer"})
    value = encode("add", "*", RuleType.COMPANY, [*raw.values(), "domain:WWW.ACME.COM"],
                   region=None, reason=raw.reason)
    event = decode_event(value, DEFAULT_REGION)
    assert event.change.values == ("domain:acme.com", "namecity:acme|munchen", "name:acme")
    assert event.change.meta is not None and event.change.meta.reason == "customer"
    bad = encode("add", "*", RuleType.COMPANY, ["domain:acme.com", "acme.com"], region=None)
    with pytest.raises(InvalidEventError, match=r"1 of 2 values are not a valid company"):
        decode_event(bad, DEFAULT_REGION)
