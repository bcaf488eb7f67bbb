"""A key's whole catalogue as CSV or NDJSON, streamed a chunk at a time (constant memory)."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator

import orjson
from aiohttp import web

from proxy.forward import STREAMING
from rules.catalogue.record import Record

COLUMNS = (
    "id", "type", "value", "scope", "reason", "source", "event_id", "created_at", "updated_at",
    "enforced_at", "expires_at", "suppressions", "last_suppressed_at",
)
_TYPES = {"csv": "text/csv; charset=utf-8", "ndjson": "application/x-ndjson"}


async def stream_export(
    request: web.Request, chunks: AsyncIterator[list[Record]], form: str
) -> web.StreamResponse:
    """The first chunk is read before the headers go out, so a store that is down is a 503;
    a failure later can only cut the body short (the client sees no final newline/EOF)."""
    first: list[Record] = await anext(chunks, [])
    response = web.StreamResponse(headers={
        "Content-Type": _TYPES[form], "Cache-Control": "private, no-store",
        "Content-Disposition": f'attachment; filename="deny-rules.{form}"',
    })
    await response.prepare(request)
    request[STREAMING] = True
    if form == "csv":
        await response.write(encode_records([], form, header=True))
    await response.write(encode_records(first, form))
    async for chunk in chunks:
        await response.write(encode_records(chunk, form))
    await response.write_eof()
    return response


def encode_records(records: list[Record], form: str, *, header: bool = False) -> bytes:
    """One chunk of an export; with `header`, the CSV header line first."""
    if form == "csv":
        return _csv_lines(records, header=header)
    return b"".join(orjson.dumps(r.as_json()) + b"\n" for r in records)


def _csv_lines(records: list[Record], *, header: bool = False) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if header:
        writer.writerow(COLUMNS)
    for record in records:
        row = record.as_json()
        writer.writerow(["" if row[c] is None else row[c] for c in COLUMNS])
    return out.getvalue().encode()
