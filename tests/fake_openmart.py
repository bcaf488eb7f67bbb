"""A fake Openmart upstream (the one fake we allow: the real API is out of reach).

It follows ../shared/upstream/openmart.md: the async batch flow (submit → status → task ids →
result), search rows, business records (a GET with a JSON body), credit balance. It also records
every request exactly as received, so tests can compare what the upstream saw with what the
client sent, and offers a few routes for transport tests (download, slow, gzip, bad JSON).
"""

from __future__ import annotations

import asyncio
import gzip
import itertools
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler


@dataclass
class Seen:
    method: str
    path_qs: str
    headers: dict[str, str]
    body: bytes


def person(
    first: str, last: str, domain: str, phones: list[str], slug: str | None = None
) -> dict[str, Any]:
    """A find_people / lookup_people result row in Openmart's documented shape."""
    return {
        "first_name": first,
        "last_name": last,
        "title": "VP Sales",
        "company_name": domain.split(".")[0].title(),
        "email": {"email": f"{first}.{last}@{domain}".lower(), "verified": True},
        "phones": [
            {"phone_number": p, "line_type": "MOBILE" if i == 0 else "LANDLINE", "valid": True}
            for i, p in enumerate(phones)
        ],
        "linkedin_url": f"https://linkedin.com/in/{slug or (first + last).lower()}",
        "city": "Austin",
        "state": "TX",
        "country": "US",
    }


def default_people(domain: str = "acme.com", count: int = 8) -> list[dict[str, Any]]:
    names = ["Jane Doe", "Karl Marx", "Ada Lovelace", "Alan Turing", "Grace Hopper",
             "Linus Torvalds", "Barbara Liskov", "Edsger Dijkstra"]
    rows = []
    for i, name in enumerate(itertools.islice(itertools.cycle(names), count)):
        first, last = name.split()
        suffix = "" if i < len(names) else str(i)
        rows.append(
            person(first, last + suffix, domain,
                   [f"+1512555{1000 + 2 * i:04d}", f"+1512555{1001 + 2 * i:04d}"])
        )
    return rows


@dataclass
class FakeOpenmart:
    """State of the fake; tests change `people`, `business_emails`, `search_rows` freely."""

    people: list[dict[str, Any]] = field(default_factory=default_people)
    business_emails: list[dict[str, Any]] = field(
        default_factory=lambda: [
            {"email": "info@acme.com", "status": "valid"},
            {"email": "sales@acme.com", "status": "valid"},
        ]
    )
    search_rows: list[dict[str, Any]] = field(default_factory=list)
    submit_delay: float = 0.0
    deny_rules_status: int = 200
    valid_keys: set[str] | None = None  # None: any key is accepted
    requests: list[Seen] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)  # lets /held* finish
    held_sent_first: asyncio.Event = field(default_factory=asyncio.Event)
    held_arrived: asyncio.Event = field(default_factory=asyncio.Event)
    batches: dict[str, dict[str, Any]] = field(default_factory=dict)
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)

    def last(self) -> Seen:
        return self.requests[-1]

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._record], client_max_size=64 * 1024 * 1024)
        r = app.router
        r.add_post("/api/v1/task/batch/{kind}", self.submit)
        r.add_get("/api/v1/task/batch/{batch_id}/status", self.status)
        r.add_get("/api/v1/task/batch/{batch_id}/task_ids", self.task_ids)
        r.add_get("/api/v1/task/{task_id}", self.task)
        r.add_post("/api/v1/search", self.search)
        r.add_get("/api/v1/business_records/list/{kind}", self.business_records)
        r.add_get("/api/v2/credit-balance", self.credit_balance)
        r.add_route("*", "/api/v2/deny-rules{tail:.*}", self.deny_rules)
        r.add_get("/download/{size}", self.download)
        r.add_get("/held/{size}", self.held)
        r.add_get("/held-json", self.held_json)
        r.add_get("/gzip-text", self.gzip_text)
        r.add_get("/slow/{seconds}", self.slow)
        r.add_get("/gzip-json", self.gzip_json)
        r.add_get("/bad-json", self.bad_json)
        r.add_get("/text", self.text)
        r.add_route("*", "/echo{tail:.*}", self.echo)
        return app

    @web.middleware
    async def _record(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(Seen(request.method, request.path_qs, dict(request.headers), body))
        if request.path.startswith("/api/") and not _has_key(request):
            return web.json_response({"detail": "Invalid API Key"}, status=401)
        return await handler(request)

    async def submit(self, request: web.Request) -> web.Response:
        tasks = orjson.loads(await request.read())
        if not isinstance(tasks, list) or not 1 <= len(tasks) <= 100:
            return web.json_response({"detail": "expected 1-100 tasks"}, status=422)
        await asyncio.sleep(self.submit_delay)
        kind = request.match_info["kind"]
        batch_id = str(uuid.uuid4())
        ids = []
        for task in tasks:
            task_id = str(uuid.uuid4())
            self.tasks[task_id] = {"kind": kind, "tracking_id": task.get("tracking_id")}
            ids.append(task_id)
        self.batches[batch_id] = {"task_ids": ids}
        return web.json_response({
            "batch_id": batch_id,
            "submit_for": kind,
            "status": {"processing": 0, "completed": len(ids), "errored": 0, "total": len(ids)},
        })

    async def status(self, request: web.Request) -> web.Response:
        batch = self.batches.get(request.match_info["batch_id"])
        if batch is None:
            return web.json_response({"detail": "batch not found"}, status=404)
        n = len(batch["task_ids"])
        return web.json_response(
            {"processing": 0, "completed": n, "errored": 0, "total": n, "batch_ready": True}
        )

    async def task_ids(self, request: web.Request) -> web.Response:
        batch = self.batches.get(request.match_info["batch_id"])
        if batch is None:
            return web.json_response({"detail": "batch not found"}, status=404)
        return web.json_response(batch["task_ids"])

    async def task(self, request: web.Request) -> web.Response:
        task_id = request.match_info["task_id"]
        task = self.tasks.get(task_id)
        if task is None:
            return web.json_response({"detail": "task not found"}, status=404)
        data = self.business_emails if task["kind"] == "lookup_business_email" else self.people
        return web.json_response({
            "task_id": task_id,
            "status": "COMPLETED",
            "tracking_id": task["tracking_id"],
            "data": data,
        })

    async def search(self, request: web.Request) -> web.Response:
        return web.json_response({"data": self.search_rows, "cursor": None})

    async def business_records(self, request: web.Request) -> web.Response:
        ids = orjson.loads(await request.read() or b"[]")
        rows = [
            {"openmart_id": i, "business_name": "Acme Store", "business_emails": ["info@acme.com"],
             "business_phones": ["(512) 555-0100"]}
            for i in ids
        ]
        return web.json_response(rows)

    async def credit_balance(self, request: web.Request) -> web.Response:
        if self.valid_keys is not None and request.headers.get("X-API-Key") not in self.valid_keys:
            return web.json_response({"detail": "Invalid API Key"}, status=401)
        return web.json_response(
            {"period_start": "2026-11-01", "period_end": "2026-11-30", "balance": 1000}
        )

    async def deny_rules(self, request: web.Request) -> web.Response:
        if self.deny_rules_status != 200:
            return web.json_response(
                {"detail": "persistence failure"}, status=self.deny_rules_status
            )
        return web.json_response({"status": "success"})

    async def download(self, request: web.Request) -> web.StreamResponse:
        size = int(request.match_info["size"])
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        response.content_length = size
        await response.prepare(request)
        chunk = b"x" * (1024 * 1024)
        while size > 0:
            await response.write(chunk[: min(size, len(chunk))])
            size -= len(chunk)
        await response.write_eof()
        return response

    async def held(self, request: web.Request) -> web.StreamResponse:
        """First chunk of `size` bytes at once; the rest only after `release` is set."""
        size = int(request.match_info["size"])
        first = b"a" * 1024
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        response.content_length = size
        await response.prepare(request)
        await response.write(first)
        self.held_sent_first.set()
        await self.release.wait()
        await response.write(b"b" * (size - len(first)))
        await response.write_eof()
        return response

    async def held_json(self, request: web.Request) -> web.Response:
        """Says it arrived, then answers people only once the test sets `release`."""
        self.held_arrived.set()
        await self.release.wait()
        return web.json_response({"data": self.people})

    def gzip_json_body(self) -> bytes:
        """The exact bytes /gzip-json sends (mtime=0 keeps gzip output deterministic)."""
        return gzip.compress(orjson.dumps({"data": self.people}), mtime=0)

    def gzip_text_body(self) -> bytes:
        return gzip.compress(b"contact jane.doe@acme.com", mtime=0)

    async def gzip_text(self, request: web.Request) -> web.Response:
        return web.Response(
            body=self.gzip_text_body(),
            headers={"Content-Type": "text/plain", "Content-Encoding": "gzip"},
        )

    async def slow(self, request: web.Request) -> web.Response:
        await asyncio.sleep(float(request.match_info["seconds"]))
        return web.json_response({"data": self.people})

    async def gzip_json(self, request: web.Request) -> web.Response:
        return web.Response(
            body=self.gzip_json_body(),
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        )

    async def bad_json(self, request: web.Request) -> web.Response:
        return web.Response(
            body=b'{"data": [{"email": "jane.doe@acme.com"', content_type="application/json"
        )

    async def text(self, request: web.Request) -> web.Response:
        return web.Response(text="contact jane.doe@acme.com", content_type="text/plain")

    async def echo(self, request: web.Request) -> web.Response:
        return web.Response(body=b"ok", content_type="application/octet-stream")


def _has_key(request: web.Request) -> bool:
    return bool(request.headers.get("X-API-Key") or request.headers.get("Authorization"))
