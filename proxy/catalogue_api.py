"""The rule catalogue per API key (issue #12): list, get, delete, bulk-delete, export.

Same auth and `{"detail"}` errors as the Openmart-compatible calls (proxy/rules_api.py); a key
only ever reaches its own records: ids are derived from (scope, type, value) and looked up
under the caller's scope, so another key's id is simply unknown (404). Deletes go the same way
as the rules API's removes (the store's script, or a Kafka event awaited until enforced), so
sets and records never disagree.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import orjson
from aiohttp import web

from proxy.catalogue_export import stream_export
from proxy.catalogue_input import change_meta
from proxy.errors import BadRequestError, ProxyError, StoreError
from proxy.rules_api import PATH, RulesApi, _limit_response
from rules.catalogue.of import Catalogue
from rules.catalogue.record import MAX_LIMIT, ListQuery, Record, SortBy
from rules.model import MAX_VALUES_PER_CHANGE, RuleChange, RuleType
from rules.store import LimitError, StoreUnavailableError

T = TypeVar("T")
_ID = re.compile(r"[0-9a-f]{40}")
_SORTS = ("created_at", "value", "type")
MAX_SEARCH = 200


class NotFoundError(ProxyError):
    status = 404


@dataclass(slots=True)
class CatalogueApi:
    rules: RulesApi
    catalogue: Catalogue

    async def listing(self, request: web.Request) -> web.Response:
        tenant = await self._reader(request)
        query = list_query(request.query)
        page = await self._store(self.catalogue.page(tenant, query))
        more = query.offset + len(page.records) < page.total
        pagination = {"total": page.total, "limit": query.limit, "offset": query.offset,
                      "has_more": more}
        return _json({"data": [r.as_json() for r in page.records], "pagination": pagination})

    async def get(self, request: web.Request) -> web.Response:
        record = await self._record(request, await self._reader(request))
        return _json(record.as_json())

    async def delete(self, request: web.Request) -> web.Response:
        tenant = await self.rules.tenant(request)
        record = await self._record(request, tenant)
        try:
            await self._remove(tenant, [record])
        except LimitError as exc:
            return _limit_response(exc)
        return _json({"status": "success"})

    async def bulk_delete(self, request: web.Request) -> web.Response:
        tenant = await self.rules.tenant(request)
        body = await _body(request)
        try:
            if body.get("all") is True:
                deleted = await self._delete_all(tenant, body)
            else:
                deleted = await self._delete_ids(tenant, _ids(body.get("ids"), "ids"))
        except LimitError as exc:
            return _limit_response(exc)
        return _json({"status": "success", "deleted": deleted})

    async def export(self, request: web.Request) -> web.StreamResponse:
        tenant = await self._reader(request)
        form = request.query.get("format", "ndjson")
        if form not in ("csv", "ndjson"):
            raise BadRequestError("format must be csv or ndjson")
        chunks = self.catalogue.export(tenant, _type(request.query.get("type")))
        return await stream_export(request, chunks, form)

    async def _reader(self, request: web.Request) -> str:
        """The caller's scope, once the store holds a complete rule set: a flushed or
        rebuilding store would list a partial catalogue as if it were the whole (503)."""
        tenant = await self.rules.tenant(request)
        if not await self.rules.forwarder.store.ready():
            raise StoreError("suppression store unavailable or still loading rules")
        return tenant

    async def _record(self, request: web.Request, tenant: str) -> Record:
        rule = request.match_info["id"]
        found = await self._store(self.catalogue.get(tenant, rule)) if _ID.fullmatch(rule) else None
        if found is None:
            raise NotFoundError("no such deny rule")
        return found

    async def _delete_ids(self, tenant: str, ids: list[str]) -> int:
        records = await self._store(self.catalogue.records(tenant, list(dict.fromkeys(ids))))
        await self._remove(tenant, records)
        return len(records)

    async def _delete_all(self, tenant: str, body: dict[str, Any]) -> int:
        """Every record (of a type) but `except`, removed a chunk at a time as it is scanned."""
        keep = set(_ids(body.get("except", []), "except"))
        rule_type = _type(body.get("type"))
        deleted, doomed = 0, []
        chunks: AsyncIterator[list[Record]] = self.catalogue.export(tenant, rule_type)
        async for chunk in chunks:  # removing what the scan has passed does not disturb it
            doomed += [r for r in chunk if r.id not in keep]
            if len(doomed) >= MAX_VALUES_PER_CHANGE:  # few, full writes: the write limit
                await self._remove(tenant, doomed)
                deleted, doomed = deleted + len(doomed), []
        await self._remove(tenant, doomed)
        return deleted + len(doomed)

    async def _remove(self, tenant: str, records: Iterable[Record]) -> None:
        by_type: dict[RuleType, list[str]] = {}
        for record in records:
            by_type.setdefault(record.type, []).append(record.value)
        for rule_type, values in by_type.items():
            for start in range(0, len(values), MAX_VALUES_PER_CHANGE):
                part = tuple(values[start : start + MAX_VALUES_PER_CHANGE])
                meta = change_meta({})
                await self.rules.submit(RuleChange("remove", tenant, rule_type, part, meta))

    async def _store(self, awaitable: Awaitable[T]) -> T:
        try:
            return await awaitable
        except StoreUnavailableError as exc:
            raise StoreError("suppression store unavailable") from exc


def list_query(params: Any) -> ListQuery:
    """The listing's query string, checked; 400 with a detail for anything out of range."""
    sort_by = params.get("sort_by", "created_at")
    order = params.get("sort_order", "desc")
    if sort_by not in _SORTS:
        raise BadRequestError("sort_by must be one of created_at, value, type")
    if order not in ("asc", "desc"):
        raise BadRequestError("sort_order must be asc or desc")
    limit = _int(params.get("limit", "50"), "limit", 1, MAX_LIMIT)
    offset = _int(params.get("offset", "0"), "offset", 0, 10**9)
    search = params.get("search") or None
    if search is not None and len(search) > MAX_SEARCH:
        raise BadRequestError(f"search must be at most {MAX_SEARCH} characters")
    kind = _type(params.get("type"))
    return ListQuery(kind, search, cast(SortBy, sort_by), order == "desc", limit, offset)


def _int(text: str, name: str, low: int, high: int) -> int:
    if not text.isdigit() or not low <= int(text) <= high:
        raise BadRequestError(f"{name} must be an integer from {low} to {high}")
    return int(text)


def _type(name: Any) -> RuleType | None:
    if name is None or name == "":
        return None
    if name not in RuleType.__members__.values():
        raise BadRequestError(f"type must be one of {', '.join(t.value for t in RuleType)}")
    return RuleType(name)


def _ids(value: Any, name: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(i, str) for i in value):
        raise BadRequestError(f"{name} must be an array of rule ids")
    if len(value) > MAX_VALUES_PER_CHANGE:
        raise BadRequestError(f"{name} has more than {MAX_VALUES_PER_CHANGE} ids")
    return value


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        raise BadRequestError("body is not valid JSON") from None
    if not isinstance(body, dict):
        raise BadRequestError('body must be {"ids": [...]} or {"all": true, "except": [...]}')
    return body


def _json(body: Any) -> web.Response:
    return web.Response(body=orjson.dumps(body), content_type="application/json")


CATALOGUE_API = web.AppKey("catalogue_api", CatalogueApi)


def _handler(name: str) -> Any:
    async def handle(request: web.Request) -> web.StreamResponse:
        method = getattr(request.app[CATALOGUE_API], name)
        return cast(web.StreamResponse, await method(request))

    return handle


ROUTES = [
    web.get(PATH, _handler("listing")),
    web.get(f"{PATH}/export", _handler("export")),
    web.post(f"{PATH}/bulk-delete", _handler("bulk_delete")),
    web.get(PATH + "/{id}", _handler("get")),
    web.delete(PATH + "/{id}", _handler("delete")),
]
