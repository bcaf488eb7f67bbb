"""Rules as whole records: read back after a write (for the changelog), restored by a rebuild.

A restored rule gets exactly the keys the catalogue script gives it (rules/store/
catalogue_script.py): its set membership, record, listing indexes and expiry, so a store
rebuilt from the changelog equals the live one (but for `enforced_at` and suppression counts,
which belong to the store that applied and served the rule).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.typing import EncodableT, FieldT

from rules.changelog import RECORD_FIELDS, Entry, RuleRecord
from rules.events import key_of, partition_of
from rules.model import RuleChange, RuleType
from rules.store.catalogue_script import rule_id, scope_name
from rules.store.keys import (
    created_key,
    expires_key,
    record_key,
    types_key,
    values_key,
)
from rules.store.keys import rule_key as set_key

Rule = tuple[str, RuleType, str]
"""scope, type, normal form."""


def touched(changes: Sequence[RuleChange]) -> list[Rule]:
    """Every rule a slice changed, once, in first-seen order."""
    seen: dict[Rule, None] = {}
    for change in changes:
        for value in change.values:
            seen[(change.tenant, change.type, value)] = None
    return list(seen)


async def entries(
    client: aioredis.Redis, rules: Sequence[Rule], partitions: int, chunk: int = 10_000
) -> list[Entry]:
    """The changelog entries of `rules` as the store holds them now: a record, or a tombstone
    for a rule that is gone (removed, or added already expired)."""
    out: list[Entry] = []
    for i in range(0, len(rules), chunk):
        part = rules[i : i + chunk]
        pipe = client.pipeline(transaction=False)
        for scope, rule_type, value in part:
            pipe.hmget(record_key(scope, rule_id(scope, rule_type, value)), *RECORD_FIELDS)
        for (scope, rule_type, value), got in zip(part, await pipe.execute(), strict=True):
            out.append(_entry(scope, rule_type, value, got, partitions))
    return out


def _entry(
    scope: str, rule_type: RuleType, value: str, got: list[str | None], partitions: int
) -> Entry:
    record = RuleRecord(scope, rule_type, value)
    if got[0] is None:  # no created_at: no record
        return record.key, None
    fields = {k: v for k, v in zip(RECORD_FIELDS, got, strict=True) if v is not None}
    p = partition_of(key_of(scope), partitions)
    return record.key, RuleRecord(scope, rule_type, value, fields, p)


def queue_restore(pipe: Pipeline, record: RuleRecord, now_ms: int) -> None:
    """The keys the catalogue script would have left for this record."""
    scope, rule_type, value = record.scope, record.type, record.value
    rid = rule_id(scope, rule_type, value)
    created = int(record.fields.get("created_at") or now_ms)
    fields: dict[FieldT, EncodableT] = {k: record.fields.get(k, "") for k in RECORD_FIELDS}
    fields.update(id=rid, type=rule_type.value, value=value, scope=scope_name(scope))
    fields.update(suppressions=0, enforced_at=now_ms)
    pipe.hset(record_key(scope, rid), mapping=fields)
    pipe.sadd(set_key(scope, rule_type), value)
    pipe.zadd(created_key(scope), {rid: created})
    pipe.zadd(created_key(scope, rule_type), {rid: created})
    pipe.zadd(values_key(scope), {f"{value}\0{rule_type.value}": 0})
    pipe.zadd(types_key(scope), {f"{rule_type.value}\0{value}": 0})
    if expires := record.fields.get("expires_at"):
        pipe.zadd(expires_key(scope, rule_type), {value: int(expires)})


async def restore(client: aioredis.Redis, records: Iterable[RuleRecord], chunk: int = 2_000) -> int:
    """Write records into a generation that is not serving yet; the number written."""
    now_ms, count = round(time.time() * 1000), 0
    pipe = client.pipeline(transaction=False)
    for record in records:
        queue_restore(pipe, record, now_ms)
        count += 1
        if count % chunk == 0:
            await pipe.execute()
    await pipe.execute()
    return count
