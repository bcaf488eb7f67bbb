"""Event schema v1: validation, forward compatibility, versions, limits, normalisation."""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest

from rules import events
from rules.events import InvalidEventError, check_key, decode, decode_event, encode, key_of
from rules.model import GLOBAL, MAX_VALUES_PER_CHANGE, RuleType, tenant_of

TENANT = tenant_of("key-1")
SCHEMA = json.loads((Path(events.__file__).with_name("event.schema.json")).read_text())


def body(**changes: Any) -> dict[str, Any]:
    """The issue's example event, with some fields changed (None removes one)."""
    event = {
        "v": 1,
        "op": "add",
        "tenant": TENANT,
        "type": "email",
        "values": ["jane@acme.com"],
        "id": str(uuid.uuid4()),
        "ts": "2026-11-25T10:00:00Z",
        "source": "crm-sync",
    }
    event.update(changes)
    return {k: v for k, v in event.items() if v is not None}


def raw(**changes: Any) -> bytes:
    return orjson.dumps(body(**changes))


def rejected(value: bytes | None) -> InvalidEventError:
    with pytest.raises(InvalidEventError) as info:
        decode(value, "US")
    return info.value


def test_the_issue_example_decodes() -> None:
    event = decode_event(raw(), "US")
    assert event.change.op == "add"
    assert event.change.tenant == TENANT
    assert event.change.type is RuleType.EMAIL
    assert event.change.values == ("jane@acme.com",)
    assert event.source == "crm-sync"
    assert event.ts == 1795600800.0


def test_global_scope_and_optional_source() -> None:
    change = decode(raw(tenant=GLOBAL, source=None), "US")
    assert change.tenant == GLOBAL


def test_unknown_fields_are_ignored() -> None:
    change = decode(raw(priority="high", meta={"a": [1, 2]}, values=["Jane@Acme.com"]), "US")
    assert change.values == ("jane@acme.com",)


@pytest.mark.parametrize("version", [4, 99])
def test_a_higher_version_is_rejected_not_guessed(version: int) -> None:
    err = rejected(raw(v=version, op="upsert", values="not a list"))
    assert err.code == "version"
    assert str(version) in err.reason


@pytest.mark.parametrize("version", [0, -1, "1", True, None])
def test_a_malformed_version_is_a_schema_error(version: Any) -> None:
    assert rejected(raw(v=version)).code == "schema"


def test_ten_thousand_values_pass_and_one_more_does_not() -> None:
    values = [f"user{i}@acme.com" for i in range(10_001)]
    assert len(decode(raw(values=values[:10_000]), "US").values) == 10_000
    err = rejected(raw(values=values))
    assert err.code == "too_many_values"
    assert "10001" in err.reason


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (b"not json", "json"),
        (b"", "json"),
        (None, "json"),
        (b"[1, 2]", "json"),
        (b'"a string"', "json"),
        (raw(op="upsert"), "schema"),
        (raw(op=None), "schema"),
        (raw(type="fax"), "schema"),
        (raw(type=None), "schema"),
        (raw(tenant=TENANT.upper()), "schema"),
        (raw(tenant=TENANT[:-1]), "schema"),
        (raw(tenant="acme"), "schema"),
        (raw(tenant=None), "schema"),
        (raw(values=[]), "schema"),
        (raw(values="jane@acme.com"), "schema"),
        (raw(values=None), "schema"),
        (raw(id="42"), "schema"),
        (raw(id=None), "schema"),
        (raw(ts="yesterday"), "schema"),
        (raw(ts="2026-11-25T10:00:00"), "schema"),
        (raw(ts=None), "schema"),
        (raw(source=7), "schema"),
        (raw(values=["jane@acme.com", 5]), "values"),
        (raw(values=["jane@acme.com", "not-an-email", "bob@"]), "values"),
    ],
)
def test_invalid_records(value: bytes | None, code: str) -> None:
    assert rejected(value).code == code


def test_reason_names_bad_values_by_position_never_by_content() -> None:
    values = ["jane@acme.com", "secret-person-at-example", "bob@acme.com", "x@@y"]
    err = rejected(raw(values=values))
    assert "values[1]" in err.reason and "values[3]" in err.reason
    assert "2 of 4" in err.reason
    assert "secret-person" not in err.reason and "x@@y" not in err.reason


def test_reason_lists_at_most_ten_positions() -> None:
    err = rejected(raw(values=[f"bad{i}" for i in range(25)]))
    assert "values[9]" in err.reason and "values[10]" not in err.reason
    assert "15 more" in err.reason


@pytest.mark.parametrize(
    ("rule_type", "raw_values", "normal"),
    [
        ("email", [" Jane.Doe@ACME.com ", "mailto:jane.doe@acme.com"], ("jane.doe@acme.com",)),
        ("phone", ["+1 (415) 555-0100", "tel:+14155550100", "415.555.0100"], ("+14155550100",)),
        ("domain", ["https://www.Acme.com/", "@acme.com."], ("acme.com",)),
        ("linkedin", ["https://uk.linkedin.com/in/Jane-Doe/?trk=x"], ("linkedin.com/in/jane-doe",)),
    ],
)
def test_values_are_normalised_and_deduplicated(
    rule_type: str, raw_values: list[str], normal: tuple[str, ...]
) -> None:
    assert decode(raw(type=rule_type, values=raw_values), "US").values == normal


def test_phone_region_applies_to_numbers_without_country_code() -> None:
    assert decode(raw(type="phone", values=["020 7946 0958"]), region="GB").values == (
        "+442079460958",
    )


def test_normalised_values_are_stable_under_renormalisation() -> None:
    """Publishers send normalised values; the consumer normalises again: same result."""
    samples = {
        "email": ["Jane@Bücher.de", "a+tag@x.io"],
        "phone": ["+44 20 7946 0958", "(415) 555-0100"],
        "domain": ["münchen.de", "sub.Example.co.uk"],
        "linkedin": ["linkedin.com/in/Jane%20Doe"],
    }
    for rule_type, values in samples.items():
        once = decode(raw(type=rule_type, values=values), "US").values
        assert decode(raw(type=rule_type, values=list(once)), "US").values == once


def test_encode_round_trips() -> None:
    before = time.time()
    value = encode("remove", TENANT, RuleType.PHONE, ["+14155550100"], region="US",
                   source="test")
    after = time.time()
    event = decode_event(value, "US")
    assert event.change.op == "remove" and event.change.values == ("+14155550100",)
    assert event.source == "test"
    assert uuid.UUID(event.id).version == 4
    assert before - 0.001 <= event.ts <= after + 0.001  # stamped at encode (ms precision)
    assert orjson.loads(value)["ts"].endswith("Z")


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("upsert", TENANT, "email", ["a@b.co"]), "schema"),
        (("add", "nope", "email", ["a@b.co"]), "schema"),
        (("add", TENANT, "fax", ["a@b.co"]), "schema"),
        (("add", TENANT, "email", []), "schema"),
        (("add", TENANT, "email", ["a@b.co"] * 10_001), "too_many_values"),
    ],
)
def test_encode_refuses_what_decode_would_reject(args: tuple[Any, ...], code: str) -> None:
    with pytest.raises(InvalidEventError) as info:
        encode(*args, region="US")
    assert info.value.code == code


def test_record_key_must_be_the_tenant() -> None:
    check_key(key_of(TENANT), TENANT)
    check_key(b"*", GLOBAL)
    for key in (None, b"other", key_of(GLOBAL)):
        with pytest.raises(InvalidEventError) as info:
            check_key(key, TENANT)
        assert info.value.code == "key"


def test_every_reason_code_is_declared_and_documented() -> None:
    doc = (Path(events.__file__).parent / "EVENTS.md").read_text()
    documented = set(re.findall(r"^  \| `([a-z_]+)` \| ", doc, flags=re.MULTILINE))
    assert documented == set(events.REASONS) == {
        "json", "schema", "version", "too_many_values", "too_large", "values", "key",
        "partition", "topic", "error",
    }


def test_json_schema_agrees_with_the_decoder() -> None:
    props = SCHEMA["properties"]
    assert set(SCHEMA["required"]) == {"v", "op", "tenant", "type", "values", "id", "ts"}
    assert props["v"]["enum"] == [1, 2, events.VERSION]
    assert props["reason"]["maxLength"] == events.MAX_REASON
    assert set(props["op"]["enum"]) == {"add", "remove"}
    assert props["type"]["enum"] == [t.value for t in RuleType]
    assert props["values"]["maxItems"] == MAX_VALUES_PER_CHANGE
    assert SCHEMA["additionalProperties"] is True
    pattern = re.compile(props["tenant"]["pattern"])
    for tenant in (TENANT, GLOBAL):
        assert pattern.fullmatch(tenant)
    for tenant in (TENANT.upper(), TENANT[:-1], "**", ""):
        assert not pattern.fullmatch(tenant)


def test_decoding_a_full_event_keeps_every_value() -> None:
    """10,000 values (the limit) decode and normalise; speed is bench/'s job, not an assert."""
    value = raw(values=[f"User{i}@Example{i % 97}.com" for i in range(10_000)])
    expected = tuple(f"user{i}@example{i % 97}.com" for i in range(10_000))
    assert decode(value, "US").values == expected


def test_an_event_is_read_in_its_own_region_whatever_the_consumers() -> None:
    """A French national number published with region FR is the same E.164 everywhere."""
    value = raw(type="phone", region="FR", values=["01 42 68 53 00"])
    for consumer_region in ("US", "FR", "GB"):
        assert decode(value, consumer_region).values == ("+33142685300",)


def test_an_event_without_region_is_read_in_the_consumers_region() -> None:
    value = raw(type="phone", values=["020 7946 0958"])
    assert decode(value, "GB").values == ("+442079460958",)
    assert rejected_in(value, "US").code == "values"  # not a valid US number: never stored


def rejected_in(value: bytes, region: str) -> InvalidEventError:
    with pytest.raises(InvalidEventError) as info:
        decode(value, region)
    return info.value


@pytest.mark.parametrize("region", ["fr", "XX", "USA", "", 1, True, ["US"]])
def test_a_bad_region_is_a_schema_error(region: Any) -> None:
    assert rejected(raw(type="phone", region=region, values=["+33142685300"])).code == "schema"


def test_encode_carries_the_region_and_refuses_a_bad_one() -> None:
    value = encode("add", TENANT, "phone", ["+33142685300"], region="FR")
    assert orjson.loads(value)["region"] == "FR"
    assert "region" not in orjson.loads(encode("add", TENANT, "phone", ["+1 415 555 0100"],
                                              region=None))
    with pytest.raises(InvalidEventError) as info:
        encode("add", TENANT, "phone", ["+33142685300"], region="fr")
    assert info.value.code == "schema"


def test_free_mail_domains_need_the_publishers_allowance_in_the_event() -> None:
    assert rejected(raw(type="domain", values=["gmail.com"])).code == "values"
    allowed = raw(type="domain", values=["gmail.com"], allow_freemail=True)
    assert decode(allowed, "US").values == ("gmail.com",)
    assert rejected(raw(type="domain", values=["gmail.com"], allow_freemail="yes")).code == (
        "schema"
    )
    assert orjson.loads(encode("add", TENANT, "domain", ["gmail.com"], region=None,
                                 allow_freemail=True))[
        "allow_freemail"
    ] is True


def test_json_schema_describes_region_and_the_free_mail_allowance() -> None:
    props = SCHEMA["properties"]
    pattern = re.compile(props["region"]["pattern"])
    assert pattern.fullmatch("FR") and not pattern.fullmatch("fr")
    assert "region" not in SCHEMA["required"] and "allow_freemail" not in SCHEMA["required"]
    assert props["allow_freemail"]["type"] == ["boolean", "null"]
