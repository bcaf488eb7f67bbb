"""Company rules on responses: which record names which company, and which records go.

A *record* is an object inside a list (a search row, a business record, a person in `data[]`;
`--policy drop` reads rows and maps of records too, `splice.record_of`). Its fields are its own
members and those of the objects nested in it that are not records themselves (`content`,
`company`, `address`, an email's contact point), read by their key:

* own id (tier 1): `ID_FIELDS`, compared exactly (a number as its digits);
* website / domain (tier 2): `DOMAIN_FIELDS`, as a registrable domain; and every field whose key
  holds `email` (a person's email, a business's emails): the registrable domain of the address
  (free-mail domains name no company and are not asked);
* name and city (tiers 3, 4): `NAME_FIELDS`, `CITY_FIELDS`, in rules/company_name.py's spelling.

The keys of every record join the ONE store lookup (`RuleType.COMPANY`); a record with a denied
key is removed whole under both policies, and with it everything it holds (a company's people).
Values outside every record (one object as the whole body or an NDJSON line, an object under a
key, a map of records) are read as one more record, `OUTSIDE`: there is no list to remove it
from, so a denied one refuses the response (`Filtered.unplaced`: 502), never goes out.

Every id, domain, name and city of a record is read. A record's names and cities are paired
(tier 3), and the pairs are keys: past `_PAIRS_ALWAYS` their number is bounded by
`_PAIRS_PER_FIELD` per name or city read, so the lookup stays linear in the body. A record over
the bound (many names *and* many cities, e.g. a map of hundreds of businesses in hundreds of
cities outside every list) is not half-read: it is `unchecked` and refuses the response like a
denied one (fail closed). So is a record with a name or city too long to read
(`company_name.readable`): a denied name may hide in it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple

from rules.company import Tier, email_domain, external_id, tier_of, website_domain
from rules.company_name import city, company_name, readable
from rules.detect import finder
from rules.detect.jsonspan import Scan
from rules.detect.structure import Reference, Structure
from rules.metrics import COMPANY_MATCHES
from rules.model import Lookup, RuleType

ID_FIELDS = ("openmart_id", "google_place_id", "id", "external_id", "source_id")
"""A record's own id fields: an entry's `external_id` matches one of them (tier 1)."""
DOMAIN_FIELDS = (
    "website", "website_url", "domain", "company_domain", "company_website", "homepage",
)
NAME_FIELDS = ("company_name", "business_name", "name", "company", "organization_name")
CITY_FIELDS = ("city", "company_city", "locality")
_FIELDS: dict[str, str] = {
    **dict.fromkeys(ID_FIELDS, "id"), **dict.fromkeys(DOMAIN_FIELDS, "domain"),
    **dict.fromkeys(NAME_FIELDS, "name"), **dict.fromkeys(CITY_FIELDS, "city"),
}
_NORMAL: dict[str, Callable[[str], str | None]] = {
    "domain": website_domain, "name": company_name, "city": city, "email": email_domain,
}
_STORED = {"email": "domain"}  # an address names its company by its domain
_PAIRS_PER_FIELD = 8
"""Name x city pairs a record may ask per name or city it holds: n x c ≤ 8 (n + c). Any number of
names in at most 8 cities (or the reverse) passes; the old cap of 8 each is inside the bound."""
_PAIRS_ALWAYS = 4096
"""Pairs any record may ask whatever its size (a map of 64 businesses in 64 cities): refusing a
real response costs more than one larger lookup."""
OUTSIDE = -1
"""The record of the values outside every record: no cut removes it, a denial refuses."""


@dataclass(slots=True)
class _Fields:
    """What one record says about its company, in normal forms."""

    found: dict[str, dict[str, None]] = field(default_factory=dict)

    def add(self, kind: str, value: str | None) -> None:
        if value is not None:
            self.found.setdefault(kind, {})[value] = None

    def keys(self) -> tuple[tuple[str, ...], bool]:
        """The keys, highest tier first; False when the name x city pairs are over the bound
        (none of them asked then: the record is refused, not half-read)."""
        get = self.found.get
        keys = [f"id:{v}" for v in get("id", ())] + [f"domain:{d}" for d in get("domain", ())]
        names, cities = get("name", {}), get("city", {})
        pairs = len(names) * len(cities)
        paired = pairs <= max(_PAIRS_ALWAYS, _PAIRS_PER_FIELD * (len(names) + len(cities)))
        if paired:
            keys += [f"namecity:{n}|{c}" for n in names for c in cities]
        keys += [f"name:{n}" for n in names]
        return tuple(keys), paired


class CompanyRecord(NamedTuple):
    """A record (its node in `Scan.nodes`) and the company keys it is looked up by. A NamedTuple,
    not a frozen dataclass: one is made per record of every body (half the cost)."""

    node: int
    values: tuple[str, ...]
    complete: bool = True  # False: too many name x city pairs to ask, or a name too long to read


def company_candidates(scanned: Scan | Structure) -> tuple[CompanyRecord, ...]:
    """Every record that names a company, with its keys (highest tier first); one compiled
    call over a compiled structure (rules/native/src/companies.rs), its records remembered."""
    flat = Reference(scanned) if isinstance(scanned, Scan) else scanned
    if _native_companies is None or isinstance(flat, Reference):
        return candidates_reference(flat)
    memo, _ = _RECORDS.of(finder.FUSED, "") if finder.FUSED else (None, None)
    return tuple(_native_companies(flat, _kind_of, memo, _keys_of, CompanyRecord))


def candidates_and_query(scanned: Scan | Structure) -> tuple[Sequence[CompanyRecord], set[str]]:
    """`company_candidates` and their `query`; over a compiled structure from the one compiled
    call, which adds each distinct keys tuple once (records of one company share theirs), its
    records a compiled `CompanyRecords` (a `CompanyRecord` built per item read; `unchecked` and
    `denied_records` read it without)."""
    flat = Reference(scanned) if isinstance(scanned, Scan) else scanned
    if _native_companies is None or isinstance(flat, Reference):
        found = candidates_reference(flat)
        return found, query(found)
    memo, _ = _RECORDS.of(finder.FUSED, "") if finder.FUSED else (None, None)
    keys: set[str] = set()
    records = _native_companies(flat, _kind_of, memo, _keys_of, CompanyRecord, keys)
    return records, keys


def candidates_reference(flat: Structure) -> tuple[CompanyRecord, ...]:
    """`company_candidates` in Python: the contract of the compiled one."""
    out = []
    for node, fields in _grouped(flat).items():
        keys, complete = _keys_of(tuple(fields))
        if keys or not complete:
            out.append(CompanyRecord(node, keys, complete))
    return tuple(out)


_RECORDS = finder.Memos(lambda _: None, entries=16_384)
"""The compiled records' keys (as many as `_record_keys` caches); one memo, regions aside."""
_native_companies: Callable[..., Sequence[CompanyRecord]] | None = (
    finder._native.companies if finder._native is not None else None
)
_Compiled: object = finder._native.CompanyRecords if finder._native is not None else None


def _grouped(flat: Structure) -> dict[int, list[tuple[str, str | int]]]:
    """Record node → its `(kind, raw value)` fields, in body order. A record's fields mostly
    come in a row: the dict is asked only when the record changes."""
    records: dict[int, list[tuple[str, str | int]]] = {}
    last, fields = None, None
    for record, kind, raw in flat.records(_kind_of):
        if type(raw) is not str and (kind != "id" or type(raw) is not int):
            continue  # no normal form (`_normal`); and 1 == 1.0 must not share a cache entry
        if record != last or fields is None:
            fields = records.get(record)
            if fields is None:
                fields = records[record] = []
            last = record
        fields.append((kind, raw))
    return records


_CACHED_FIELDS = 64  # a larger record (hostile, or a huge one) is read, not kept in the cache
RecordFields = tuple[tuple[str, str | int], ...]  # (kind, raw value) in body order
Keys = tuple[tuple[str, ...], bool]  # the keys, and whether every pair is among them
NormalFields = tuple[tuple[str, str], ...]  # (stored kind, normal form) in body order


def _keys_of(fields: RecordFields) -> Keys:
    return _record_keys(fields) if len(fields) <= _CACHED_FIELDS else _read_keys(fields)


@lru_cache(maxsize=16_384)
def _record_keys(fields: RecordFields) -> Keys:
    """A record's keys, cached per record: responses repeat the same records."""
    return _read_keys(fields)


def _read_keys(fields: RecordFields) -> Keys:
    """A record's keys from its `(kind, raw value)` fields: each value normalised, the keys made
    once per distinct normal fields (a company's people differ by email, not by its domain)."""
    normals: list[tuple[str, str]] = []
    unread = False
    for kind, raw in fields:
        value = _normal(kind, raw)
        if value is not None:
            normals.append((_STORED.get(kind, kind), value))
        unread = unread or (value is None and _unreadable(kind, raw))
    found = tuple(normals)
    keys, paired = _normal_keys(found) if len(found) <= _CACHED_FIELDS else _keys(found)
    return keys, paired and not unread


@lru_cache(maxsize=16_384)
def _normal_keys(normals: NormalFields) -> Keys:
    """`_keys`, cached: the records of one company share their normal fields."""
    return _keys(normals)


def _keys(normals: NormalFields) -> Keys:
    """The keys of a record's normal fields (shared: `_shared`), and whether all are paired."""
    found = _Fields()
    for kind, value in normals:
        found.add(kind, value)
    keys, paired = found.keys()
    return _shared(keys), paired


def _shared(keys: tuple[str, ...]) -> tuple[str, ...]:
    """One tuple for equal keys: a company's records share it, the compiled query adds it once."""
    if len(_SHARED) >= 16_384:
        _SHARED.clear()
    return _SHARED.setdefault(keys, keys)


_SHARED: dict[tuple[str, ...], tuple[str, ...]] = {}


def _unreadable(kind: str, raw: str | int) -> bool:
    """A name or city too long to read (`company_name.readable`) is not "no name": it may hide
    a denied one (`Acme` and 2,000 dots), so the record is refused, not passed."""
    return kind in ("name", "city") and isinstance(raw, str) and not readable(raw)


@lru_cache(maxsize=4096)
def _kind_of(name: str) -> str | None:
    """The field a member key names (id, domain, name, city, email), or None."""
    lowered = name.lower()
    return _FIELDS.get(lowered) or ("email" if "email" in lowered else None)


def _normal(kind: str, value: str | int | float) -> str | None:
    if kind == "id":
        return None if isinstance(value, float) else external_id(value)
    return _NORMAL[kind](value) if isinstance(value, str) else None


def task_keys(task: object) -> tuple[str, ...]:
    """The company keys of one enrichment task (`domain`, `company_name` + `city`), for
    `--company-preflight`: a task for a denied company would only buy records that are removed."""
    if not isinstance(task, dict):
        return ()
    fields = _Fields()
    for name, kind in (("domain", "domain"), ("company_name", "name"), ("city", "city")):
        value = task.get(name)
        if isinstance(value, str):
            fields.add(kind, _NORMAL[kind](value.removeprefix("@")))
    return fields.keys()[0]  # one name, one city: always paired


def query(records: Iterable[CompanyRecord]) -> set[str]:
    """The company keys to ask the store."""
    return {v for record in records for v in record.values}


def unchecked(records: Iterable[CompanyRecord]) -> int:
    """Records whose name x city pairs were too many to ask, or with a name or city too long to
    read: each refuses the response. A compiled `CompanyRecords` counted them when made."""
    if type(records) is _Compiled:
        count: int = records.unchecked()  # type: ignore[attr-defined]  # compiled, untyped
        return count
    return [record.complete for record in records].count(False)


def denied_records(records: Iterable[CompanyRecord], answer: Lookup) -> dict[int, Tier]:
    """Record node → the highest tier at which a rule denies it (the first of its keys the
    answer holds: keys are highest tier first). Compiled over a compiled `CompanyRecords`."""
    denied = answer.get(RuleType.COMPANY, ())
    if not denied:
        return {}
    if type(records) is _Compiled:
        found: dict[int, Tier] = records.denied(denied, tier_of)  # type: ignore[attr-defined]
        return found
    out: dict[int, Tier] = {}
    for record in records:
        hit = next((v for v in record.values if v in denied), None)
        if hit is not None:
            out[record.node] = tier_of(hit)
    return out


def observed(tiers: Iterable[Tier]) -> None:
    """Count matches by tier (`denyproxy_company_matches_total{tier}`); never an identifier."""
    for tier in tiers:
        COMPANY_MATCHES.labels(tier).inc()


def answer_for(answer: dict[RuleType, set[str]], name_only: bool) -> dict[RuleType, set[str]]:
    """The answer the filter acts on: name-only keys count only with the flag."""
    denied = answer.get(RuleType.COMPANY)
    if name_only or not denied:
        return answer
    kept = {v for v in denied if not v.startswith("name:")}
    return {**answer, RuleType.COMPANY: kept}


__all__ = [
    "CITY_FIELDS", "DOMAIN_FIELDS", "ID_FIELDS", "NAME_FIELDS", "OUTSIDE", "CompanyRecord",
    "answer_for", "candidates_and_query", "company_candidates", "denied_records", "observed",
    "query", "task_keys", "unchecked",
]
