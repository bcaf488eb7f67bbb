"""The response path, one straight line: forward → collect → one lookup → strip → verify →
send."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import cast

from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from proxy import headers, media, metrics, paths, respond
from proxy.body import REQUEST_ID, STREAMING, read_body, stream
from proxy.candidates import HeaderIds, header_identifiers
from proxy.errors import OutputRefusedError, PayloadTooLargeError, StoreError, UpstreamBodyError
from proxy.incoming import Incoming
from proxy.settings import Settings
from proxy.tenant import campaign_of, forwarded_key, scope_of
from proxy.upstream import CHUNK, Upstream, decoded, request_target, upstream_errors
from proxy.upstream_client import UpstreamClient
from proxy.upstream_response import Response, UpstreamError
from proxy.watchdog import Watchdog
from rules.catalogue.hits import HitBatch
from rules.detect import company, pipeline
from rules.detect.match import Identifier, Policy, query_for
from rules.model import GLOBAL, Lookup, RuleType, tenant_of
from rules.scopes import campaign_scope, list_scope
from rules.store import RuleStore, StoreUnavailableError
from rules.store.base import CachesLists
from rules.store.staleness import StalenessGuard

__all__ = ["REQUEST_ID", "STREAMING", "SUPPRESSED", "Forwarder", "api_key", "logged_tenant"]

SUPPRESSED_HEADER = "X-Denyproxy-Suppressed"
SUPPRESSED = web.RequestKey("suppressed", int)
TENANT = web.RequestKey("tenant", str)
CAMPAIGN = web.RequestKey("campaign", str)
"""The request's campaign; "" for none (always set by `send`: a missing key made each read
raise and catch a KeyError inside `Mapping.get`)."""
_BODY_TOO_LARGE = web.RequestKey("body_too_large", bool)
REFUSED = "response withheld: a suppressed identifier could not be removed"


def api_key(request: Incoming) -> str | None:
    """The caller's key as the upstream would get it (X-API-Key or Bearer); 400 if ambiguous."""
    out = headers.upstream_request(request.headers, peer=None, scheme="", length=None)
    key = forwarded_key(out)
    request[TENANT] = tenant_of(key) if key else GLOBAL
    return key


def logged_tenant(request: Incoming) -> str:
    """For the access line: the scope if one was derived (a refused request has none)."""
    tenant: str = request.get(TENANT, "-")
    return tenant


@dataclass(slots=True)
class Forwarder:
    settings: Settings
    upstream: Upstream
    client: UpstreamClient
    store: RuleStore
    hits: HitBatch | None = None
    """Suppression counts of the catalogue, batched: never a store round trip here."""
    lists_of: Callable[[str], tuple[str, ...]] = field(init=False)
    """The lists the last lookup of a tenant read (no I/O): their entries count hits too."""
    answers: Watchdog = field(init=False)
    """Bounds the wait for the upstream's response headers: one timer for every request."""
    lookups: Watchdog = field(init=False)
    """Bounds each store lookup (retries included), the same way."""
    failures: upstream_errors = field(init=False)
    """Maps the client's failures (it keeps no state: one serves every request)."""

    def __post_init__(self) -> None:
        self.lists_of = lists_reader(self.store)  # a Protocol isinstance costs ~10 µs: once
        self.answers = Watchdog(self.settings.upstream_timeout)
        self.lookups = Watchdog(self.settings.store_timeout)
        self.failures = upstream_errors(self.settings.upstream_timeout)

    async def __call__(self, request: Incoming, body: bytes | None = None) -> web.StreamResponse:
        """`body`: the request body when a check before forwarding read it (preflight.py)."""
        target = request_target(request.raw_path)
        exempt = paths.is_exempt(target, self.settings.exempt_paths)
        url = self.upstream.join(target)
        response = await self.send(request, url, body, filtered=not exempt)
        try:
            if exempt:
                return await self.streamed(request, response)
            label = media.Label.of(response.headers)
            if self._streams(request, response, label):
                return await self.streamed(request, response)
            if response.status == 206:  # a slice of a textual body cannot be filtered
                raise UpstreamBodyError("upstream sent a partial body that cannot be filtered")
            return await self.filtered(request, response, label)
        finally:
            response.release()

    async def send(
        self, request: Incoming, url: URL, body: bytes | AsyncIterator[bytes] | None = None,
        filtered: bool = True,
    ) -> Response:
        """Forward once (never retried: a batch POST may already have cost credits).

        The tenant is derived from the very headers sent. The body streams from the client
        unless the caller has already read it.
        """
        length = request.content_length
        out_headers = headers.upstream_request(
            request.headers, peer=request.remote, scheme=request.scheme, length=length,
            filtered=filtered,
        )
        request[TENANT] = scope_of(out_headers)
        campaign = campaign_of(request.headers)
        request[CAMPAIGN] = campaign if campaign is not None and request[TENANT] != GLOBAL else ""
        out_headers["X-Request-Id"] = request[REQUEST_ID]
        if length is not None and length > self.settings.max_request_body:
            raise _too_large(self.settings.max_request_body)
        if body is None and isinstance(request, web.BaseRequest) and request.body_exists:
            body = _limited(request, self.settings.max_request_body)  # the front reads it whole
        started = time.perf_counter()
        with self.failures, self.answers.bounded():
            try:
                response = await self.client.request(
                    request.method, url.raw_path_qs, out_headers, body
                )
            except UpstreamError as exc:
                if request.get(_BODY_TOO_LARGE):
                    raise _too_large(self.settings.max_request_body) from exc
                raise
        metrics.UPSTREAM_LATENCY.observe(time.perf_counter() - started)
        return response

    def _streams(
        self, request: Incoming, response: Response, label: media.Label
    ) -> bool:
        """No body, or one labelled binary (the label is the contract: it is not sniffed)."""
        if request.method == "HEAD" or response.status in (204, 304):
            return True
        kind = media.label_kind(label, self.settings.binary_types)
        return kind is media.BodyKind.BINARY

    async def streamed(
        self, request: Incoming, response: Response
    ) -> web.StreamResponse:
        """Body untouched; headers still checked (a store round trip only if one holds a
        candidate)."""
        out_headers = headers.client_response(response.headers, rewritten=False)
        found = HeaderIds.of(out_headers, self.settings.phone_region)
        if found.by_header:
            answer = await self.lookup(request, query_for(found.identifiers()))
            found.strip(out_headers, answer)
            self.counted(request, answer)
        return await stream(request, response, out_headers, self.settings.upstream_timeout)

    async def filtered(
        self, request: Incoming, response: Response, label: media.Label
    ) -> web.Response:
        """receive → classify → collect (both detectors, headers) → ONE lookup → strip →
        verify → send."""
        settings = self.settings
        raw = await read_body(response, settings)
        encoding = ", ".join(response.headers.getall("Content-Encoding", ()))
        content = decoded(raw, encoding, settings.max_filter_body)
        body = content.body
        kind = media.classify(label, body, settings.binary_types)
        out_headers = headers.client_response(response.headers, rewritten=False)
        headers.private(out_headers)
        in_headers = HeaderIds.of(out_headers, settings.phone_region)
        plan = respond.plan_for(kind, body, label, settings.phone_region)
        query = merged(plan.query(), query_for(in_headers.identifiers()))
        answer = await self.lookup(request, query) if query else {}
        answer = company.answer_for(answer, settings.company_name_only_match)
        in_headers.strip(out_headers, answer)
        self.counted(request, answer)
        result = plan.filtered(answer, cast(Policy, settings.policy))
        if result.unplaced:  # a denied span or company record no cut can remove
            metrics.OUTPUT_REFUSALS.inc()
            raise OutputRefusedError(REFUSED)
        unchanged = not result.counts and not content.hidden_fields
        out = raw if unchanged else result.body
        await self.verified(request, out_headers if in_headers.by_header else None, answer,
                            query, plan.verify(result, settings.phone_region, answer, query))
        if not unchanged:
            for name in headers.REWRITTEN_BODY:
                out_headers.popall(name, None)
        for rule_type, count in result.counts.items():
            metrics.suppressed_counter(rule_type).inc(count)
        request[SUPPRESSED] = sum(result.counts.values())
        out_headers[SUPPRESSED_HEADER] = str(request[SUPPRESSED])
        return web.Response(status=response.status, body=out, headers=out_headers)

    async def verified(
        self, request: Incoming, out_headers: CIMultiDict[str] | None, answer: Lookup,
        asked: Lookup, verdict: pipeline.Verdict,
    ) -> None:
        """The body's verdict (the plan read its output again) and the header values: a denied
        identifier still there refuses the response (502, counted). Candidates the one lookup
        did not ask for (text joined across a removed span: rare) get a second lookup, counted.

        `out_headers` None: no header held a candidate before stripping (the usual), so none
        can now; they are not read again."""
        unasked: Lookup = verdict.unasked
        leaked = verdict.leaked
        if out_headers is not None:  # else no header can hold one: no verdict of nothing
            region = self.settings.phone_region
            header_ids: set[Identifier] = {
                i for name, value in out_headers.items()
                for i in header_identifiers(name, value, region)}  # cached per header
            heads = pipeline.verdict(header_ids, answer, asked)
            unasked = merged(unasked, heads.unasked)
            leaked = leaked or heads.leaked
        if unasked and not leaked:
            metrics.SECOND_LOOKUPS.inc()
            more = await self.lookup(request, unasked)
            leaked = any(more.values())
        if leaked:
            metrics.OUTPUT_REFUSALS.inc()
            raise OutputRefusedError(REFUSED)

    def counted(self, request: Incoming, answer: dict[RuleType, set[str]]) -> None:
        """The catalogue's suppression counts, from the lookup's answer: batched, no I/O here."""
        if answer and self.hits is not None:
            tenant, campaign = request[TENANT], request.get(CAMPAIGN)
            also = [list_scope(i) for i in self.lists_of(tenant)]
            if campaign:
                also.append(campaign_scope(tenant, campaign))
            self.hits.record(tenant, answer, also)

    async def lookup(self, request: Incoming, query: Lookup) -> dict[RuleType, set[str]]:
        """The one store round trip, bounded (retries included); failures answer 503."""
        started = time.perf_counter()
        scope, campaign = request[TENANT], request.get(CAMPAIGN) or None
        try:
            with self.lookups.bounded():
                answer = await self.store.lookup(scope, query, campaign=campaign)
        except (StoreUnavailableError, TimeoutError) as exc:
            metrics.STORE_ERRORS.inc()
            raise StoreError("suppression store unavailable") from exc
        metrics.STORE_LATENCY.observe(time.perf_counter() - started)
        return answer


def lists_reader(store: RuleStore) -> Callable[[str], tuple[str, ...]]:
    """`store`'s `cached_lists`, or none read for a store without lists."""
    inner = store.store if isinstance(store, StalenessGuard) else store
    return inner.cached_lists if isinstance(inner, CachesLists) else _no_lists


def _no_lists(tenant: str) -> tuple[str, ...]:
    return ()


def merged(*queries: Lookup) -> Lookup:
    """The queries as one; a lone non-empty one as it is (a body's query is not copied when
    the headers ask nothing: ~1,000 values on a 200-contact body)."""
    present = [query for query in queries if query]
    if len(present) <= 1:
        return present[0] if present else {}
    out: dict[RuleType, set[str]] = {}
    for query in present:
        for rule_type, values in query.items():
            out.setdefault(rule_type, set()).update(values)
    return out


def _too_large(limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(f"request body is larger than {limit} bytes")


async def _limited(request: web.BaseRequest, limit: int) -> AsyncIterator[bytes]:
    """The request body as it arrives, cut off past the limit (chunked uploads)."""
    seen = 0
    async for chunk in request.content.iter_chunked(CHUNK):
        seen += len(chunk)
        if seen > limit:
            request[_BODY_TOO_LARGE] = True
            raise _too_large(limit)
        yield chunk
