"""Reading the admin API's requests: JSON bodies, names, ids, paging; errors as 400/404."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from proxy.errors import BadRequestError, NotFoundError, PayloadTooLargeError
from rules.catalogue.record import ListQuery
from rules.lists.entries import MAX_ENTRIES
from rules.lists.model import MAX_DESCRIPTION, MAX_NAME
from rules.model import RuleType, is_tenant, tenant_of
from rules.scopes import check_list_id

MAX_PAGE = 1_000


async def json_object(request: web.Request) -> dict[str, Any]:
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        raise BadRequestError("body is not valid JSON") from None
    if not isinstance(body, dict):
        raise BadRequestError("body must be a JSON object")
    return body


def list_id(request: web.Request) -> str:
    """The path's list id; a malformed one names no list (404, like an unknown one)."""
    try:
        return check_list_id(request.match_info["list_id"])
    except ValueError:
        raise NotFoundError("list not found") from None


def name(body: dict[str, Any], *, required: bool) -> str | None:
    value = body.get("name")
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME:
        raise BadRequestError(f"name must be a string of 1 to {MAX_NAME} characters")
    return value.strip()


def description(body: dict[str, Any]) -> str | None:
    value = body.get("description")
    if value is not None and (not isinstance(value, str) or len(value) > MAX_DESCRIPTION):
        raise BadRequestError(f"description must be a string of at most {MAX_DESCRIPTION}"
                              " characters")
    return value


def strings(body: dict[str, Any], field: str, limit: int = MAX_ENTRIES) -> list[Any] | None:
    """An optional array field of at most `limit` items (413 beyond)."""
    value = body.get(field)
    if value is None:
        return None
    if not isinstance(value, list):
        raise BadRequestError(f"{field} must be an array")
    if len(value) > limit:
        raise PayloadTooLargeError(f"{field} has {len(value)} items; at most {limit} per call")
    return value


def tenants(body: dict[str, Any]) -> list[str]:
    """`api_keys` (hashed here, never kept) and `tenants` (64 hex), together, sorted."""
    keys, ids = strings(body, "api_keys"), strings(body, "tenants")
    if keys is None and ids is None:
        raise BadRequestError("give api_keys and/or tenants (an empty array unassigns all)")
    if not all(isinstance(k, str) and k.strip() for k in keys or ()):
        raise BadRequestError("api_keys must be non-empty strings")
    if not all(isinstance(t, str) and len(t) == 64 and is_tenant(t) for t in ids or ()):
        raise BadRequestError("tenants must be 64 lowercase hex digits each")
    return sorted({tenant_of(k) for k in keys or ()} | set(ids or ()))


def page_query(request: web.Request) -> ListQuery:
    query = request.query
    kind = query.get("type")
    if kind is not None and kind not in tuple(RuleType):
        raise BadRequestError(f"type must be one of {', '.join(t.value for t in RuleType)}")
    limit, offset = _int(query.get("limit"), 50, "limit"), _int(query.get("offset"), 0, "offset")
    if not 1 <= limit <= MAX_PAGE:
        raise BadRequestError(f"limit must be 1 to {MAX_PAGE}")
    search = query.get("search") or None
    return ListQuery(type=None if kind is None else RuleType(kind), search=search, limit=limit,
                     offset=offset)


def _int(text: str | None, default: int, field: str) -> int:
    if text is None:
        return default
    if not text.isdigit():
        raise BadRequestError(f"{field} must be a non-negative integer")
    return int(text)
