"""proxy/upstream.py: a request target can never leave the configured upstream; bodies decode
within their limit or fail closed."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable

import brotli
import pytest

from proxy.errors import BadRequestError, UpstreamBodyError
from proxy.upstream import Upstream, decode, decoded

UP = Upstream.parse("https://api.openmart.ai/base/")


def gz(data: bytes) -> bytes:
    """gzip without a time stamp: the same bytes, so the same test ids, in every process."""
    return gzip.compress(data, mtime=0)


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
        ("", BODY), ("identity", BODY), ("gzip", gz(BODY)),
        ("x-gzip", gz(BODY)), (" GZIP ", gz(BODY)),
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
        ("gzip, zstd", b"x", "cannot be filtered"),
        ("compress, gzip", gz(BODY), "cannot be filtered"),
    ],
)
def test_undecodable_bodies_fail_closed(encoding: str, body: bytes, message: str) -> None:
    with pytest.raises(UpstreamBodyError, match=message):
        decode(body, encoding, limit=1 << 20)


@pytest.mark.parametrize(
    ("encoding", "encoded"),
    [
        ("identity, gzip", gz(BODY)),
        ("gzip, gzip", gz(gz(BODY))),
        ("gzip,br", brotli.compress(gz(BODY))),
        ("deflate, identity, br", brotli.compress(zlib.compress(BODY))),
        ("br, , gzip", gz(brotli.compress(BODY))),
    ],
)
def test_every_coding_of_a_list_is_undone_last_applied_first(
    encoding: str, encoded: bytes
) -> None:
    assert decode(encoded, encoding, limit=len(BODY)) == BODY


def test_each_layer_of_a_list_is_capped() -> None:
    inner = gzip.compress(b"\0" * (8 * 1024 * 1024))
    with pytest.raises(UpstreamBodyError, match="larger than 1000 bytes"):
        decode(gzip.compress(inner), "gzip, gzip", limit=1000)


@pytest.mark.parametrize("value", ["jane.doe@acme.com", "gzip, tel:+15125550100", "x" * 300])
def test_an_unknown_coding_is_refused_without_naming_it(value: str) -> None:
    with pytest.raises(UpstreamBodyError) as caught:
        decode(b"{}", value, limit=1 << 20)
    assert value.split(", ")[-1] not in caught.value.detail


@pytest.mark.parametrize(
    ("encoding", "encoded"),
    [("br", brotli.compress(BODY)[:-4]), ("gzip, br", brotli.compress(gz(BODY))[:-4]),
     ("gzip", gz(BODY)[:-9])],
)
def test_a_truncated_stream_fails_closed(encoding: str, encoded: bytes) -> None:
    with pytest.raises(UpstreamBodyError, match="does not decode"):
        decode(encoded, encoding, limit=1 << 20)


def _gzip_with(flags: int, fields: bytes, content: bytes = BODY) -> bytes:
    """A gzip member with optional header fields (RFC 1952 §2.3.1) before its deflate data."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = deflate.compress(content) + deflate.flush()
    trailer = zlib.crc32(content).to_bytes(4, "little") + len(content).to_bytes(4, "little")
    return b"\x1f\x8b\x08" + bytes([flags]) + b"\0\0\0\0\x00\x03" + fields + data + trailer


@pytest.mark.parametrize(
    ("flags", "fields"),
    [(0x08, b"jane@acme.com\0"), (0x10, b"call +15125550100\0"), (0x04, b"\x05\0jane@")],
    ids=["fname", "fcomment", "fextra"],
)
def test_a_gzip_header_text_field_is_reported(flags: int, fields: bytes) -> None:
    member = _gzip_with(flags, fields)
    assert gzip.decompress(member) == BODY
    assert decoded(member, "gzip", 1 << 20).hidden_fields
    assert decoded(gzip.compress(BODY) + member, "gzip", 1 << 20).hidden_fields  # 2nd member
    assert decoded(gzip.compress(member), "gzip, gzip", 1 << 20).hidden_fields  # inner layer


def test_a_plain_gzip_header_hides_nothing() -> None:
    plain = _gzip_with(0, b"")  # no optional field at all
    assert decoded(plain, "gzip", 1 << 20).hidden_fields is False
    assert decoded(gzip.compress(BODY), "gzip", 1 << 20).hidden_fields is False
