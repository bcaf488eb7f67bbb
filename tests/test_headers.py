"""proxy/headers.py: which headers cross the proxy, in each direction."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from proxy.errors import BadRequestError
from proxy.headers import HOP_BY_HOP, client_response, header_texts, upstream_request


def headers(*pairs: tuple[str, str]) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict(pairs))


def to_upstream(*pairs: tuple[str, str], peer: str | None = "10.0.0.7") -> list[tuple[str, str]]:
    out = upstream_request(headers(*pairs), peer=peer, scheme="https", length=None)
    return list(out.items())


def test_every_hop_by_hop_header_is_dropped_both_ways() -> None:
    sent = [(name.title(), "x") for name in sorted(HOP_BY_HOP)] + [("X-Kept", "1")]
    assert to_upstream(*sent, peer=None) == [("X-Kept", "1"), ("X-Forwarded-Proto", "https")]
    assert list(client_response(headers(*sent), rewritten=False).items()) == [("X-Kept", "1")]


def test_headers_named_in_connection_are_dropped_case_insensitively() -> None:
    sent = [("Connection", "keep-alive, X-Secret-Hop"), ("x-secret-hop", "a"),
            ("Connection", " Other-Hop ,"), ("OTHER-HOP", "b"), ("X-Kept", "c")]
    assert to_upstream(*sent, peer=None) == [("X-Kept", "c"), ("X-Forwarded-Proto", "https")]
    assert list(client_response(headers(*sent), rewritten=False).items()) == [("X-Kept", "c")]


def test_any_proxy_prefixed_header_is_dropped() -> None:
    sent = [("Proxy-Authorization", "Basic eA=="), ("Proxy-Foo", "1"), ("Authorization", "k")]
    assert to_upstream(*sent, peer=None) == [("Authorization", "k"), ("X-Forwarded-Proto", "https")]


def test_auth_kept_forwarded_for_appended_own_headers_replaced() -> None:
    sent = [("X-API-Key", "k"), ("Authorization", "Bearer t"), ("Host", "evil.example"),
            ("Content-Length", "999"), ("X-Forwarded-Proto", "gopher"),
            ("X-Forwarded-For", "203.0.113.9"), ("Accept", "a"), ("Accept", "b")]
    out = upstream_request(headers(*sent), peer="10.0.0.7", scheme="http", length=12)
    assert list(out.items()) == [
        ("X-API-Key", "k"), ("Authorization", "Bearer t"), ("Accept", "a"), ("Accept", "b"),
        ("X-Forwarded-For", "203.0.113.9, 10.0.0.7"), ("X-Forwarded-Proto", "http"),
        ("Content-Length", "12"),
    ]


def test_forwarded_for_starts_at_the_peer_without_a_client_header() -> None:
    assert ("X-Forwarded-For", "10.0.0.7") in to_upstream(("Accept", "*/*"))


def test_rewritten_response_loses_length_encoding_and_validators() -> None:
    sent = [("Content-Type", "application/json"), ("Content-Length", "10"),
            ("Content-Encoding", "gzip"), ("ETag", '"abc"'), ("Content-MD5", "x"),
            ("Transfer-Encoding", "chunked"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")]
    rewritten = client_response(headers(*sent), rewritten=True)
    assert list(rewritten.items()) == [
        ("Content-Type", "application/json"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"),
    ]
    untouched = client_response(headers(*sent), rewritten=False)
    assert list(untouched.items()) == [s for s in sent if s[0] != "Transfer-Encoding"]


@pytest.mark.parametrize(
    ("name", "value"),
    [("Date", "Tue, 01 Dec 2026 10:00:00 GMT"), ("Last-Modified", "Sunday, 06-Nov-94 08:49:37 GMT"),
     ("Expires", "Sun Nov  6 08:49:37 1994"), ("Age", "3600"), ("Content-Length", "12")],
)
def test_a_date_or_number_that_is_exactly_one_is_not_read(name: str, value: str) -> None:
    assert header_texts(name, value) == []


@pytest.mark.parametrize(
    ("name", "value"),
    [("Date", "Tue, 01 Dec 2026 jane.doe@acme.com"), ("Expires", "+1 512 555 0100"),
     ("Last-Modified", "Tue, 01 Dec 2026 10:00:00 GMT jane@acme.com"), ("Age", "5125550100 s"),
     ("Content-Length", "0, 5125550100"), ("Date", "tue, 01 dec 2026 10:00:00 gmt\tx")],
)
def test_a_date_or_number_header_holding_anything_else_is_read(name: str, value: str) -> None:
    assert value in header_texts(name, value)


@pytest.mark.parametrize(("sent", "detail"), [
    ([("X-Ok", "bad\x00value"), ("X_API_Key", "k")], "printable ASCII"),
    ([("X_API_Key", "k"), ("X-Ok", "bad\x00value")], "X_API_Key-style"),
    ([("X_API_Key", "bad\x00value")], "printable ASCII"),
    ([("X-Ok", "1"), ("Bad Name", "1"), ("X_API_Key", "k")], "printable ASCII"),
    ([("X-Ok", "1"), ("X-API_Key", "k"), ("Bad Name", "1")], "X_API_Key-style"),
])
def test_the_first_refused_header_names_the_400(sent: list[tuple[str, str]], detail: str) -> None:
    """Names are checked once per sequence of names (cached), values every time: the order of
    the headers still decides which refusal a request gets."""
    for _ in range(2):  # the second time from the cache of names
        with pytest.raises(BadRequestError, match=detail):
            to_upstream(*sent)


def test_values_are_judged_together_as_each_alone() -> None:
    """One check over the joined values: a tab beside printable values passes, a control or
    non-ASCII character in any value refuses the request."""
    assert ("X-Tab", "a\tb") in to_upstream(("X-Ok", "plain"), ("X-Tab", "a\tb"))
    for bad in ("caf\u00e9", "a\x7fb", "a\nb"):
        with pytest.raises(BadRequestError, match="printable ASCII"):
            to_upstream(("X-Ok", "plain"), ("X-Bad", bad))
