"""The admin API of named lists (issue #13), on the admin listener, shapes after OpenProspect.

Off unless an admin token is configured (--admin-token, DENYPROXY_ADMIN_TOKEN or
--admin-token-file): then its routes do not exist (404). A call without the token, or with
another, is 401; the token is compared in constant time and never logged.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from proxy import admin_input as read
from proxy.admin_lists import ListAdmin
from proxy.errors import BadRequestError, NotFoundError, ProxyError, UnauthorizedError
from proxy.settings import Settings, SettingsError
from rules.lists.entries import parse_entries, read_entry
from rules.lists.model import ListInfo
from rules.model import ListChange, RuleChange, RuleType, is_tenant
from rules.scopes import list_scope, new_list_id

PREFIX = "/admin/v1"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def admin_token(settings: Settings) -> str | None:
    """The configured token (its file read once, at start), or None: the API is off."""
    if settings.admin_token:
        return settings.admin_token
    if settings.admin_token_file is None:
        return None
    try:
        token = Path(settings.admin_token_file).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SettingsError(f"--admin-token-file: cannot read it ({type(exc).__name__})") from None
    if not token:
        raise SettingsError("--admin-token-file: the file is empty")
    return token


@dataclass(slots=True)
class AdminApi:
    token: bytes
    lists: ListAdmin
    region: str

    def guarded(self, handler: Handler) -> Handler:
        """The token checked first; errors mapped to `{"detail"}` (this listener has no edge
        middleware: its other routes never fail that way)."""
        async def checked(request: web.Request) -> web.StreamResponse:
            try:
                self._authorised(request)
                return await handler(request)
            except ProxyError as exc:
                headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
                return web.json_response({"detail": exc.detail}, status=exc.status,
                                         headers=headers)
            except web.HTTPException as exc:  # a body over the limit, from aiohttp
                return web.json_response({"detail": exc.reason}, status=exc.status)

        return checked

    def _authorised(self, request: web.Request) -> None:
        """Constant-time: the answer's timing tells nothing of the token."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        ok = hmac.compare_digest(token.strip().encode(), self.token)
        if scheme.lower() != "bearer" or not ok:
            raise UnauthorizedError("a valid admin bearer token is required")

    async def create(self, request: web.Request) -> web.Response:
        body = await read.json_object(request)
        name = read.name(body, required=True)
        info = await self.lists.create(new_list_id(), name or "", read.description(body))
        return web.json_response(info.to_json(), status=201)

    async def all(self, request: web.Request) -> web.Response:
        return _data(await self.lists.read(self.lists.store.lists.lists()))

    async def one(self, request: web.Request) -> web.Response:
        return web.json_response((await self.lists.get(read.list_id(request))).to_json())

    async def update(self, request: web.Request) -> web.Response:
        list_id = read.list_id(request)
        await self.lists.get(list_id)
        body = await read.json_object(request)
        name, description = read.name(body, required=False), read.description(body)
        if name is None and description is None:
            raise BadRequestError("give name and/or description")
        await self.lists.submit([ListChange("update", list_id, _now(), name, description)])
        return web.json_response((await self.lists.get(list_id)).to_json())

    async def delete(self, request: web.Request) -> web.Response:
        list_id = read.list_id(request)
        await self.lists.get(list_id)
        await self.lists.submit([ListChange("delete", list_id, _now())])
        return web.Response(status=204)

    async def add_entries(self, request: web.Request) -> web.Response:
        list_id = read.list_id(request)
        await self.lists.get(list_id)
        raw = read.strings(await read.json_object(request), "entries")
        if not raw:
            raise BadRequestError("entries must be a non-empty array")
        entries = parse_entries(raw, self.region)
        added = await self.lists.add(list_id, entries)
        held = sum(len(v) for v in entries.by_type.values()) - added
        failed = [{"index": i, "detail": why} for i, why in entries.failed]
        answer = {"added": added, "duplicates": entries.repeated + held, "failed": failed}
        return web.json_response(answer, status=201)

    async def entries(self, request: web.Request) -> web.Response:
        list_id = read.list_id(request)
        await self.lists.get(list_id)
        query = read.page_query(request)
        page = await self.lists.read(self.lists.catalogue.page(list_scope(list_id), query))
        more = query.offset + len(page.records) < page.total
        pagination = {"total": page.total, "limit": query.limit, "offset": query.offset,
                      "has_more": more}
        data = [record.as_json() for record in page.records]
        return web.json_response({"data": data, "pagination": pagination})

    async def remove_entries(self, request: web.Request) -> web.Response:
        list_id = read.list_id(request)
        await self.lists.get(list_id)
        body = await read.json_object(request)
        found = await self._named(list_id, body)
        scope = list_scope(list_id)
        held = await self.lists.read(self.lists.store.lookup(scope, found, include_global=False))
        changes = [RuleChange("remove", scope, t, tuple(sorted(v))) for t, v in held.items()]
        await self.lists.submit(changes)
        return web.json_response({"deleted": sum(len(v) for v in held.values())})

    async def _named(self, list_id: str, body: dict[str, object]) -> dict[RuleType, set[str]]:
        """The entries named by record `ids` or by `values` (read as when they were added)."""
        ids, values = read.strings(body, "ids"), read.strings(body, "values")
        if (ids is None) == (values is None):
            raise BadRequestError("give either ids or values")
        found: dict[RuleType, set[str]] = {}
        if ids is not None:
            wanted = [i for i in ids if isinstance(i, str)]
            records = await self.lists.read(
                self.lists.catalogue.records(list_scope(list_id), wanted))
            for record in records:
                found.setdefault(record.type, set()).add(record.value)
        for value in values or ():
            entry = read_entry(value, self.region)
            for rule_type, normal in [] if isinstance(entry, str) else entry:
                found.setdefault(rule_type, set()).add(normal)
        return found

    async def assign(self, request: web.Request) -> web.Response:
        list_id = read.list_id(request)
        await self.lists.get(list_id)
        tenants = read.tenants(await read.json_object(request))
        change = ListChange("assign", list_id, _now(), tenants=tuple(tenants))
        await self.lists.submit([change])
        return web.json_response({"tenants": tenants})

    async def tenant_lists(self, request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        if len(tenant) != 64 or not is_tenant(tenant):
            raise NotFoundError("tenant must be 64 lowercase hex digits")
        return _data(await self._of_tenant(tenant))

    async def _of_tenant(self, tenant: str) -> list[ListInfo]:
        reader = self.lists.store.lists
        held = await self.lists.read(reader.assigned(tenant))
        return await self.lists.read(reader.lists(held.ids))

    def routes(self) -> list[web.RouteDef]:
        g, lists, one = self.guarded, f"{PREFIX}/lists", f"{PREFIX}/lists/{{list_id}}"
        return [
            web.post(lists, g(self.create)), web.get(lists, g(self.all)),
            web.get(one, g(self.one)), web.patch(one, g(self.update)),
            web.delete(one, g(self.delete)),
            web.post(f"{one}/entries", g(self.add_entries)),
            web.get(f"{one}/entries", g(self.entries)),
            web.delete(f"{one}/entries", g(self.remove_entries)),
            web.put(f"{one}/assignments", g(self.assign)),
            web.get(f"{PREFIX}/tenants/{{tenant}}/lists", g(self.tenant_lists)),
        ]


def _data(infos: list[ListInfo]) -> web.Response:
    return web.json_response({"data": [info.to_json() for info in infos]})


def _now() -> float:
    return time.time()
