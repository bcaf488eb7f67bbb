"""The leak fuzzer for every media type (issue #10): NDJSON, server-sent events, CSV, HTML, XML,
plain text and JSON under a text label (or none), with denied and allowed identifiers planted
in random spellings and places (values, keys, text, attributes, headers), random Content-Type
labels (correct, wrong, missing, duplicated) and encodings (gzip multi-member, br, deflate,
identity) → zero denied identifiers in what the client receives, judged by
tests/leak_detector.py (not the product's detector); every allowed one kept under `strip`.

Volume drives the pure steps `Forwarder.filtered` calls, in its order (`through` below:
decode → classify → plan → one lookup, answered from the planted rules → strip headers →
filtered → verify body and headers, second lookup → the client's bytes); a smaller number goes
through the running proxy against real Redis, from an upstream that writes its headers by hand
(two Content-Type headers, none at all). The client's bytes are decoded as a client would:
Content-Encoding honoured, then the charset (BOM first). Examples per test come from the
hypothesis profile (`ci`: bounded; `HYPOTHESIS_PROFILE=deep`: many more).
"""

from __future__ import annotations

import codecs
import csv
import gzip
import html
import io
import itertools
import json
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import brotli
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

from proxy import headers as proxy_headers
from proxy import media, respond
from proxy.candidates import HeaderIds, texts_identifiers
from proxy.errors import UpstreamBodyError
from proxy.forward import merged
from proxy.settings import Settings
from proxy.upstream import decode
from rules.detect import pipeline
from rules.detect.match import Policy, query_for
from rules.model import Lookup, RuleType, tenant_of
from tests import test_leak_fuzz as json_fuzz
from tests import test_scan
from tests.harness import running_proxy
from tests.leak_detector import leaks
from tests.test_media_forward import hand_written_upstream
from tests.test_suppression import add

REGION = "US"
LIMIT = 8 * 1024 * 1024
Planted = tuple[str, str]  # (kind, identifier as the rule holds it)

DENIED: list[Planted] = [
    ("email", json_fuzz.DENIED_EMAIL), ("phone", json_fuzz.DENIED_PHONE),
    ("linkedin", json_fuzz.DENIED_LI),
    *[("email", e) for e in test_scan.DENIED_EMAILS],
    *[("phone", p) for p in test_scan.DENIED_PHONES],
    *[("linkedin", li) for li in test_scan.DENIED_PROFILES],
]
ALLOWED: list[Planted] = [
    ("email", json_fuzz.ALLOWED_EMAIL), ("phone", json_fuzz.ALLOWED_PHONE),
    ("linkedin", json_fuzz.ALLOWED_LI),
    *[("email", e) for e in test_scan.ALLOWED_EMAILS],
    *[("phone", p) for p in test_scan.ALLOWED_PHONES],
    *[("linkedin", li) for li in test_scan.ALLOWED_PROFILES],
]
_TYPES = {"email": RuleType.EMAIL, "phone": RuleType.PHONE, "linkedin": RuleType.LINKEDIN}
RULES: dict[RuleType, set[str]] = {}
for _kind, _value in DENIED:
    RULES.setdefault(_TYPES[_kind], set()).add(_value)
REFUSED = 502


# ---------------------------------------------------------------------------- spellings


def _spellings_of(kind: str, value: str) -> st.SearchStrategy[Any]:
    """test_leak_fuzz's spellings for its identifiers, test_scan's for the others."""
    by_kind: dict[str, Callable[[str], st.SearchStrategy[Any]]] = (
        {"email": json_fuzz.email_spellings, "phone": json_fuzz.phone_spellings,
         "linkedin": json_fuzz.linkedin_spellings}
        if (kind, value) in DENIED[:3] + ALLOWED[:3]
        else {"email": test_scan._email_spellings, "phone": test_scan._phone_spellings,
              "linkedin": test_scan._profile_spellings}
    )
    return by_kind[kind](value)


def spelled(pool: list[Planted]) -> st.SearchStrategy[tuple[Planted, Any]]:
    """One identifier of `pool` and one spelling of it (a string, or a number for a phone)."""
    return st.sampled_from(pool).flatmap(
        lambda kv: _spellings_of(*kv).map(lambda spelling: (kv, spelling))
    )


def as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


@dataclass
class Cells:
    """What a generator planted: every cell (line, field, element, event) holds at most one
    identifier, so `strip` can keep every allowed one that is not in a denied one's cell."""

    denied: list[Planted]
    allowed: list[Planted]

    def take(self, draw: st.DrawFn) -> Any | None:
        """A spelling for one cell: denied, allowed, or nothing (filler)."""
        which = draw(st.sampled_from(["denied", "allowed", "none"]))
        if which == "none":
            return None
        (kv, spelling) = draw(spelled(DENIED if which == "denied" else ALLOWED))
        (self.denied if which == "denied" else self.allowed).append(kv)
        return spelling


_WORDS = st.text("abcdef XYZ-", max_size=10)
_SAFE_FILLER = st.text("abcdefghij klm.,;-", max_size=12)


def _text_cell(draw: st.DrawFn, cells: Cells) -> str:
    value = cells.take(draw)
    if value is None:
        return draw(_SAFE_FILLER)
    left = draw(st.sampled_from(["", "Reach ", "x ", "(", "\t", "— "]))
    right = draw(st.sampled_from(["", " now", ")", ".", "!", " | ok"]))
    return f"{left}{as_text(value)}{right}"


# ---------------------------------------------------------------------------- documents


@st.composite
def json_object(draw: st.DrawFn, cells: Cells) -> dict[str, Any]:
    """One record with at most one identifier, placed by test_leak_fuzz's `place`."""
    record: dict[str, Any] = {"id": draw(st.integers(0, 99)), "name": draw(_WORDS)}
    value = cells.take(draw)
    if value is not None:
        record.update(draw(json_fuzz.place(value)))
    return record


@st.composite
def ndjson(draw: st.DrawFn, cells: Cells) -> str:
    ending = draw(st.sampled_from(["\n", "\r\n"]))
    seq = draw(st.booleans())  # application/json-seq: RS before each text
    lines = []
    for _ in range(draw(st.integers(1, 6))):
        if draw(st.integers(0, 4)) == 0:
            lines.append(_text_cell(draw, cells))  # a line that is not JSON: read as text
        else:
            line = json.dumps(draw(json_object(cells)), ensure_ascii=draw(st.booleans()))
            lines.append(("\x1e" if seq else "") + line)
        if draw(st.integers(0, 5)) == 0:
            lines.append("")
    return ending.join(lines) + draw(st.sampled_from(["", ending]))


@st.composite
def sse(draw: st.DrawFn, cells: Cells) -> str:
    """Events with data (JSON or text, over one or more lines), id, event, retry, comments."""
    events = []
    for _ in range(draw(st.integers(1, 5))):
        lines = []
        for field in draw(st.lists(st.sampled_from(["id", "event", "comment", "retry"]),
                                   max_size=3)):
            text = _text_cell(draw, cells).replace("\n", " ")
            lines.append(f": {text}" if field == "comment" else f"{field}: {text}")
        if draw(st.booleans()):
            lines.append("data: " + json.dumps(draw(json_object(cells))))
        else:
            for _ in range(draw(st.integers(1, 3))):
                lines.append("data:" + draw(st.sampled_from(["", " "]))
                             + _text_cell(draw, cells).replace("\n", " "))
        events.append("\n".join(draw(st.permutations(lines))) + "\n\n")
    return "".join(events)


@st.composite
def csv_text(draw: st.DrawFn, cells: Cells) -> str:
    """Quoted fields with commas, quotes and newlines (the csv module writes the quoting)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=draw(st.sampled_from(["\n", "\r\n"])),
                        quoting=draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL])))
    writer.writerow(["name", "contact", "notes"])
    for _ in range(draw(st.integers(1, 6))):
        note = draw(st.sampled_from(["", "a, b", 'say "hi"', "two\nlines", "x"]))
        writer.writerow([draw(_WORDS), _text_cell(draw, cells), note])
    return out.getvalue()


@st.composite
def html_text(draw: st.DrawFn, cells: Cells) -> str:
    parts = ["<!doctype html><html><body>"]
    for _ in range(draw(st.integers(1, 6))):
        value = cells.take(draw)
        text = draw(_SAFE_FILLER) if value is None else as_text(value)
        how = draw(st.sampled_from(["text", "escaped", "mailto", "href", "attr", "entity"]))
        if how == "escaped":
            parts.append(f"<p>{html.escape(text)}</p>")
        elif how == "mailto":
            parts.append(f'<a href="mailto:{html.escape(text)}?subject=hi">write</a>')
        elif how == "href":
            parts.append(f'<a href="{html.escape(text, quote=True)}">profile</a>')
        elif how == "attr":
            parts.append(f"<td title='{html.escape(text)}' data-x=1>cell</td>")
        elif how == "entity":
            parts.append("<li>" + text.replace("@", "&#64;").replace(".", "&#x2e;") + "</li>")
        else:
            parts.append(f"<div>{text}</div>")
    return "\n".join(parts) + "</body></html>"


@st.composite
def xml_text(draw: st.DrawFn, cells: Cells) -> str:
    parts = ['<?xml version="1.0" encoding="UTF-8"?>', "<people>"]
    for i in range(draw(st.integers(1, 6))):
        value = cells.take(draw)
        text = draw(_SAFE_FILLER) if value is None else as_text(value)
        how = draw(st.sampled_from(["element", "attribute", "cdata", "escaped"]))
        if how == "attribute":
            parts.append(f'<person id="{i}" contact="{html.escape(text, quote=True)}"/>')
        elif how == "cdata":
            parts.append(f"<note><![CDATA[{text}]]></note>")
        elif how == "escaped":
            parts.append(f"<v>{html.escape(text)}</v>")
        else:
            parts.append(f"<contact>{text}</contact>")
    return "\n".join([*parts, "</people>"])


@st.composite
def plain_text(draw: st.DrawFn, cells: Cells) -> str:
    """Lines of prose, one identifier at most per line, between test_scan's separators."""
    lines = []
    for _ in range(draw(st.integers(1, 6))):
        value = cells.take(draw)
        if value is None:
            lines.append(draw(_SAFE_FILLER))
            continue
        left, right = draw(st.sampled_from(test_scan.SEPARATORS[:-1])), draw(
            st.sampled_from(test_scan.SEPARATORS[:-1]))
        lines.append(f"{draw(_WORDS)} {left}{as_text(value)}{right} {draw(_WORDS)}")
    return "\n".join(lines)


@st.composite
def json_text(draw: st.DrawFn, cells: Cells) -> str:
    doc = {"status": "COMPLETED", "data": [draw(json_object(cells))
                                           for _ in range(draw(st.integers(1, 5)))]}
    return json.dumps(doc, ensure_ascii=draw(st.booleans()), indent=draw(st.sampled_from(
        [None, 2])))


# Each kind: its generator, its correct labels, and labels a sloppy upstream might send.
KINDS: dict[str, tuple[Callable[[Cells], st.SearchStrategy[str]], list[str], list[str]]] = {
    "ndjson": (ndjson, ["application/x-ndjson", "application/jsonl", "application/json-seq"],
               ["text/plain", "application/json", "text/event-stream"]),
    "sse": (sse, ["text/event-stream"], ["text/plain", "application/x-ndjson"]),
    "csv": (csv_text, ["text/csv", "text/csv; charset=utf-8"],
            ["text/plain", "application/x-ndjson", "text/event-stream", "application/json"]),
    "html": (html_text, ["text/html; charset=utf-8"], ["text/plain", "application/xml"]),
    "xml": (xml_text, ["application/xml", "text/xml", "application/atom+xml"],
            ["text/html", "text/plain"]),
    "text": (plain_text, ["text/plain"], ["text/html", "text/csv", "application/x-ndjson"]),
    "json": (json_text, ["text/plain", "text/html"], ["text/event-stream",
                                                      "application/x-ndjson"]),
}
_DUPLICATE_WITH = ["image/png", "text/plain", "application/octet-stream", "application/json"]


@dataclass
class Response:
    """An upstream response the fuzzer drew, and what it planted."""

    kind: str
    text: str
    charset: str
    headers: list[tuple[str, str]]
    encoding: str
    body: bytes  # encoded as `headers` say
    cells: Cells


@st.composite
def labels(draw: st.DrawFn, kind: str) -> list[tuple[str, str]]:
    _, correct, wrong = KINDS[kind]
    how = draw(st.sampled_from(["correct", "wrong", "missing", "duplicated", "comma"]))
    if how == "missing":
        return []
    label = draw(st.sampled_from(correct if how != "wrong" else wrong))
    if how == "duplicated":
        other = draw(st.sampled_from(_DUPLICATE_WITH))
        pair = draw(st.permutations([label, other]))
        return [("Content-Type", pair[0]), ("Content-Type", pair[1])]
    if how == "comma":
        return [("Content-Type", f"{draw(st.sampled_from(_DUPLICATE_WITH))}, {label}")]
    return [("Content-Type", label)]


@st.composite
def header_plants(draw: st.DrawFn, cells: Cells) -> list[tuple[str, str]]:
    """Identifiers in response headers: Location, Link, custom headers (latin-1 safe only)."""
    out = []
    for name in draw(st.lists(st.sampled_from(["Location", "Link", "X-Contact", "X-Owner"]),
                              max_size=2, unique=True)):
        value = cells.take(draw)
        if value is None:
            continue
        text = as_text(value)
        if not text.isascii() or any(c in text for c in "\r\n"):
            continue  # an HTTP header value cannot carry it as written
        out.append((name, f"<{text}>; rel=me" if name == "Link" else text))
    return out


def _encode(body: bytes, how: str) -> tuple[bytes, list[tuple[str, str]]]:
    if how == "gzip":  # several members: clients decode all of them
        cut = sorted({0, len(body) // 3, len(body) // 2, len(body)})
        members = [gzip.compress(body[a:b]) for a, b in itertools.pairwise(cut)]
        return b"".join(members) or gzip.compress(b""), [("Content-Encoding", "gzip")]
    if how == "br":
        return brotli.compress(body), [("Content-Encoding", "br")]
    if how == "deflate":
        return zlib.compress(body), [("Content-Encoding", "deflate")]
    return body, []


@st.composite
def responses(draw: st.DrawFn, kinds: list[str] | None = None) -> Response:
    kind = draw(st.sampled_from(kinds or sorted(KINDS)))
    cells = Cells([], [])
    text = draw(KINDS[kind][0](cells))
    label = draw(labels(kind))
    charset = "utf-8"
    if kind in ("csv", "html", "xml", "text") and draw(st.integers(0, 5)) == 0:
        charset = "utf-16"  # BOM written: clients read it whatever the label
        label = [(k, v.partition(";")[0] + "; charset=utf-16") for k, v in label]
    encoding = draw(st.sampled_from(["identity", "gzip", "br", "deflate"]))
    body, encoding_header = _encode(text.encode(charset, errors="surrogatepass"), encoding)
    heads = label + draw(header_plants(cells)) + encoding_header
    return Response(kind, text, charset, heads, encoding, body, cells)


# ---------------------------------------------------------------------------- the path


def answer_for(query: Lookup) -> dict[RuleType, set[str]]:
    """The store stub: what the planted rules deny among what was asked."""
    return {t: set(v) & RULES.get(t, set()) for t, v in query.items()}


@dataclass
class Received:
    status: int
    headers: CIMultiDict[str]
    body: bytes  # as sent, still encoded if Content-Encoding says so


def through(raw: bytes, upstream: list[tuple[str, str]], policy: Policy) -> Received:
    """`Forwarder.filtered`'s steps, in its order, with the store stubbed by `answer_for`."""
    heads = CIMultiDictProxy(CIMultiDict(upstream))
    label = media.Label.of(heads)
    try:
        body = decode(raw, heads.get("Content-Encoding", ""), LIMIT)
        kind = media.classify(label, body)
        out_headers = proxy_headers.client_response(heads, rewritten=False)
        proxy_headers.private(out_headers)
        in_headers = HeaderIds.of(out_headers, REGION)
        plan = respond.plan_for(kind, body, label, REGION)
    except UpstreamBodyError as exc:
        return Received(REFUSED, CIMultiDict(), json.dumps({"detail": exc.detail}).encode())
    query = merged(plan.query(), query_for(in_headers.identifiers()))
    answer = answer_for(query)
    in_headers.strip(out_headers, answer)
    result = plan.filtered(answer, policy)
    unchanged = not result.counts
    verdict = plan.verify(result, REGION, answer, query)
    header_ids = texts_identifiers(proxy_headers.response_header_texts(out_headers), REGION)
    heads_verdict = pipeline.verdict(header_ids, answer, query)
    more = answer_for(merged(verdict.unasked, heads_verdict.unasked))
    if verdict.leaked or heads_verdict.leaked or any(more.values()):
        return Received(REFUSED, CIMultiDict(), b'{"detail": "response withheld"}')
    if not unchanged:
        for name in proxy_headers.REWRITTEN_BODY:
            out_headers.popall(name, None)
    return Received(200, out_headers, raw if unchanged else result.body)


def client_text(received: Received) -> str:
    """The body as a client reads it: Content-Encoding undone, then BOM, charset, UTF-8."""
    body = received.body
    encoding = received.headers.get("Content-Encoding", "").strip().lower()
    if encoding == "gzip":
        body = gzip.decompress(body)  # every member
    elif encoding == "deflate":
        body = zlib.decompress(body)
    elif encoding == "br":
        body = brotli.decompress(body)
    for bom, codec in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
                       (codecs.BOM_UTF16_BE, "utf-16")):
        if body.startswith(bom):
            return body.decode(codec, errors="replace")
    label = media.Label.of(received.headers)
    return body.decode(label.charset or "utf-8", errors="replace")


def header_text(received: Received) -> str:
    return "\n".join(f"{k}: {v}" for k, v in received.headers.items())


def judged(text: str, pool: list[Planted]) -> list[str]:
    return leaks(
        text,
        emails=[v for k, v in pool if k == "email"],
        phones=[v for k, v in pool if k == "phone"],
        linkedins=[v for k, v in pool if k == "linkedin"],
        region=REGION,
    )


def assert_no_leak(received: Received) -> None:
    if received.status == REFUSED:
        assert "detail" in json.loads(received.body)  # the refusal itself carries nothing
        return
    assert received.status == 200
    assert judged(client_text(received), DENIED) == []
    assert judged(header_text(received), DENIED) == []


def _json_label_on_other_text(response: Response) -> bool:
    """A JSON label on a body that is not JSON: the proxy refuses it (502), by design."""
    types = [v.partition(";")[0].strip() for k, v in response.headers if k == "Content-Type"
             for v in v.split(",")]
    return response.kind != "json" and "application/json" in types


def assert_allowed_kept(response: Response, received: Received) -> None:
    """Under `strip` every allowed identifier the client could read in the upstream's body
    and headers is still there (each sits in a cell of its own, never with a denied one)."""
    if received.status == REFUSED and _json_label_on_other_text(response):
        return
    assert received.status == 200, received.body
    before = Received(200, CIMultiDict(response.headers), response.body)
    allowed = sorted(set(response.cells.allowed))
    visible = set(judged(client_text(before) + "\n" + header_text(before), allowed))
    after = set(judged(client_text(received) + "\n" + header_text(received), allowed))
    assert visible <= after, visible - after


# Ten (five) times the profile's examples (`ci`: 2,000 and 1,000; `deep`: 200,000 and 100,000).
_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
_FUZZ = settings(max_examples=settings.default.max_examples * 10, suppress_health_check=_HEALTH)
_KEPT = settings(max_examples=settings.default.max_examples * 5, suppress_health_check=_HEALTH)


@_FUZZ
@given(responses(), st.sampled_from(["strip", "drop"]))
def test_no_denied_identifier_reaches_the_client(response: Response, policy: Policy) -> None:
    assert_no_leak(through(response.body, response.headers, policy))


@_KEPT
@given(responses())
def test_allowed_identifiers_are_kept_under_strip(response: Response) -> None:
    received = through(response.body, response.headers, "strip")
    assert_allowed_kept(response, received)


# ---------------------------------------------------------------------------- running proxy


@pytest.mark.parametrize("policy", ["strip", "drop"])
async def test_fuzzed_media_through_the_running_proxy(redis_url: str, policy: str) -> None:
    """A smaller number end to end: real Redis, headers written by hand, client bytes as sent."""
    api_key = f"om_{uuid.uuid4().hex}"
    for rule_type, values in RULES.items():
        await add(redis_url, tenant_of(api_key), rule_type, *values)
    samples: list[Response] = []

    @settings(max_examples=40, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(responses())
    def draw(response: Response) -> None:
        samples.append(response)

    draw()
    canned = {f"r{i}": (200, r.headers, r.body) for i, r in enumerate(samples)}
    async with hand_written_upstream(canned) as upstream:
        config = Settings(upstream=upstream, redis=redis_url, policy=policy)
        async with running_proxy(config) as proxy, aiohttp.ClientSession(
            auto_decompress=False
        ) as client:
            for i, response in enumerate(samples):
                async with client.get(f"{proxy.url}/r{i}", headers={"X-API-Key": api_key}) as r:
                    received = Received(r.status, CIMultiDict(r.headers), await r.read())
                assert_no_leak(received)
                if policy == "strip":
                    assert_allowed_kept(response, received)
