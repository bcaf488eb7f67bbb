"""Openmart's deny-rules endpoints, served by the proxy itself (seed 003), per API key.

Writes go through Kafka when it is configured (every proxy of the deployment then enforces
them) and are answered only once this proxy's store shows them applied: after a 200, the next
enrichment response through any proxy sharing the store is filtered by the new rule.
Each key's writes are limited (rules held, writes per minute), checked atomically in the store.
A write whose outcome is unknown (a timeout) says so; `/check` reads the global rules only for
a key validated upstream (--validate-keys), else only the key's own rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from multidict import CIMultiDict

from proxy.catalogue_input import change_meta
from proxy.company_input import CompanyInput, company_input
from proxy.errors import (
    BadRequestError,
    ProxyError,
    PublishError,
    StoreError,
    UnauthorizedError,
    UpstreamUnavailableError,
)
from proxy.forward import CAMPAIGN, Forwarder, api_key
from proxy.tenant import campaign_of
from proxy.upstream_response import UpstreamError
from rules.detect import company
from rules.detect.match import is_denied, query_for
from rules.model import (
    MAX_VALUES_PER_CHANGE,
    RULE_TYPES,
    ChangeMeta,
    Lookup,
    Op,
    RuleChange,
    RuleType,
    tenant_of,
)
from rules.normalize import normalize_all
from rules.scopes import campaign_scope
from rules.store import (
    LimitError,
    Limits,
    StoreFedByKafkaError,
    StoreNotInitialisedError,
    StoreTimeoutError,
    StoreUnavailableError,
    TooManyWritesError,
)

PATH = "/api/v2/deny-rules"
_TYPE_ERROR = f"Type must be one of [{' '.join(t.value for t in RULE_TYPES)}]"
_FORWARDED_TYPES = (RuleType.EMAIL, RuleType.PHONE)  # the types Openmart itself knows
_KEY_CACHE_SECONDS = 60.0
UNKNOWN = "outcome unknown; retry is safe: adds and removes are idempotent"


class OutcomeUnknownError(ProxyError):
    """A write timed out: it may or may not have been applied."""

    status = 504


@dataclass(frozen=True, slots=True)
class RuleRequest:
    tenant: str
    type: RuleType
    raw: list[str]
    normal: list[str]  # aligned with raw
    meta: ChangeMeta | None = None
    company: CompanyInput | None = None  # type company: the entries, grouped into changes

    @property
    def values(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.normal))


@dataclass(slots=True)
class RulesApi:
    forwarder: Forwarder
    publisher: Any | None = None  # rules.publisher.RulePublisher when Kafka is configured
    _keys: dict[str, float] = field(default_factory=dict)

    async def create(self, request: web.Request) -> web.Response:
        return await self._change(request, "add")

    async def delete(self, request: web.Request) -> web.Response:
        return await self._change(request, "remove")

    async def check(self, request: web.Request) -> web.Response:
        """Global rules only for a key validated upstream: a made-up key must not read them."""
        rule = await self._parse(request)
        query = query_for((rule.type, v) for v in rule.values)
        if self.forwarder.settings.validate_keys:  # _parse validated the key
            answer = await self.forwarder.lookup(request, query)
        else:
            answer = await self._own_rules(rule.tenant, query)
        answer = company.answer_for(answer, self.forwarder.settings.company_name_only_match)
        denied: dict[str, bool] = {}
        for raw, normal in zip(rule.raw, rule.normal, strict=True):  # a company: any of its keys
            denied[raw] = denied.get(raw, False) or is_denied(rule.type, normal, answer)
        return web.json_response({"denied": denied})

    async def _own_rules(self, tenant: str, query: Lookup) -> dict[RuleType, set[str]]:
        try:
            async with asyncio.timeout(self.forwarder.settings.store_timeout):
                return await self.forwarder.store.lookup(tenant, query, include_global=False)
        except (StoreUnavailableError, TimeoutError) as exc:
            raise StoreError("suppression store unavailable") from exc

    @property
    def limits(self) -> Limits:
        settings = self.forwarder.settings
        return Limits(settings.max_rules_per_key, settings.rule_writes_per_minute)

    async def _change(self, request: web.Request, op: Op) -> web.Response:
        rule = await self._parse(request)
        changes = [RuleChange(op, rule.tenant, rule.type, rule.values, rule.meta)]
        if rule.company is not None and rule.meta is not None:
            changes = rule.company.changes(op, rule.tenant, rule.meta)
        try:
            for change in changes:
                await self.submit(change)
        except LimitError as exc:
            return _limit_response(exc)
        if self.forwarder.settings.forward_deny_rules and rule.type in _FORWARDED_TYPES:
            await self._forward(request)
        return web.json_response({"status": "success"})

    async def submit(self, change: RuleChange) -> None:
        """Into the store, or published and awaited; LimitError when a limit refuses it."""
        if self.publisher is None:
            await self._write(change)
        else:
            reservation = await self._admit(change)
            await self._publish_and_wait(self.publisher, change)
            if reservation is not None:  # applied: held now; on failure it expires (a minute)
                with contextlib.suppress(StoreUnavailableError):
                    await self.forwarder.store.release(change.tenant, reservation)

    async def tenant(self, request: web.Request) -> str:
        """The caller's scope, after the key is checked (upstream with --validate-keys)."""
        key = api_key(request)
        if not key:
            raise UnauthorizedError("Invalid API Key")
        if self.forwarder.settings.validate_keys:
            await self._validate(request, key)
        campaign = campaign_of(request.headers)
        if campaign is None:
            return tenant_of(key)
        request[CAMPAIGN] = campaign  # the header scopes rule writes and reads to the campaign
        return campaign_scope(tenant_of(key), campaign)

    async def _parse(self, request: web.Request) -> RuleRequest:
        tenant = await self.tenant(request)
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            raise BadRequestError("body is not valid JSON") from None
        if not isinstance(body, dict):
            raise BadRequestError("body must be a JSON object with type and values")
        if body.get("type") not in RULE_TYPES:
            raise BadRequestError(_TYPE_ERROR)
        raw = body.get("values")
        if not isinstance(raw, list) or not raw:
            raise BadRequestError("values must be a non-empty array of strings")
        if len(raw) > MAX_VALUES_PER_CHANGE:
            raise BadRequestError(
                f"values has {len(raw)} entries; at most {MAX_VALUES_PER_CHANGE} per call"
            )
        rule_type = RuleType(body["type"])
        if rule_type is RuleType.COMPANY:
            found = company_input(raw)
            return RuleRequest(tenant, rule_type, found.labels, found.values, change_meta(body),
                               found)
        result = normalize_all(rule_type, raw, self.forwarder.settings.phone_region)
        normals = [n for n in result.normal if n is not None]
        bad = [r.value for r in result.rejected]
        if bad:
            shown = orjson.dumps(bad[:20]).decode() + (" …" if len(bad) > 20 else "")
            raise BadRequestError(f"{len(bad)} values are not a valid {rule_type.value}: {shown}")
        return RuleRequest(tenant, rule_type, raw, normals, change_meta(body))

    async def _write(self, change: RuleChange) -> None:
        """Straight into the store; a failure other than a refusal leaves the outcome unknown."""
        try:
            async with asyncio.timeout(self.forwarder.settings.store_timeout):
                await self.forwarder.store.write(change, self.limits)
        except (StoreNotInitialisedError, StoreFedByKafkaError) as exc:
            raise StoreError(str(exc)) from exc
        except (StoreTimeoutError, TimeoutError) as exc:
            raise OutcomeUnknownError(f"suppression store timed out; {UNKNOWN}") from exc
        except StoreUnavailableError as exc:
            raise StoreError(f"suppression store unavailable; {UNKNOWN}") from exc

    async def _admit(self, change: RuleChange) -> str | None:
        """Count the write against the key's limits before anything is published; an add's
        values stay reserved until it is applied, so concurrent adds cannot pass the limit."""
        try:
            async with asyncio.timeout(self.forwarder.settings.store_timeout):
                return await self.forwarder.store.admit(change, self.limits)
        except StoreFedByKafkaError as exc:  # the key's scope belongs to another topic
            raise StoreError(str(exc)) from exc
        except (StoreUnavailableError, TimeoutError) as exc:
            raise StoreError("suppression store unavailable; nothing was published") from exc

    async def _publish_and_wait(self, publisher: Any, change: RuleChange) -> None:
        """Publish, then wait until the store's mirrored offset passes the event's offset."""
        settings = self.forwarder.settings
        try:
            meta = await asyncio.wait_for(
                publisher.publish(change.op, change.tenant, change.type, list(change.values),
                                  source="deny-rules-api", meta=change.meta),
                timeout=settings.rule_wait_timeout,
            )
        except TimeoutError as exc:  # the broker may have taken it
            raise OutcomeUnknownError(f"publishing the rule change timed out; {UNKNOWN}") from exc
        except Exception as exc:  # a send can fail after the broker took it
            raise PublishError(f"could not publish the rule change; {UNKNOWN}") from exc
        deadline = time.monotonic() + settings.rule_wait_timeout
        while time.monotonic() < deadline:
            try:
                if (await self.forwarder.store.offsets()).get(meta.partition, -1) > meta.offset:
                    return
            except StoreUnavailableError:
                pass
            await asyncio.sleep(0.01)
        raise OutcomeUnknownError(
            f"rule change published but not yet enforced after {settings.rule_wait_timeout:g} s"
            f" (it will be once the rule consumer catches up); {UNKNOWN}"
        )

    async def _forward(self, request: web.Request) -> None:
        """Openmart enforces the rule too; its errors are reported, never hidden."""
        url = self.forwarder.upstream.url_for(request.raw_path)
        response = await self.forwarder.send(request, url, body=await request.read())
        async with response:
            if response.status >= 300:  # its body is not echoed: text the filter never read
                raise UpstreamUnavailableError(
                    f"applied by denyproxy, but the upstream answered {response.status}"
                )

    async def _validate(self, request: web.Request, key: str) -> None:
        """The key must open the upstream's credit balance; answers are cached briefly."""
        digest = tenant_of(key)
        if self._keys.get(digest, 0.0) > time.monotonic():
            return
        url = self.forwarder.upstream.url_for("/api/v2/credit-balance")
        try:
            with self.forwarder.answers.bounded():
                response = await self.forwarder.client.request(
                    "GET", url.raw_path_qs, CIMultiDict({"X-API-Key": key}))
            response.release()  # the status is all it asks: the body is not read
            ok = response.status == 200
        except (UpstreamError, TimeoutError) as exc:
            raise UpstreamUnavailableError("cannot validate the API key upstream") from exc
        if not ok:
            raise UnauthorizedError("Invalid API Key")
        self._keys[digest] = time.monotonic() + _KEY_CACHE_SECONDS


def _limit_response(exc: LimitError) -> web.Response:
    """413 for the rules-per-key cap, 429 with Retry-After for the write rate."""
    if isinstance(exc, TooManyWritesError):
        headers = {"Retry-After": str(exc.retry_after)}
        return web.json_response({"detail": str(exc)}, status=429, headers=headers)
    return web.json_response({"detail": str(exc)}, status=413)


RULES_API = web.AppKey("rules_api", RulesApi)


async def _create(request: web.Request) -> web.Response:
    return await request.app[RULES_API].create(request)


async def _delete(request: web.Request) -> web.Response:
    return await request.app[RULES_API].delete(request)


async def _check(request: web.Request) -> web.Response:
    return await request.app[RULES_API].check(request)


ROUTES = [web.post(PATH, _create), web.delete(PATH, _delete), web.post(f"{PATH}/check", _check)]
