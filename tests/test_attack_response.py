"""Adversarial review of issue #10 through the running proxy, a fake upstream we control and a
real Redis: spellings, places, encodings and headers the issue did not list.

Every test asserts that no denied identifier reaches the client (judged by
tests/leak_detector.py, or by the exact spelling a browser would follow where that judge does
not read it) or that a clear 502 JSON comes back. `xfail(strict=True)` marks a hole found and
not fixed here: the test documents it and turns red the day it is closed.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import brotli
import orjson
import pytest
from aiohttp import web
from multidict import CIMultiDict

from proxy.settings import Settings
from rules.model import GLOBAL, RuleType, tenant_of
from tests.harness import Running, fake_upstream, running_proxy
from tests.leak_detector import leaks
from tests.test_edge import EdgeFake, json_answer, key
from tests.test_suppression import add

EMAIL = "jane.doe@acme.com"
PHONE = "+15125550100"
PROFILE = "linkedin.com/in/janedoe"
ALLOWED = "karl.marx@acme.com"

@dataclass
class AttackFake(EdgeFake):
    """EdgeFake plus answers whose headers repeat (two Content-Type, two Content-Encoding)
    under /edge/multi/<name>, and a CGI-style reading of the API key under /cgi/<name>."""

    multi: dict[str, tuple[list[tuple[str, str]], bytes]] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)  # a reason phrase per canned name

    def app(self) -> web.Application:
        app = super().app()
        app.router.add_route("*", "/cgi/{name}", self.cgi)
        return app

    async def edge(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name.startswith("multi/"):
            headers, body = self.multi[name.removeprefix("multi/")]
            return web.Response(headers=CIMultiDict(headers), body=body)
        if name in self.reasons:
            status, plain, body = self.canned[name]
            return web.Response(status=status, reason=self.reasons[name], headers=plain, body=body)
        return await super().edge(request)

    async def cgi(self, request: web.Request) -> web.Response:
        """Like a WSGI/CGI stack: `X_API_Key` and `X-API-Key` are the same HTTP_X_API_KEY."""
        keys = {v for n, v in request.headers.items() if n.upper().replace("_", "-") == "X-API-KEY"}
        if len(keys) != 1:
            return web.json_response({"detail": "Invalid API Key"}, status=401)
        status, headers, body = self.canned[request.match_info["name"]]
        return web.Response(status=status, headers=headers, body=body)


Env = tuple[AttackFake, Running, aiohttp.ClientSession]


@pytest.fixture
async def env(redis_url: str) -> AsyncIterator[Env]:
    fake = AttackFake()
    async with fake_upstream(fake) as (_, upstream):
        settings = Settings(upstream=upstream, redis=redis_url)
        async with running_proxy(settings) as proxy, aiohttp.ClientSession(
            auto_decompress=False
        ) as client:
            yield fake, proxy, client


async def denied_key(redis_url: str) -> str:
    """A fresh key whose own rules deny EMAIL, PHONE and PROFILE."""
    api_key = key()
    scope = tenant_of(api_key)
    await add(redis_url, scope, RuleType.EMAIL, EMAIL)
    await add(redis_url, scope, RuleType.PHONE, PHONE)
    await add(redis_url, scope, RuleType.LINKEDIN, f"https://www.{PROFILE}/")
    return api_key


def leaked(text: str) -> list[str]:
    return leaks(text, emails=[EMAIL], phones=[PHONE], linkedins=[PROFILE])


async def fetch(client: aiohttp.ClientSession, proxy: Running, name: str, api_key: str,
                method: str = "GET") -> tuple[int, CIMultiDict[str], bytes]:
    async with client.request(method, f"{proxy.url}/edge/{name}",
                              headers={"X-API-Key": api_key}) as r:
        return r.status, CIMultiDict(r.headers), await r.read()


def everything(headers: CIMultiDict[str], body: bytes) -> str:
    """What the client receives, as one text: every header line and the body."""
    lines = "\n".join(f"{name}: {value}" for name, value in headers.items())
    return lines + "\n\n" + body.decode("utf-8", "replace")


def is_502_json(status: int, body: bytes) -> bool:
    return status == 502 and bool(orjson.loads(body)["detail"])


def _digits(zero: int) -> bytes:
    """The denied phone's national digits written in another script's decimal digits."""
    local = "".join(chr(zero + int(d)) for d in "5125550100")
    return json.dumps({"note": f"call {local}"}, ensure_ascii=False).encode()


# 1. Spellings inside JSON the issue did not list: the proxy holds these.

HELD_SPELLINGS = {
    "json-escaped-at": rb'{"a": "jane.doe\u0040acme.com"}',
    "every-char-escaped": b'{"a": "' + "".join(f"\\u{ord(c):04x}" for c in EMAIL).encode() + b'"}',
    "escaped-slashes-linkedin": rb'{"a": "https:\/\/www.linkedin.com\/in\/janedoe\/"}',
    "escaped-i-in-path": rb'{"a": "https://linkedin.com/\u0069n/janedoe"}',
    "escaped-dots": rb'{"a": "jane\u002edoe@acme\u002ecom"}',
    "surrogate-pair-after": rb'{"a": "jane.doe@acme.com\ud83d\ude00"}',
    "uppercase": b'{"a": "JANE.DOE@ACME.COM"}',
    "mailto-pct40": b'{"a": "mailto:jane.doe%40acme.com?subject=hi"}',
    "all-pct-encoded": b'{"a": "mailto:%6A%61%6E%65%2E%64%6F%65%40%61%63%6D%65%2E%63%6F%6D"}',
    "trailing-dot-domain": b'{"a": "jane.doe@acme.com."}',
    "fullwidth-at": '{"a": "jane.doe\uff20acme.com"}'.encode(),
    "entity-of-fullwidth-at": b'{"a": "jane.doe&#xff20;acme.com"}',
    "escaped-fullwidth-at": rb'{"a": "jane.doe\uff20acme.com"}',
    "small-commercial-at": '{"a": "jane.doe\ufe6bacme.com"}'.encode(),
    "html-named-entity": b'{"a": "jane.doe&commat;acme.com"}',
    "soft-hyphen-inside": '{"a": "jane.\u00addoe@acme.com"}'.encode(),
    "arabic-indic-digits": _digits(0x0660),
    "fullwidth-digits": _digits(0xFF10),
    "devanagari-digits": _digits(0x0966),
    "float-exponent": b'{"x": 1.5125550100e10}',
    "float-exponent-negative": b'{"x": 51255501000e-1}',
    "float-with-zeros": b'{"x": 15125550100.00}',
    "negative-int": b'{"x": -15125550100}',
    "phone-as-key": b'{"+15125550100": {"a": 1}}',
    "national-phone-as-key": b'{"(512) 555-0100": 1}',
    "email-key-escaped": rb'{"jane.doe\u0040acme.com": 1}',
    "linkedin-as-key": b'{"linkedin.com/in/janedoe": 1}',
    "phone-0011-prefix": b'{"a": "011 1 512 555 0100"}',
    "slash-separators": b'{"a": "512/555/0100"}',
    "linkedin-port-fragment": b'{"a": "https://www.linkedin.com:443/in/janedoe#about"}',
    "linkedin-country-upper": b'{"a": "see UK.LINKEDIN.COM/IN/JANEDOE?x=1"}',
    "linkedin-encoded-in": b'{"a": "linkedin.com/%69n/janedoe"}',
    "long-string-around": b'{"a": "' + b"x" * 200_000 + b' jane.doe@acme.com"}',
    "near-depth-limit": b"[" * 250 + b'"jane.doe@acme.com"' + b"]" * 250,
}


@pytest.mark.parametrize("body", HELD_SPELLINGS.values(), ids=HELD_SPELLINGS.keys())
async def test_unlisted_json_spellings_are_held(env: Env, redis_url: str, body: bytes) -> None:
    fake, proxy, client = env
    api_key = await denied_key(redis_url)
    fake.canned["doc"] = (200, {"Content-Type": "application/json"}, body)
    status, headers, out = await fetch(client, proxy, "doc", api_key)
    assert leaked(everything(headers, out)) == [] and leaked(body.decode())
    assert status in (200, 502)


async def test_nesting_past_the_depth_limit_is_502_json(env: Env, redis_url: str) -> None:
    fake, proxy, client = env
    api_key = await denied_key(redis_url)
    body = b"[" * 300 + b'"jane.doe@acme.com"' + b"]" * 300
    fake.canned["deep"] = (200, {"Content-Type": "application/json"}, body)
    status, _, out = await fetch(client, proxy, "deep", api_key)
    assert is_502_json(status, out) and not leaked(out.decode())


# 2. Spellings a browser follows to the same profile (the judge reads them too).
#    Checked by the exact spelling: it must not reach the client.

BROWSER_HELD = {
    "double-slash": "https://www.linkedin.com//in/janedoe",
    "locale-suffix": "https://www.linkedin.com/in/janedoe/de",
}
BROWSER_LEAKS = {
    "dot-segment": "https://www.linkedin.com/./in/janedoe",
    "trailing-dot-host": "https://www.linkedin.com./in/janedoe",
    "ideographic-full-stop": "https://linkedin\u3002com/in/janedoe",
    "tracking-comm-path": "https://www.linkedin.com/comm/in/janedoe",
}


async def _profile_reaches_client(env: Env, redis_url: str, url: str) -> bool:
    fake, proxy, client = env
    api_key = await denied_key(redis_url)
    body = ('{"a": "' + url + '"}').encode()
    fake.canned["li"] = (200, {"Content-Type": "application/json"}, body)
    status, _, out = await fetch(client, proxy, "li", api_key)
    assert status in (200, 502)
    return b"janedoe" in out


@pytest.mark.parametrize("url", BROWSER_HELD.values(), ids=BROWSER_HELD.keys())
async def test_linkedin_paths_a_browser_follows_are_held(
    env: Env, redis_url: str, url: str
) -> None:
    assert not await _profile_reaches_client(env, redis_url, url)


@pytest.mark.parametrize("url", BROWSER_LEAKS.values(), ids=BROWSER_LEAKS.keys())
async def test_linkedin_paths_a_browser_follows_leak(env: Env, redis_url: str, url: str) -> None:
    assert leaked(url) == [PROFILE]  # the judge reads the spelling as the profile
    assert not await _profile_reaches_client(env, redis_url, url)


# 3. Unicode separators and escapes a reader folds away (separators: fixed in phonescan).

UNICODE_SEPARATED = {
    "thin-space": "512\u2009555\u20090100",
    "narrow-nbsp": "512\u202f555\u202f0100",
    "ideographic-space": "512\u3000555\u30000100",
    "one-dot-leader": "512\u2024555\u20240100",
    "figure-space": "512\u2007555\u20070100",
}


@pytest.mark.parametrize("text", UNICODE_SEPARATED.values(), ids=UNICODE_SEPARATED.keys())
async def test_phone_with_unicode_separators_in_free_text(
    env: Env, redis_url: str, text: str
) -> None:
    fake, proxy, client = env
    api_key = await denied_key(redis_url)
    body = json.dumps({"note": f"call {text}"}, ensure_ascii=False).encode()
    assert leaked(body.decode())
    fake.canned["sep"] = (200, {"Content-Type": "application/json"}, body)
    status, headers, out = await fetch(client, proxy, "sep", api_key)
    assert leaked(everything(headers, out)) == []


async def test_json_escaped_fullwidth_linkedin_host(env: Env, redis_url: str) -> None:
    """`\\uff4c` decodes to a full-width `l`, which a client folds again (fixed in textview)."""
    fake, proxy, client = env
    api_key = await denied_key(redis_url)
    body = json.dumps({"a": "https://\uff4c\uff49\uff4e\uff4b\uff45\uff44\uff49\uff4e.com/in/janedoe"})
    assert "\\uff4c" in body and leaked(body)
    fake.canned["fw"] = (200, {"Content-Type": "application/json"}, body.encode())
    status, headers, out = await fetch(client, proxy, "fw", api_key)
    assert leaked(everything(headers, out)) == []


# 4. Encodings: what the proxy cannot decode is a 502 JSON, never the raw bytes.

def _gzip(data: bytes) -> bytes:
    import gzip

    return gzip.compress(data, mtime=0)


def _raw_deflate(data: bytes) -> bytes:
    import zlib

    packer = zlib.compressobj(wbits=-15)
    return packer.compress(data) + packer.flush()


DOC = orjson.dumps({"emails": [EMAIL, ALLOWED]})
UNDECODABLE = {
    "zstd": ({"Content-Encoding": "zstd"}, b"(\xb5/\xfd" + DOC),
    "compress": ({"Content-Encoding": "compress"}, DOC),
    "unknown": ({"Content-Encoding": "x-made-up"}, DOC),
    "stacked-gzip-zstd": ({"Content-Encoding": "gzip, zstd"}, _gzip(DOC)),
    "raw-deflate": ({"Content-Encoding": "deflate"}, _raw_deflate(DOC)),
    "gzip-labelled-br": ({"Content-Encoding": "br"}, _gzip(DOC)),
    "double-gzip-once-labelled": ({"Content-Encoding": "gzip"}, _gzip(_gzip(DOC))),
    "gzip-unlabelled": ({}, _gzip(DOC)),
}


@pytest.mark.parametrize("case", UNDECODABLE.values(), ids=UNDECODABLE.keys())
async def test_bodies_the_proxy_cannot_decode_are_502_json(
    env: Env, redis_url: str, case: tuple[dict[str, str], bytes]
) -> None:
    fake, proxy, client = env
    api_key = await denied_key(redis_url)
    extra, body = case
    fake.canned["enc"] = (200, {"Content-Type": "application/json", **extra}, body)
    status, headers, out = await fetch(client, proxy, "enc", api_key)
    assert is_502_json(status, out) and leaked(everything(headers, out)) == []


async def test_stacked_codings_are_all_undone_and_the_body_filtered(
    env: Env, redis_url: str
) -> None:
    fake, proxy, client = env
    api_key = await denied_key(redis_url)
    stacked = {"Content-Type": "application/json", "Content-Encoding": "gzip, br"}
    fake.canned["stacked"] = (200, stacked, brotli.compress(_gzip(DOC)))
    status, headers, out = await fetch(client, proxy, "stacked", api_key)
    assert (status, "Content-Encoding" in headers) == (200, False)
    assert orjson.loads(out)["emails"] == [ALLOWED]


async def test_two_content_encoding_headers_never_pass_a_body(env: Env, redis_url: str) -> None:
    """identity first, gzip second: the proxy must not read only the label it likes."""
    fake, proxy, client = env
    api_key = await denied_key(redis_url)
    fake.multi["two-ce"] = ([("Content-Type", "application/json"), ("Content-Encoding", "identity"),
                             ("Content-Encoding", "gzip")], _gzip(DOC))
    status, headers, out = await fetch(client, proxy, "multi/two-ce", api_key)
    assert leaked(everything(headers, _gunzip(out))) == []
    assert leaked(everything(headers, out)) == []


def _gunzip(data: bytes) -> bytes:
    import gzip

    try:
        return gzip.decompress(data)
    except OSError:
        return data


# 5. Response headers and statuses the body filter never sees.

HEADER_CASES = {
    "refresh-mailto": ("Refresh", "0; url=mailto:jane.doe%40acme.com"),
    "link-mailto": ("Link", "<mailto:jane.doe@acme.com>; rel=author"),
    "location-linkedin": ("Location", "https://www.linkedin.com/in/janedoe?trk=x"),
    "json-escape": ("X-Contact", "jane.doe\\u0040acme.com"),
    "html-entity": ("X-Contact", "jane.doe&#64;acme.com"),
    "phone-tel": ("X-Callback", "tel:+1-512-555-0100"),
    "fullwidth-at-utf8": ("X-Owner", "jane.doe\uff20acme.com"),
    "phone-in-header-name": ("X-Callback-5125550100", "yes"),
    "content-disposition": ("Content-Disposition",
                            "attachment; filename*=UTF-8''jane.doe%40acme.com.vcf"),
}


@pytest.mark.parametrize("status", [200, 302, 303, 307])
@pytest.mark.parametrize("header", HEADER_CASES.values(), ids=HEADER_CASES.keys())
async def test_headers_of_redirects_and_streamed_bodies_are_filtered(
    env: Env, redis_url: str, status: int, header: tuple[str, str]
) -> None:
    fake, proxy, client = env
    api_key = await denied_key(redis_url)
    name, value = header
    fake.canned["h"] = (status, {"Content-Type": "image/png", name: value}, b"\x89PNG")
    got, headers, out = await fetch(client, proxy, "h", api_key)
    assert got == status and leaked(everything(headers, b"")) == []


@pytest.mark.parametrize("word", [
    "=?utf-8?Q?jane.doe=40acme.com?=",
    "=?UTF-8?B?amFuZS5kb2VAYWNtZS5jb20=?=",
    "=?utf-8?q?a=FF?= =?utf-8?q?jane.doe=40acme.com?=",
], ids=["Q", "B", "bad-byte-then-Q"])
async def test_rfc2047_encoded_word_in_a_header(env: Env, redis_url: str, word: str) -> None:
    fake, proxy, client = env
    api_key = await denied_key(redis_url)
    fake.canned["q"] = (200, {"Content-Type": "image/png", "X-Owner": word}, b"\x89PNG")
    _, headers, _ = await fetch(client, proxy, "q", api_key)
    assert word not in headers.get("X-Owner", "")


@pytest.mark.parametrize("method", ["OPTIONS", "DELETE", "PATCH"])
async def test_json_bodies_of_any_method_are_filtered(
    env: Env, redis_url: str, method: str
) -> None:
    fake, proxy, client = env
    api_key = await denied_key(redis_url)
    fake.canned["m"] = json_answer({"emails": [EMAIL, ALLOWED]})
    status, headers, out = await fetch(client, proxy, "m", api_key, method)
    assert status == 200 and leaked(everything(headers, out)) == [] and ALLOWED.encode() in out


async def test_head_sends_no_body_and_filters_headers(env: Env, redis_url: str) -> None:
    fake, proxy, client = env
    api_key = await denied_key(redis_url)
    fake.canned["head"] = json_answer({"emails": [EMAIL]}, Link=f"<mailto:{EMAIL}>")
    status, headers, out = await fetch(client, proxy, "head", api_key, "HEAD")
    assert out == b"" and leaked(everything(headers, out)) == []


async def test_global_rules_apply_to_a_request_without_a_key(env: Env, redis_url: str) -> None:
    fake, proxy, client = env
    address = f"g{key()[3:11]}@globex.com"
    await add(redis_url, GLOBAL, RuleType.EMAIL, address)
    fake.canned["glob"] = json_answer({"emails": [address, ALLOWED]})
    async with client.get(f"{proxy.url}/edge/glob") as r:
        body = await r.read()
    assert leaks(body.decode(), emails=[address]) == [] and ALLOWED.encode() in body


# 6. Media-type labels (another helper wires the text kinds; noted, not fixed here).


async def test_two_content_type_headers_binary_first(env: Env, redis_url: str) -> None:
    fake, proxy, client = env
    api_key = await denied_key(redis_url)
    fake.multi["two-ct"] = ([("Content-Type", "image/png"), ("Content-Type", "application/json")],
                            DOC)
    status, headers, out = await fetch(client, proxy, "multi/two-ct", api_key)
    assert leaked(everything(headers, out)) == [] or is_502_json(status, out)


# 7. Scope: a header the upstream may read as the key, unseen by the proxy.


@pytest.mark.parametrize("name", ["X_API_Key", "x_api_key", "X-API_Key"])
async def test_underscore_spelling_of_the_key_header_is_refused(
    env: Env, redis_url: str, name: str
) -> None:
    """WSGI/CGI stacks map `X_API_Key` and `X-API-Key` to one variable: the upstream answers
    for the real key while the proxy, seeing no key, applies only the global rules."""
    fake, proxy, client = env
    api_key = await denied_key(redis_url)
    fake.canned["people"] = json_answer({"emails": [EMAIL, ALLOWED]})
    before = len(fake.requests)
    async with client.get(f"{proxy.url}/cgi/people", headers={name: api_key}) as r:
        status, body = r.status, await r.read()
    assert leaked(body.decode()) == []
    assert status == 400 and orjson.loads(body)["detail"] and len(fake.requests) == before


# 8. --policy drop: the record goes with its denied identifier, wherever the record sits.


@pytest.fixture
async def drop_env(redis_url: str) -> AsyncIterator[Env]:
    fake = AttackFake()
    async with fake_upstream(fake) as (_, upstream):
        settings = Settings(upstream=upstream, redis=redis_url, policy="drop")
        async with running_proxy(settings) as proxy, aiohttp.ClientSession() as client:
            yield fake, proxy, client


OTHER_PHONE = "+1 512 555 0199"  # Jane's second number: allowed, but her record must go


@pytest.mark.parametrize(("doc", "kept"), [
    ({"people": {"p1": {"email": EMAIL, "phone": OTHER_PHONE}, "p2": {"name": "Bob"}}},
     {"people": {"p2": {"name": "Bob"}}}),
    ({"rows": [["Jane", EMAIL, OTHER_PHONE], ["Bob", 2]]}, {"rows": [["Bob", 2]]}),
], ids=["record-in-a-map", "row-array"])
async def test_drop_removes_records_outside_lists(
    drop_env: Env, redis_url: str, doc: object, kept: object
) -> None:
    fake, proxy, client = drop_env
    api_key = await denied_key(redis_url)
    fake.canned["rec"] = json_answer(doc)
    status, headers, out = await fetch(client, proxy, "rec", api_key)
    assert leaked(out.decode()) == []
    assert leaks(out.decode(), phones=["+15125550199"]) == []
    assert status == 200 and orjson.loads(out) == kept  # the record went, the rest stayed


@pytest.mark.parametrize("content_type", ["image/png", "application/json"])
async def test_the_reason_phrase_is_not_a_channel(
    env: Env, redis_url: str, content_type: str
) -> None:
    """`HTTP/1.1 200 jane.doe@acme.com`: the status line is part of what the client reads."""
    fake, proxy, client = env
    api_key = await denied_key(redis_url)
    fake.reasons["reason"] = f"call {PHONE} or {EMAIL}"
    fake.canned["reason"] = (200, {"Content-Type": content_type}, b"{}")
    async with client.get(f"{proxy.url}/edge/reason", headers={"X-API-Key": api_key}) as r:
        reason, body = r.reason or "", await r.read()
    assert leaked(reason) == [] and leaked(body.decode()) == []
