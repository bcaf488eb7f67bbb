"""`GET /api/v2/deny-lists` on the proxy port: the named lists assigned to the calling key."""

from __future__ import annotations

import asyncio

from aiohttp import web

from proxy.errors import StoreError, UnauthorizedError
from proxy.forward import api_key
from rules.model import tenant_of
from rules.store import RuleStore, StoreUnavailableError

PATH = "/api/v2/deny-lists"
LISTS_STORE = web.AppKey("lists_store", RuleStore)
TIMEOUT = web.AppKey("lists_timeout", float)


async def deny_lists(request: web.Request) -> web.Response:
    """id, name, description and entry count of each list; never its entries or other keys."""
    key = api_key(request)
    if not key:
        raise UnauthorizedError("Invalid API Key")
    store = request.app[LISTS_STORE]
    try:
        async with asyncio.timeout(request.app[TIMEOUT]):
            held = await store.lists.assigned(tenant_of(key))
            infos = await store.lists.lists(held.ids)
    except (StoreUnavailableError, TimeoutError) as exc:
        raise StoreError("suppression store unavailable") from exc
    data = [{"id": i.id, "name": i.name, "description": i.description,
             "entry_count": i.entry_count} for i in infos]
    return web.json_response({"data": data})


ROUTES = [web.get(PATH, deny_lists)]
