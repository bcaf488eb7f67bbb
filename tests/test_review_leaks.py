"""Adversarial review of today's merges (flat contract, Lua lookup, company rules) through the
running proxy, a fake upstream we control and a real Redis.

Each test asserts that a denied identifier or company record does not reach the client (a 502
JSON refusal is fine). `xfail(strict=True)` marks a hole found and not fixed in this branch.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

from proxy.settings import Settings
from rules.model import RuleType, tenant_of
from tests.harness import Running, fake_upstream, running_proxy
from tests.leak_detector import leaks
from tests.test_edge import EdgeFake, json_answer, key
from tests.test_rules_api import PATH, call
from tests.test_suppression import add

EMAIL = "jane.doe@acme.com"
PHONE = "+15125550100"
ACME = {"business_name": "Acme Store GmbH", "city": "Berlin", "openmart_id": "om_1",
        "website": "https://www.acme.com/shop"}

Env = tuple[EdgeFake, Running, aiohttp.ClientSession]


@pytest.fixture
async def env(redis_url: str) -> AsyncIterator[Env]:
    fake = EdgeFake()
    async with fake_upstream(fake) as (_, upstream):
        settings = Settings(upstream=upstream, redis=redis_url)
        async with running_proxy(settings) as proxy, aiohttp.ClientSession(
            auto_decompress=False
        ) as client:
            yield fake, proxy, client


async def fetch(env: Env, name: str, doc: Any, api_key: str, ndjson: bool = False,
                ) -> tuple[int, str]:
    fake, proxy, client = env
    fake.canned[name] = json_answer(doc)
    if ndjson:  # the document as one line of an NDJSON body, between two other lines
        line = orjson.dumps(doc)
        body = b'{"n": 1}\n' + line + b'\n{"n": 2}\n'
        fake.canned[name] = (200, {"Content-Type": "application/x-ndjson"}, body)
    async with client.get(f"{proxy.url}/edge/{name}", headers={"X-API-Key": api_key}) as r:
        return r.status, (await r.read()).decode()


def refused_or_clean(status: int, text: str, *denied: str) -> bool:
    return status == 502 or not any(d in text for d in denied)


# Company records that are not an element of a list: the one-record answer of a lookup by id,
# a record under an object key, a map of records. Nothing marks them as records, so their
# fields are never read or looked up, and the denied company goes out unfiltered. Deny by
# default: if the proxy cannot remove the record, the response must be refused (502).

ONE_RECORD = [
    pytest.param(ACME, id="whole_body"),
    pytest.param({"data": ACME}, id="under_a_key"),
    pytest.param({"data": {"r1": ACME, "r2": {"business_name": "Other"}}}, id="map_of_records"),
]


@pytest.mark.parametrize("ndjson", [False, True], ids=["json", "ndjson_line"])
@pytest.mark.parametrize("doc", ONE_RECORD)
async def test_a_denied_company_record_outside_a_list_does_not_go_out(
    env: Env, doc: Any, ndjson: bool
) -> None:
    _, proxy, client = env
    api_key = key()
    status, body = await call(client, "POST", proxy.url + PATH, api_key,
                              {"type": "company", "values": [{"external_id": "om_1"}]})
    assert status == 200, body
    status, text = await fetch(env, "one_record", doc, api_key, ndjson)
    assert refused_or_clean(status, text, "om_1", "Acme Store")
    status, text = await fetch(env, "one_record", doc, key(), ndjson)  # no company rule
    assert status == 200 and "Acme Store" in text


# Compatibility spellings (NFKC): full-width digits and `＠` were read, but the ONE DOT LEADER
# (U+2024, NFKC '.'), circled, superscript and subscript digits were not. The independent judge
# (tests/leak_detector.py) reads them as the denied identifiers.

async def test_an_address_with_a_one_dot_leader_is_removed(env: Env, redis_url: str) -> None:
    api_key = key()
    await add(redis_url, tenant_of(api_key), RuleType.EMAIL, EMAIL)
    status, text = await fetch(env, "leader", {"data": [{"note": "jane\u2024doe@acme.com"}]},
                               api_key)
    assert status == 502 or not leaks(text, emails=[EMAIL], phones=[], linkedins=[])


async def test_a_phone_in_circled_digits_is_removed(env: Env, redis_url: str) -> None:
    api_key = key()
    await add(redis_url, tenant_of(api_key), RuleType.PHONE, PHONE)
    circled = "\u2460\u2464\u2460\u2461\u2464\u2464\u2464\u24ea\u2460\u24ea\u24ea"
    status, text = await fetch(env, "circled", {"data": [{"phone": circled}]}, api_key)
    assert status == 502 or not leaks(text, emails=[], phones=[PHONE], linkedins=[])


# The values outside every list are ONE record (`company.OUTSIDE`). A record's names and cities
# were capped at 8 each (their pairs are keys), so a map of records (`{"r1": {...}, ...}`) had
# its 10th record's name never read. Now every name is read; a record with too many name x city
# pairs to ask refuses the response.

async def test_the_ninth_record_of_a_map_is_checked_by_name_and_city(env: Env) -> None:
    _, proxy, client = env
    api_key = key()
    status, body = await call(client, "POST", proxy.url + PATH, api_key, {
        "type": "company", "values": [{"company_name": "Acme Store", "city": "Berlin"}]})
    assert status == 200, body
    rows = {f"r{i}": {"business_name": f"Shop {i}", "city": "Berlin"} for i in range(9)}
    rows["r9"] = {"business_name": "Acme Store GmbH", "city": "Berlin"}
    status, text = await fetch(env, "map", {"data": rows}, api_key)
    assert refused_or_clean(status, text, "Acme Store")


# Company names and cities: spellings of the same company the normaliser keeps apart.
SAME_COMPANY = [
    pytest.param(("Acme Store", "Köln"), ("Acme Store", "Koeln"), id="city_oe_transliteration"),
    pytest.param(("Acme Store", "Koeln"), ("Acme Store", "Köln"), id="city_oe_the_reverse"),
    pytest.param(("Müller Bau", "Köln"), ("Mueller Bau", "Koln"), id="name_ue_city_accent_only"),
    pytest.param(("Acme Store", "Berlin"), ("Acme Store\u2122", "Berlin"), id="trade_mark_sign"),
]


@pytest.mark.parametrize(("rule", "shown"), SAME_COMPANY)
async def test_a_company_spelled_another_common_way_is_removed(
    env: Env, rule: tuple[str, str], shown: tuple[str, str]
) -> None:
    _, proxy, client = env
    api_key = key()
    status, body = await call(client, "POST", proxy.url + PATH, api_key, {
        "type": "company", "values": [{"company_name": rule[0], "city": rule[1]}]})
    assert status == 200, body
    row = {"business_name": shown[0], "city": shown[1]}
    status, text = await fetch(env, "spelled", {"data": [row, {"business_name": "Other"}]},
                               api_key)
    assert refused_or_clean(status, text, shown[0])


@pytest.mark.parametrize("spelled", [
    "\u207a\u00b9 \u2075\u00b9\u00b2 \u2075\u2075\u2075 \u2070\u00b9\u2070\u2070",  # ⁺¹ ⁵¹² …
    "+\u2081\u2085\u2081\u2082\u2085\u2085\u2085\u2080\u2081\u2080\u2080",  # +₁₅₁₂…
    "+1 \u2478\u2474\u2475 555 0100",  # ⑸⑴⑵: parenthesised digits
])
async def test_a_phone_in_superscript_subscript_or_parenthesised_digits_is_removed(
    env: Env, redis_url: str, spelled: str
) -> None:
    api_key = key()
    await add(redis_url, tenant_of(api_key), RuleType.PHONE, PHONE)
    status, text = await fetch(env, "compat", {"data": [{"note": spelled}]}, api_key)
    assert status == 502 or not leaks(text, emails=[], phones=[PHONE], linkedins=[])


# LinkedIn's mobile paths show the same profile as /in/<slug>: `/m/in/<slug>` and
# `/mwlite/in/<slug>` (a browser opens the profile). A rule written either way denies both.

@pytest.mark.parametrize("path", ["m/in", "mwlite/in", "M/In", "MWLITE/IN"])
async def test_a_profile_under_a_mobile_path_is_removed(
    env: Env, redis_url: str, path: str
) -> None:
    api_key = key()
    await add(redis_url, tenant_of(api_key), RuleType.LINKEDIN, "linkedin.com/in/janedoe")
    url = f"https://www.linkedin.com/{path}/janedoe"
    status, text = await fetch(env, "mobile", {"data": [{"profile": url}]}, api_key)
    assert status == 502 or f"/{path}/janedoe" not in text


@pytest.mark.parametrize("path", ["m/in", "mwlite/in"])
async def test_a_mobile_profile_in_free_text_is_removed(
    env: Env, redis_url: str, path: str
) -> None:
    api_key = key()
    await add(redis_url, tenant_of(api_key), RuleType.LINKEDIN, "linkedin.com/in/janedoe")
    note = f"see uk.linkedin.com/{path}/JaneDoe/?trk=x, thanks"
    other = f"https://www.linkedin.com/{path}/karlmarx"
    doc = {"data": [{"note": note}, {"profile": other}]}
    status, text = await fetch(env, "mobile-text", doc, api_key)
    assert status == 200 and "janedoe" not in text.lower()
    assert other in text  # another profile under the same path stays


async def test_a_rule_written_as_a_mobile_url_denies_the_profile(
    env: Env, redis_url: str
) -> None:
    api_key = key()
    rule = "https://www.linkedin.com/mwlite/in/JaneDoe/"
    await add(redis_url, tenant_of(api_key), RuleType.LINKEDIN, rule)
    doc = {"data": [{"profile": "https://www.linkedin.com/in/janedoe"},
                    {"profile": "https://www.linkedin.com/m/in/janedoe"},
                    {"profile": "https://www.linkedin.com/m/in/karlmarx"}]}
    status, text = await fetch(env, "mobile-rule", doc, api_key)
    assert status == 200 and "janedoe" not in text
    assert "/m/in/karlmarx" in text
