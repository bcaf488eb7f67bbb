"""Company records on responses: which keys a record is looked up by, and what goes (no store:
the answers are given, as the one lookup would give them)."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules.company import parse_company
from rules.detect import company, pipeline
from rules.detect.finder import scan_json
from rules.detect.match import Policy
from rules.model import DEFAULT_REGION, RuleType
from tests.budgets import examples
from tests.fake_openmart import person

ROWS = [
    {"id": "r1", "content": {"business_name": "Acme Store GmbH", "city": "Berlin",
                             "website": "https://www.acme.com/shop", "openmart_id": "om_1",
                             "business_emails": ["info@acme.com"]}},
    {"id": "r2", "content": {"business_name": "Other Shop", "city": "Munich",
                             "website": "other.io"}},
]


def keys_of(doc: object) -> list[tuple[str, ...]]:
    body = orjson.dumps(doc)
    return [r.values for r in company.company_candidates(scan_json(body, frozenset(), 256))]


def answer(*entries: dict[str, str]) -> dict[RuleType, set[str]]:
    return {RuleType.COMPANY: {v for e in entries for v in parse_company(e).values()}}


def filtered(doc: object, denied: dict[RuleType, set[str]], policy: Policy = "strip") -> object:
    inspection = pipeline.inspect(orjson.dumps(doc), DEFAULT_REGION)
    return orjson.loads(pipeline.filtered(inspection, denied, policy).body)


def test_a_search_row_is_read_through_its_content_object() -> None:
    first, second = keys_of({"data": ROWS})
    assert first == ("id:r1", "id:om_1", "domain:acme.com", "namecity:acme store|berlin",
                     "name:acme store")
    assert second == ("id:r2", "domain:other.io", "namecity:other shop|munich", "name:other shop")


def test_a_person_is_read_by_email_domain_company_name_and_city() -> None:
    (keys,) = keys_of({"data": [person("Jane", "Doe", "acme.com", [])]})
    assert keys == ("domain:acme.com", "namecity:acme|austin", "name:acme")


def test_free_mail_addresses_name_no_company() -> None:
    (keys,) = keys_of([{"email": "jane@gmail.com", "first_name": "Jane", "company_name": "X"}])
    assert keys == ("name:x",)


def test_a_body_that_is_one_object_is_read_as_the_record_outside_every_list() -> None:
    doc = {"business_name": "Acme", "website": "acme.com"}
    assert keys_of(doc) == [("domain:acme.com", "name:acme")]
    (record,) = company.company_candidates(scan_json(orjson.dumps(doc), frozenset(), 256))
    assert record.node == company.OUTSIDE


def test_a_denied_record_outside_every_list_is_unplaced_not_cut() -> None:
    """No list to cut it from: the filter reports it and the proxy refuses (502)."""
    doc = {"data": {"business_name": "Acme", "website": "acme.com"}}
    inspection = pipeline.inspect(orjson.dumps(doc), DEFAULT_REGION)
    result = pipeline.filtered(inspection, answer({"website_url": "acme.com"}), "strip")
    assert result.unplaced == 1
    assert pipeline.filtered(inspection, answer({"website_url": "x.io"}), "strip").unplaced == 0


def test_the_query_asks_the_keys_of_every_record() -> None:
    query = pipeline.inspect(orjson.dumps({"data": ROWS}), DEFAULT_REGION).query()
    assert {"id:r1", "domain:other.io", "name:acme store"} <= query[RuleType.COMPANY]


@pytest.mark.parametrize("policy", ["strip", "drop"])
@pytest.mark.parametrize("entry", [
    {"external_id": "om_1"},
    {"website_url": "http://shop.acme.com"},
    {"company_name": "ACME Store", "city": "berlin"},
])
def test_each_tier_removes_the_business_row_whole(entry: dict[str, str], policy: Policy) -> None:
    doc = filtered({"data": ROWS, "cursor": None}, answer(entry), policy)
    assert doc == {"data": [ROWS[1]], "cursor": None}


@pytest.mark.parametrize("policy", ["strip", "drop"])
def test_every_person_of_the_company_goes(policy: Policy) -> None:
    people = [person("Jane", "Doe", "acme.com", []), person("Karl", "Marx", "other.io", []),
              person("Ada", "Lovelace", "eu.acme.com", [])]
    doc = filtered({"data": people}, answer({"website_url": "acme.com"}), policy)
    assert doc == {"data": [people[1]]}


def test_name_only_keys_count_only_with_the_flag() -> None:
    denied = answer({"company_name": "Acme Store"})
    assert filtered({"data": ROWS}, company.answer_for(denied, False)) == {"data": ROWS}
    assert filtered({"data": ROWS}, company.answer_for(denied, True)) == {"data": [ROWS[1]]}


def test_a_business_record_takes_its_people_along() -> None:
    record = {"openmart_id": "om_9", "business_name": "Acme", "contacts": [
        {"first_name": "Jane", "email": "jane@elsewhere.io"}]}
    other = {"openmart_id": "om_8", "business_name": "Other"}
    assert filtered([record, other], answer({"external_id": "om_9"})) == [other]


def test_the_highest_tier_is_the_one_counted() -> None:
    inspection = pipeline.inspect(orjson.dumps({"data": ROWS}), DEFAULT_REGION)
    denied = answer({"external_id": "om_1", "website_url": "acme.com"})
    assert company.denied_records(inspection.companies, denied) == {
        inspection.companies[0].node: "external_id"}
    result = pipeline.filtered(inspection, denied, "strip")
    assert result.counts == {RuleType.COMPANY: 1}


def test_nothing_denied_leaves_the_bytes_as_they_were() -> None:
    body = orjson.dumps({"data": ROWS})
    inspection = pipeline.inspect(body, DEFAULT_REGION)
    assert pipeline.filtered(inspection, answer({"external_id": "nope"}), "strip").body is body


def test_a_task_names_its_company_by_domain_and_name_with_city() -> None:
    assert company.task_keys({"domain": "@www.Acme.com", "company_name": "Acme Inc.",
                              "city": "Austin", "title": "CEO"}) == (
        "domain:acme.com", "namecity:acme|austin", "name:acme")
    assert company.task_keys({"domain": "gmail.com"}) == ()
    assert company.task_keys(["not", "a", "task"]) == ()


def test_every_email_domain_of_a_record_is_read() -> None:
    emails = [f"info@shop{i}.com" for i in range(30)] + ["info@acme.com"]
    doc = {"data": [{"business_name": "Mall", "business_emails": emails}, ROWS[1]]}
    assert filtered(doc, answer({"website_url": "acme.com"})) == {"data": [ROWS[1]]}


def test_a_record_read_before_reads_alike_and_an_equal_float_is_no_id() -> None:
    """Keys are cached per record's fields: a repeated record reads the same, and `1.0` (no
    id: a float) must not share the entry of `1` (an id), although `1 == 1.0`."""
    assert keys_of([{"id": 12345, "name": "Acme"}]) == [("id:12345", "name:acme")]
    assert keys_of([{"id": 12345, "name": "Acme"}]) == [("id:12345", "name:acme")]
    assert keys_of([{"id": 12345.0, "name": "Acme"}]) == [("name:acme",)]
    assert keys_of([{"id": "12345", "name": "Acme"}]) == [("id:12345", "name:acme")]


def test_a_record_too_large_to_cache_reads_every_city() -> None:
    many = {f"x{i}": {"city": f"City {i}"} for i in range(100)}
    (keys,) = keys_of([{"name": "Acme", **many}])
    assert keys == (*(f"namecity:acme|city {i}" for i in range(100)), "name:acme")


def test_every_record_of_a_map_outside_every_list_is_paired_by_name_and_city() -> None:
    """A map of records is one record (OUTSIDE): its tenth name is read and paired too."""
    rows = {f"r{i}": {"business_name": f"Shop {i}", "city": "Berlin"} for i in range(9)}
    rows["r9"] = {"business_name": "Acme Store GmbH", "city": "Berlin"}
    doc = {"data": rows}
    (record,) = company.company_candidates(scan_json(orjson.dumps(doc), frozenset(), 256))
    assert record.node == company.OUTSIDE and record.complete
    assert "namecity:acme store|berlin" in record.values
    inspection = pipeline.inspect(orjson.dumps(doc), DEFAULT_REGION)
    denied = answer({"company_name": "Acme Store", "city": "Berlin"})
    assert pipeline.filtered(inspection, denied, "strip").unplaced == 1


def test_many_names_in_a_few_cities_are_all_paired() -> None:
    """n x c ≤ 8 (n + c): any number of names in at most 8 cities is read whole."""
    rows = [{"business_name": f"Shop {i}", "address": {"city": f"City {i % 8}"}}
            for i in range(300)]
    (keys,) = keys_of([{"branches": {f"b{i}": row for i, row in enumerate(rows)}}])
    assert len(keys) == 300 * 8 + 300 and "namecity:shop 299|city 3" in keys


def test_a_record_with_too_many_names_and_cities_to_pair_refuses_the_response() -> None:
    """65 names x 65 cities = 4,225 pairs > 4,096 and > 8 x 130: no pair is asked, the record is
    unchecked and the response refused (502) whatever the answer, even one that denies nothing."""
    rows = {f"r{i}": {"business_name": f"Shop {i}", "city": f"City {i}"} for i in range(65)}
    doc = {"data": [{"id": "x1", "branches": rows}, {"id": "x2", "name": "Fine", "city": "B"}]}
    big, fine = company.company_candidates(scan_json(orjson.dumps(doc), frozenset(), 256))
    assert not big.complete and fine.complete
    assert not any(key.startswith("namecity:") for key in big.values)
    assert {"id:x1", "name:shop 0", "name:shop 64"} <= set(big.values)
    inspection = pipeline.inspect(orjson.dumps(doc), DEFAULT_REGION)
    assert pipeline.filtered(inspection, {}, "strip").unplaced == 1
    assert company.unchecked(inspection.companies) == 1


def test_the_pair_bound_is_4096_or_8_times_n_plus_c() -> None:
    """64 x 64 = 4,096 pairs pass; 64 x 65 = 4,160 > 4,096 and > 8 x 129 do not (its names still
    are read); 600 names in 7 cities = 4,200 ≤ 8 x 607 pass."""
    def record(names: int, cities: int) -> dict[str, object]:
        return {"names": {f"n{i}": {"name": f"N{i}"} for i in range(names)},
                "cities": {f"c{i}": {"city": f"C{i}"} for i in range(cities)}}
    (inside,), (over,), (many,) = (company.company_candidates(scan_json(
        orjson.dumps([record(n, c)]), frozenset(), 256)) for n, c in ((64, 64), (64, 65), (600, 7)))
    assert inside.complete and len(inside.values) == 64 * 64 + 64
    assert not over.complete and len(over.values) == 64
    assert many.complete and len(many.values) == 600 * 7 + 600
    (small,) = company.company_candidates(
        scan_json(orjson.dumps([record(16, 2)]), frozenset(), 256))
    assert small.complete and len(small.values) == 16 * 2 + 16


@pytest.mark.parametrize("row", [
    pytest.param({"business_name": "Acme Store" + "." * 2000, "city": "Berlin"}, id="name"),
    pytest.param({"id": "x1", "business_name": "Acme Store", "city": "Berlin" + "-" * 2000},
                 id="city"),
    pytest.param({"first_name": "Jo", "company": "Acme" + "\u200b" * 2000}, id="name_only"),
])
def test_a_record_with_a_name_or_city_too_long_to_read_refuses_the_response(
    row: dict[str, str]
) -> None:
    """Unreadable is not "no name": `Acme Store` and 2,000 dots reads `Acme Store`. The record is
    unchecked (a record with no other key too) and the response refused, whatever the answer."""
    doc = {"data": [row, {"business_name": "Fine", "city": "Berlin"}]}
    unread, fine = company.company_candidates(scan_json(orjson.dumps(doc), frozenset(), 256))
    assert not unread.complete and fine.complete
    inspection = pipeline.inspect(orjson.dumps(doc), DEFAULT_REGION)
    assert pipeline.filtered(inspection, {}, "strip").unplaced == 1


def test_a_name_padded_with_white_space_past_the_read_bound_is_read_and_matched() -> None:
    doc = {"data": [{"business_name": "Acme Store" + " " * 2000, "city": "Berlin\n"}]}
    (record,) = company.company_candidates(scan_json(orjson.dumps(doc), frozenset(), 256))
    assert record.complete and "namecity:acme store|berlin" in record.values
    denied = answer({"company_name": "Acme Store", "city": "Berlin"})
    assert filtered(doc, denied) == {"data": []}


def _keys_as_before(fields: company.RecordFields) -> company.Keys:
    """A record's keys field by field, every record on its own: `_read_keys` as it was before
    it made the keys once per distinct normal fields (the reference it must equal)."""
    found, unread = company._Fields(), False
    for kind, raw in fields:
        value = company._normal(kind, raw)
        found.add(company._STORED.get(kind, kind), value)
        unread = unread or (value is None and company._unreadable(kind, raw))
    return found.keys()[0], found.keys()[1] and not unread


_RAW = {
    "id": st.sampled_from(["om_1", " om_1 ", "", 7, 12345]),
    "domain": st.sampled_from(["acme.com", "https://www.Acme.com/x", "co.uk", "gmail.com", "x"]),
    "email": st.sampled_from(["Jo@acme.com", "ann@shop.acme.com", "a@gmail.com", "no", "b@x"]),
    "name": st.sampled_from(["Acme", "ACME ", "Other GmbH", "", "Acme" + "." * 2000, "Acme  "]),
    "city": st.sampled_from(["Berlin", "berlin", "Munich", "", "B" + "-" * 2000]),
}
_FIELD = st.sampled_from(sorted(_RAW)).flatmap(lambda k: st.tuples(st.just(k), _RAW[k]))


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(st.lists(_FIELD, max_size=8).map(tuple), min_size=1, max_size=6))
def test_read_keys_equal_the_field_by_field_reference(records: list[company.RecordFields]) -> None:
    """Records read in a row (the cache of normal fields warm across them) and over the size
    a cache keeps give the reference's keys and completeness."""
    for fields in [*records, tuple(f for r in records for f in r) * 11]:
        assert company._read_keys(fields) == _keys_as_before(fields)
