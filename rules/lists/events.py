"""Schema v3 on the wire (rules/EVENTS.md): list events, and rule events of a list or campaign.

A rule event of a list carries `"tenant": "*"` and `"list": "<id>"`; one of a campaign its
key's tenant and `"campaign": "<id>"`. A list event has an op `list.create|update|delete|
assign`. All of them are v3, so a consumer from before lists dead-letters them (`version`)
rather than apply a list's entries as global rules. List events are keyed `*`: all of a
deployment's list changes and list entries sit in the global rules' partition, in order.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from rules.event_fields import InvalidEventError, event_id, field, format_ts, parse_ts
from rules.lists.model import MAX_DESCRIPTION, MAX_NAME
from rules.model import GLOBAL, ListChange, ListOp, is_tenant
from rules.scopes import LIST_PREFIX, campaign_scope, check_list_id, list_scope

LIST_VERSION = 3
LIST_OPS: dict[str, ListOp] = {f"list.{op}": op for op in ("create", "update", "delete", "assign")}
MAX_TENANTS = 10_000


def wire_scope(scope: str) -> tuple[str, dict[str, str]]:
    """The record's `tenant` (and key) and the fields that name a list or campaign scope."""
    if scope.startswith(LIST_PREFIX):
        return GLOBAL, {"list": scope.removeprefix(LIST_PREFIX)}
    tenant, sep, campaign = scope.partition("/")
    return (tenant, {"campaign": campaign}) if sep else (scope, {})


def read_scope(body: dict[str, Any], tenant: str, version: int) -> str:
    """The scope a rule event writes: its tenant's, or that of its `list` / `campaign`."""
    named, campaign = body.get("list"), body.get("campaign")
    if named is None and campaign is None:
        return tenant
    if version < LIST_VERSION:
        raise InvalidEventError("schema", "list and campaign need v 3")
    try:
        if named is not None and campaign is None and tenant == GLOBAL:
            return list_scope(_string(named, "list"))
        if campaign is not None and named is None:
            return campaign_scope(tenant, _string(campaign, "campaign"))
    except ValueError as exc:
        raise InvalidEventError("schema", str(exc)) from None
    raise InvalidEventError("schema", "list needs tenant *, campaign a key's tenant; not both")


def _string(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise InvalidEventError("schema", f"{name} must be a string")
    return value


@dataclass(frozen=True, slots=True)
class ParsedListEvent:
    change: ListChange
    id: str
    ts: float
    source: str | None
    tenant: str = GLOBAL


def parse_list_event(body: dict[str, Any], op: str) -> ParsedListEvent:
    try:
        list_id = check_list_id(_string(body.get("list"), "list"))
    except ValueError as exc:
        raise InvalidEventError("schema", str(exc)) from None
    if field(body, "tenant", str) != GLOBAL:
        raise InvalidEventError("schema", "a list event's tenant must be *")
    ident, ts = event_id(field(body, "id", str)), parse_ts(field(body, "ts", str))
    source = body.get("source")
    if source is not None and not isinstance(source, str):
        raise InvalidEventError("schema", "source must be a string")
    name, description = _text(body, "name", MAX_NAME), _text(body, "description", MAX_DESCRIPTION)
    if LIST_OPS[op] == "create" and not name:
        raise InvalidEventError("schema", "list.create needs a name")
    tenants = _tenants(body) if LIST_OPS[op] == "assign" else ()
    change = ListChange(LIST_OPS[op], list_id, ts, name, description, tenants)
    return ParsedListEvent(change, ident, ts, source)


def _text(body: dict[str, Any], name: str, limit: int) -> str | None:
    value = body.get(name)
    if value is not None and (not isinstance(value, str) or len(value) > limit):
        raise InvalidEventError("schema", f"{name} must be a string of ≤ {limit} characters")
    return value


def _tenants(body: dict[str, Any]) -> tuple[str, ...]:
    tenants = field(body, "tenants", list)
    if len(tenants) > MAX_TENANTS:
        raise InvalidEventError("too_many_values", f"{len(tenants)} tenants (≤ {MAX_TENANTS})")
    if not all(isinstance(t, str) and t != GLOBAL and is_tenant(t) for t in tenants):
        raise InvalidEventError("schema", "tenants must be 64 lowercase hex digits each")
    return tuple(sorted(set(tenants)))


def encode_list(
    change: ListChange, *, source: str | None = None, ts: datetime | None = None
) -> bytes:
    """The JSON value of one list event (keyed `*`); checked as parse_list_event reads it."""
    body: dict[str, Any] = {
        "v": LIST_VERSION, "op": f"list.{change.op}", "tenant": GLOBAL, "list": change.list_id,
        "id": str(uuid.uuid4()), "ts": format_ts(ts or datetime.now(UTC)),
    }
    for name in ("name", "description"):
        if (value := getattr(change, name)) is not None:
            body[name] = value
    if change.op == "assign":
        body["tenants"] = list(change.tenants)
    if source is not None:
        body["source"] = source
    parse_list_event(body, body["op"])
    return orjson.dumps(body)
