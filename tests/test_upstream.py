"""proxy/upstream.py: a request target can never leave the configured upstream; bodies decode
within their limit or fail closed."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable

import brotli
import pytest

from proxy.errors import BadRequestError, UpstreamBodyError
from proxy.upstream import Upstream, decode

UP = Upstream.parse("https://api.openmart.ai/base/")


@pytest.mark.parametrize(
    ("target", "url"),
    [
        ("/api/v1/task/1", "https://api.openmart.ai/base/api/v1/task/1"),
        ("/a?x=%20y&z=1", "https://api.openmart.ai/base/a?x=%20y&z=1"),
        ("/a%2Fb", "https://api.openmart.ai/base/a%2Fb"),
        ("http://evil.example/api/v1/task/1", "https://api.openmart.ai/base/api/v1/task/1"),
        ("https://evil.example:8443/p?q=1", "https://api.openmart.ai/base/p?q=1"),
        ("HTTP://evil.example", "https://api.openmart.ai/base/"),
        ("/a..b/c.d/...", "https://api.openmart.ai/base/a..b/c.d/..."),
    ],
)
def test_target_maps_under_the_upstream_base(target: str, url: str) -> None:
    assert str(UP.url_for(target)) == url


@pytest.mark.parametrize(
    "target",
    [
        "/a/../b", "/..", "/a/./b", "/a/.", "/%2e%2e/b", "/%2E%2e/b", "/.%2e/b", "/%2e/b",
        "/a/%252e%252e/b", "/a/%25252e%25252e/b", "/a\\..\\b", "/a/%5c..%5cb",
        "http://evil.example/../x",
    ],
)
def test_dot_segments_plain_or_encoded_are_400(target: str) -> None:
    with pytest.raises(BadRequestError, match="dot segments"):
        UP.url_for(target)


def test_dot_segments_in_the_query_are_just_data() -> None:
    assert str(UP.url_for("/a?next=/../../x")) == "https://api.openmart.ai/base/a?next=/../../x"


@pytest.mark.parametrize("target", ["evil.example/x", "ftp://evil.example/x", "http:///x", "*"])
def test_non_path_targets_are_400(target: str) -> None:
    with pytest.raises(BadRequestError):
        UP.url_for(target)


@pytest.mark.parametrize("target", ["//evil.example/x", "/@evil.example/x", "/:99/x"])
def test_authority_like_paths_stay_paths_on_the_upstream(target: str) -> None:
    assert str(UP.url_for(target)) == f"https://api.openmart.ai/base{target}"


BODY = b'{"email": "jane@acme.com"}' * 100


@pytest.mark.parametrize(
    ("encoding", "encoded"),
    [
        ("", BODY), ("identity", BODY), ("gzip", gzip.compress(BODY)),
        ("x-gzip", gzip.compress(BODY)), (" GZIP ", gzip.compress(BODY)),
        ("deflate", zlib.compress(BODY)), ("br", brotli.compress(BODY)),
    ],
)
def test_decode_each_encoding(encoding: str, encoded: bytes) -> None:
    assert decode(encoded, encoding, limit=len(BODY)) == BODY


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [("gzip", gzip.compress), ("deflate", zlib.compress), ("br", brotli.compress)],
)
def test_decoded_size_is_capped_however_well_it_compresses(
    encoding: str, compress: Callable[[bytes], bytes]
) -> None:
    bomb = compress(b"\0" * (8 * 1024 * 1024))
    with pytest.raises(UpstreamBodyError, match="larger than 1000 bytes"):
        decode(bomb, encoding, limit=1000)


@pytest.mark.parametrize(
    ("encoding", "body", "message"),
    [
        ("gzip", b"not gzip", "does not decode"),
        ("deflate", b"not zlib", "does not decode"),
        ("br", b"\xff\xff\xff not brotli", "does not decode"),
        ("zstd", b"x", "cannot be filtered"),
        ("gzip, br", b"x", "cannot be filtered"),
    ],
)
def test_undecodable_bodies_fail_closed(encoding: str, body: bytes, message: str) -> None:
    with pytest.raises(UpstreamBodyError, match=message):
        decode(body, encoding, limit=1 << 20)
