"""Payloads (static task results for the upstream NGINX) and the deny rules per API key."""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bench.named_lists import LISTS_KEY, ListsData, make_lists
from rules.model import DEFAULT_REGION, RuleChange, RuleType, tenant_of
from rules.normalize import normalize_all
from tests.fake_openmart import person

Doc = dict[str, Any]  # a decoded JSON task result
KEYS = [f"bench-key-{i}" for i in range(4)]
RULE_TYPES = (RuleType.EMAIL, RuleType.PHONE, RuleType.LINKEDIN)
FIRSTS = ["Jane", "Karl", "Ada", "Alan", "Grace", "Linus", "Barbara", "Edsger", "Donald",
          "Frances", "John", "Margaret"]
LASTS = ["Doe", "Marx", "Lovelace", "Turing", "Hopper", "Torvalds", "Liskov", "Dijkstra",
         "Knuth", "Allen", "Backus", "Hamilton"]


@dataclass
class Data:
    www: Path
    small: list[str]  # request paths
    large: list[str]
    unique: list[str]
    small_bytes: int
    large_bytes: int
    rules_jsonl: Path  # normalised, for denyproxy's memory store
    raw_deny: Path  # `key\tvalue`, raw, for Lua and mitmproxy
    changes: list[RuleChange]
    denied_raw: dict[str, set[str]]  # key -> raw payload values denied (not the filler)
    docs: dict[str, Doc]  # path -> doc
    rule_count: int
    detect: list[str] = dataclasses.field(default_factory=list)  # detection workload paths
    detect_bytes: int = 0
    lists: ListsData | None = None  # issue #13's fifth key and its named lists (Redis only)


def denied_for(key: str, value: str) -> bool:
    """About 1 in 8 of the values in the payloads are denied for each key."""
    return int(hashlib.sha256(f"{key}|{value}".encode()).hexdigest()[:8], 16) % 8 == 0


def _phones(file_no: int, i: int, unique: bool) -> list[str]:
    if unique:  # never repeated across files: every value misses the normalise caches
        area, exchange = _AREAS[file_no % len(_AREAS)], 200 + file_no // len(_AREAS) % 700
        return [f"+1{area}{exchange}{1000 + 2 * i:04d}", f"+1{area}{exchange}{1001 + 2 * i:04d}"]
    return [f"+1512{200 + file_no:03d}{1000 + 2 * i:04d}",
            f"+1737{200 + file_no:03d}{1001 + 2 * i:04d}"]


def contacts(file_no: int, count: int, domain: str, unique: bool = False) -> list[Doc]:
    rows = []
    for i in range(count):
        first, last = FIRSTS[i % len(FIRSTS)], LASTS[(i // len(FIRSTS) + i) % len(LASTS)]
        suffix = str(i) if i >= len(FIRSTS) else ""
        slug = f"{first}{last}{suffix}-{file_no}".lower() if unique else None
        rows.append(person(first, last + suffix, domain, _phones(file_no, i, unique), slug))
    return rows


def detect_row(row: Doc) -> Doc:
    """A person row whose identifiers also stand where only detection finds them: free text,
    unknown keys, object keys, a typed contact point and a phone written as a JSON number
    (deny by default: the proxy must read them all). Its standard fields stay, so the same
    raw values are denied (`identifiers` reads those)."""
    email, linkedin = row["email"]["email"], row["linkedin_url"]
    first, second = (p["phone_number"] for p in row["phones"])
    return row | {
        "bio": f"{row['first_name']} answers at {email} or {second}; profile {linkedin}.",
        "notes": [f"Called {first} on Monday", "prefers e-mail", f"cc: <{email}>"],
        "reach": {"primary_handle": email, "alt": second},
        "seen_by": {email: {"first_seen_at": "2026-11-01", "count": 3}},
        "contacts": [{"type": "phone", "value": first}, {"type": "note", "value": "VIP"}],
        "raw_dial": int(first.lstrip("+")),
    }


def task_doc(task_id: str, people: list[Doc]) -> Doc:
    return {"task_id": task_id, "status": "COMPLETED", "tracking_id": f"trk-{task_id}",
            "data": people}


def identifiers(doc: Doc) -> dict[str, RuleType]:
    """Raw email / phone / LinkedIn strings of a task doc, by type (payload shapes known)."""
    out: dict[str, RuleType] = {}
    for row in doc["data"]:
        out[row["email"]["email"]] = RuleType.EMAIL
        for p in row["phones"]:
            out[p["phone_number"]] = RuleType.PHONE
        out[row["linkedin_url"]] = RuleType.LINKEDIN
    return out


def _tid(prefix: str, seed: int) -> str:
    return f"{prefix}-{hashlib.md5(str(seed).encode()).hexdigest()[:12]}"


Groups = tuple[list[str], list[str], list[str], list[str]]


def make_docs(unique_docs: int) -> tuple[dict[str, Doc], list[str], list[str], list[str],
                                         list[str]]:
    """(path -> doc, small paths, large paths, unique paths, detection-workload paths)."""
    docs: dict[str, Doc] = {}
    groups: Groups = ([], [], [], [])
    specs = ([(_tid(f"s{i:02d}", i), contacts(i, 8, f"acme{i}.com")) for i in range(16)],
             [(_tid(f"l{i}", 100 + i), contacts(50 + i, 200, f"big{i}.com")) for i in range(4)],
             [(f"u{i:05d}", contacts(i, 8, f"u{i}.example.org", unique=True))
              for i in range(unique_docs)],
             [(_tid(f"d{i:02d}", 200 + i), [detect_row(r) for r in contacts(i, 8, f"dt{i}.com")])
              for i in range(16)])
    for group, spec in zip(groups, specs, strict=True):
        for tid, people in spec:
            path = f"/api/v1/task/{tid}"
            docs[path] = task_doc(tid, people)
            group.append(path)
    return docs, *groups


def write_docs(www: Path, docs: dict[str, Doc]) -> dict[str, int]:
    """Serve-ready files under www; their sizes by path."""
    (www / "api" / "v1" / "task").mkdir(parents=True)
    sizes = {}
    for path, doc in docs.items():
        body = orjson.dumps(doc)
        (www / path.lstrip("/")).write_bytes(body)
        sizes[path] = len(body)
    return sizes


RawRules = dict[str, dict[RuleType, list[str]]]


def payload_denials(docs: dict[str, Doc]) -> tuple[dict[str, set[str]], RawRules]:
    """Per key: the raw payload values denied, and the same grouped by rule type."""
    denied: dict[str, set[str]] = {k: set() for k in KEYS}
    by_type: RawRules = {k: collections.defaultdict(list) for k in KEYS}
    for doc in docs.values():
        for value, rule_type in identifiers(doc).items():
            for key in KEYS:
                if denied_for(key, value):
                    denied[key].add(value)
                    by_type[key][rule_type].append(value)
    return denied, by_type


_AREAS = (212, 213, 312, 415, 512, 617, 646, 702, 713, 718, 202, 303, 305, 404, 503, 602, 206)
"""Assigned US area codes: filler phones must be valid numbers, or the normaliser drops them."""


def filler_rules(filler: int) -> dict[RuleType, list[str]]:
    """Synthetic rules that never match (70% emails, 20% phones, 10% LinkedIn URLs)."""
    n_email, n_phone = int(filler * 0.7), int(filler * 0.2)
    return {
        RuleType.EMAIL: [f"filler.{n}@example{n % 997}.com" for n in range(n_email)],
        RuleType.PHONE: [f"+1{_AREAS[n % len(_AREAS)]}{200 + n // 10000 % 700:03d}{n % 10000:04d}"
                         for n in range(n_phone)],
        RuleType.LINKEDIN: [f"https://linkedin.com/in/filler-{n}"
                            for n in range(filler - n_email - n_phone)],
    }


def write_rules(work: Path, by_type: RawRules, filler: int) -> tuple[list[RuleChange], int]:
    """rules.jsonl (normalised) and deny.tsv (raw) in work; the changes and the rule count."""
    filler_raw = filler_rules(filler)
    filler_normal = {t: normalize_all(t, v, DEFAULT_REGION).values for t, v in filler_raw.items()}
    changes: list[RuleChange] = []
    count = 0
    with (work / "rules.jsonl").open("w") as rj, (work / "deny.tsv").open("w") as rd:
        for key in KEYS:
            for rule_type in RULE_TYPES:
                result = normalize_all(rule_type, by_type[key][rule_type], DEFAULT_REGION)
                own, bad = result.values, result.rejected
                assert not bad, bad
                values = tuple(own) + tuple(filler_normal[rule_type])
                changes.append(RuleChange("add", tenant_of(key), rule_type, values))
                rj.write(json.dumps({"tenant": tenant_of(key), "type": rule_type.value,
                                     "values": list(values)}) + "\n")
                count += len(values)
                rd.writelines(f"{key}\t{raw}\n"
                              for raw in by_type[key][rule_type] + filler_raw[rule_type])
    return changes, count


def lists_denied(docs: dict[str, Doc], paths: list[str]) -> dict[str, RuleType]:
    """The raw values of these docs denied for LISTS_KEY (about 1 in 8, as for every key)."""
    found = (pair for path in paths for pair in identifiers(docs[path]).items())
    return {value: rule_type for value, rule_type in found if denied_for(LISTS_KEY, value)}


def make_data(work: Path, filler: int, unique_docs: int, list_entries: int = 0) -> Data:
    """Payloads and rules; with `list_entries`, also 5 lists of that many for LISTS_KEY."""
    docs, small, large, unique, detect = make_docs(unique_docs)
    sizes = write_docs(work / "www", docs)
    denied_raw, by_type = payload_denials(docs)
    changes, count = write_rules(work, by_type, filler)
    lists = make_lists(lists_denied(docs, small), list_entries) if list_entries else None
    return Data(work / "www", small, large, unique, sizes[small[0]], sizes[large[0]],
                work / "rules.jsonl", work / "deny.tsv", changes, denied_raw, docs, count,
                detect, sizes[detect[0]], lists)
