"""Classification of a response body (proxy/media.py): every textual body gets a filter.

Each row names Content-Type headers (none, one, two) and a decoded body; the expected kind is
written out by hand. Then `--binary-types`, charsets, and the encoded bodies (gzip with several
members, br, deflate) through the decoder the proxy uses, judged by tests/leak_detector.py.
"""

from __future__ import annotations

import codecs
import gzip
import zlib
from collections.abc import Callable

import brotli
import pytest
from multidict import CIMultiDict

from proxy import media
from proxy.errors import UpstreamBodyError
from proxy.media import BodyKind, Label
from proxy.settings import DEFAULT_BINARY_TYPES, SettingsError, from_sources
from rules.detect.textbody import MARKER
from rules.model import RuleType
from tests import leak_detector

JSON_DOC = b'{"email": "jane@acme.com"}'
NDJSON = b'{"email": "jane@acme.com"}\n{"email": "bob@example.org"}\n'
SSE = b"event: contact\ndata: jane@acme.com\n\n"
CSV = b"name,email\nJane,jane@acme.com\n"
LOG = b"[12:00] mailed jane@acme.com\n"


def headers(*values: str) -> Label:
    return Label.of(CIMultiDict(("Content-Type", v) for v in values))


CASES = [
    # labelled JSON, whatever the body
    (["application/json"], JSON_DOC, BodyKind.JSON),
    (["application/json; charset=utf-8"], b"not json", BodyKind.JSON),
    (["Application/JSON"], JSON_DOC, BodyKind.JSON),
    (["application/problem+json"], JSON_DOC, BodyKind.JSON),
    (["application/vnd.api+json"], JSON_DOC, BodyKind.JSON),
    (["text/json"], JSON_DOC, BodyKind.JSON),
    # JSON by sniffing, whatever the (non-binary) label
    (["text/plain"], JSON_DOC, BodyKind.JSON),
    (["text/html"], b"  \r\n[1, 2]", BodyKind.JSON),
    (["text/csv"], b"\xef\xbb\xbf" + JSON_DOC, BodyKind.JSON),
    ([], JSON_DOC, BodyKind.JSON),
    ([""], JSON_DOC, BodyKind.JSON),
    (["application/x-ndjson"], JSON_DOC, BodyKind.JSON),
    (["text/event-stream"], b'{"a": 1}', BodyKind.JSON),
    # NDJSON by label or by sniffing
    (["application/x-ndjson"], NDJSON, BodyKind.NDJSON),
    (["application/jsonl"], NDJSON, BodyKind.NDJSON),
    (["application/json-seq"], b"\x1e" + JSON_DOC, BodyKind.NDJSON),
    (["application/x-ndjson"], b"plain line", BodyKind.NDJSON),
    (["text/plain"], NDJSON, BodyKind.NDJSON),
    ([], NDJSON, BodyKind.NDJSON),
    (["text/plain"], b'{"a": 1}\n\n  {"b": 2}\r\n', BodyKind.NDJSON),
    # SSE
    (["text/event-stream"], SSE, BodyKind.SSE),
    (["text/event-stream; charset=utf-8"], SSE, BodyKind.SSE),
    # everything else textual or unknown: text
    (["text/plain"], b"jane@acme.com", BodyKind.TEXT),
    (["text/plain"], LOG, BodyKind.TEXT),
    (["text/plain"], b'{"a": 1} trailing', BodyKind.TEXT),
    (["text/csv"], CSV, BodyKind.TEXT),
    (["text/html"], b"<a href='mailto:jane@acme.com'>x</a>", BodyKind.TEXT),
    (["application/xml"], b"<e>jane@acme.com</e>", BodyKind.TEXT),
    (["text/xml"], b"<e>jane@acme.com</e>", BodyKind.TEXT),
    (["application/atom+xml"], b"<e>jane@acme.com</e>", BodyKind.TEXT),
    (["image/svg+xml"], b"<svg>jane@acme.com</svg>", BodyKind.TEXT),
    (["application/javascript"], b"var e = 'jane@acme.com';", BodyKind.TEXT),
    (["application/x-www-form-urlencoded"], b"e=jane%40acme.com", BodyKind.TEXT),
    (["application/vnd.unknown"], b"jane@acme.com", BodyKind.TEXT),
    ([], b"jane@acme.com", BodyKind.TEXT),
    ([""], b"", BodyKind.TEXT),
    (["garbage"], b"jane@acme.com", BodyKind.TEXT),
    # clearly binary: streamed, the label is the contract (no sniffing)
    (["image/png"], b"\x89PNG", BodyKind.BINARY),
    (["IMAGE/JPEG"], b"\xff\xd8", BodyKind.BINARY),
    (["audio/mpeg"], b"ID3", BodyKind.BINARY),
    (["video/mp4"], b"....ftyp", BodyKind.BINARY),
    (["font/woff2"], b"wOF2", BodyKind.BINARY),
    (["application/octet-stream"], b"jane@acme.com", BodyKind.BINARY),
    (["application/octet-stream"], JSON_DOC, BodyKind.BINARY),
    (["application/pdf"], b"%PDF-1.7", BodyKind.BINARY),
    (["application/zip"], b"PK\x03\x04", BodyKind.BINARY),
    (["application/gzip"], b"\x1f\x8b", BodyKind.BINARY),
    (["application/x-tar"], b"", BodyKind.BINARY),
    (["application/x-7z-compressed"], b"7z", BodyKind.BINARY),
    # two Content-Type headers (or a comma list): the most dangerous reading
    (["image/png", "text/plain"], b"jane@acme.com", BodyKind.TEXT),
    (["image/png", "image/png"], b"jane@acme.com", BodyKind.TEXT),
    (["application/octet-stream", "application/json"], b"jane", BodyKind.JSON),
    (["text/plain", "application/json"], b"jane@acme.com", BodyKind.JSON),
    (["text/event-stream", "application/x-ndjson"], SSE, BodyKind.NDJSON),
    (["text/plain", "text/event-stream"], SSE, BodyKind.SSE),
    (["image/png, text/html"], b"jane@acme.com", BodyKind.TEXT),
    (["image/png", "text/plain"], JSON_DOC, BodyKind.JSON),
]


@pytest.mark.parametrize(("types", "body", "kind"), CASES)
def test_classification(types: list[str], body: bytes, kind: BodyKind) -> None:
    assert media.classify(headers(*types), body) is kind


def test_no_content_type_header_at_all_is_text() -> None:
    label = Label.of(CIMultiDict())
    assert label.types == ()
    assert media.label_kind(label) is BodyKind.TEXT


def test_only_a_single_binary_label_streams_before_the_body_is_read() -> None:
    assert media.label_kind(headers("image/png")) is BodyKind.BINARY
    assert media.label_kind(headers("image/png", "image/gif")) is not BodyKind.BINARY
    assert media.label_kind(headers("text/plain")) is BodyKind.TEXT


def test_binary_types_are_configurable() -> None:
    only_png = from_sources({"binary_types": "image/png, application/x-custom"}, {}).binary_types
    assert only_png == ("image/png", "application/x-custom")
    assert media.classify(headers("image/png"), b"x", only_png) is BodyKind.BINARY
    assert media.classify(headers("image/gif"), b"jane@acme.com", only_png) is BodyKind.TEXT
    assert media.classify(headers("application/x-custom"), b"x", only_png) is BodyKind.BINARY
    assert media.classify(headers("application/pdf"), b"x", ()) is BodyKind.TEXT


@pytest.mark.parametrize("bad", ["image", "*/*", "image/x*", "/png"])
def test_binary_types_reject_what_is_not_a_media_type(bad: str) -> None:
    with pytest.raises(SettingsError, match="type/subtype"):
        from_sources({}, {"DENYPROXY_BINARY_TYPES": bad})


def test_binary_types_setting_from_flag_and_environment() -> None:
    assert from_sources({}, {}).binary_types == DEFAULT_BINARY_TYPES
    env = {"DENYPROXY_BINARY_TYPES": "video/*"}
    assert from_sources({}, env).binary_types == ("video/*",)
    assert from_sources({"binary_types": "font/*"}, env).binary_types == ("font/*",)
    with pytest.raises(SettingsError, match="--binary-types"):
        from_sources({"binary_types": "nonsense"}, {})


def test_charset_is_read_once_and_only_when_known() -> None:
    assert headers("text/plain; charset=ISO-8859-1").charset == "iso8859-1"
    assert headers('text/plain; charset="utf-8"').charset == "utf-8"
    assert headers("text/plain; charset=no-such-codec").charset is None
    two = headers("text/plain; charset=utf-8", "text/plain; charset=latin-1")
    assert two.charsets == ("utf-8", "latin-1")  # each is a reading (media.readings)
    assert two.charset == "utf-8"  # the first: what a rewrite is written in


@pytest.mark.parametrize(("label", "codec"), [
    ("unicodeFFFE", "utf-16-be"), ("ucs-2", "utf-16-le"), ("unicode", "utf-16-le"),
    ("csUnicode", "utf-16-le"), ("iso-10646-ucs-2", "utf-16-le"), ("x-unicode20utf8", "utf-8"),
])
def test_a_browser_label_python_does_not_know_is_read_as_the_browser_does(
    label: str, codec: str
) -> None:
    body = "mail jane@acme.com".encode(codec)
    text, _ = media.readings(body, headers(f"text/html; charset={label}"), BodyKind.TEXT)
    assert (text.value, text.codec) == ("mail jane@acme.com", codec)


def test_every_reading_of_a_body_is_kept_the_first_whole_one_rewritten() -> None:
    utf8 = "mail jane@acme.com, café\n".encode()  # even length: decodes as UTF-16 too
    label = headers("text/plain; charset=utf-16le")
    text, others = media.readings(utf8, label, BodyKind.TEXT)
    assert text.codec == "utf-16-le" and others == [utf8.decode()]  # fetch's text(): UTF-8
    text, others = media.readings(utf8, headers("text/event-stream; charset=utf-16le"),
                                  BodyKind.SSE)  # EventSource: always UTF-8
    assert text.codec == "utf-8" and len(others) == 1
    with pytest.raises(UpstreamBodyError):  # an odd byte: it cannot be read as labelled
        media.readings(utf8 + b"!", label, BodyKind.TEXT)
    text, others = media.readings(utf8.decode().encode("utf-16-le") + b"!", headers(),
                                  BodyKind.TEXT)  # unlabelled: a guess that fails is no 502
    assert text.codec == "utf-8" and len(others) == 1


def test_a_bom_body_is_not_read_twice_in_its_own_codec() -> None:
    body = "mail jane@acme.com".encode("utf-16")  # BOM + UTF-16LE; WHATWG's utf-16 is LE too
    text, others = media.readings(body, headers("text/plain; charset=utf-16"), BodyKind.TEXT)
    assert text.value == "mail jane@acme.com"
    assert others == [body.decode("utf-8", "replace")]  # fetch's text(): the one other reading


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"])
def test_bomless_utf16_or_32_json_is_read_by_its_nuls(codec: str) -> None:
    body = JSON_DOC.decode().encode(codec)
    text, _ = media.readings(body, headers(), BodyKind.TEXT)
    assert (text.value, text.codec) == (JSON_DOC.decode(), codec)
    assert media.classify(headers("text/plain"), body) is BodyKind.JSON  # the JSON path: 502


@pytest.mark.parametrize(
    ("body", "charset"),
    [
        ("mail jane@acme.com, café".encode("latin-1"), "iso8859-1"),
        ("mail jane@acme.com".encode("utf-16"), None),
        (codecs.BOM_UTF16_BE + "mail jane@acme.com".encode("utf-16-be"), None),
        (codecs.BOM_UTF32_LE + "mail jane@acme.com".encode("utf-32-le"), None),
        (b"\xef\xbb\xbfmail jane@acme.com \xff", None),
        ("mail jane@acme.com ☎".encode(), None),
    ],
)
def test_text_decodes_and_writes_back_byte_identical(body: bytes, charset: str | None) -> None:
    text = media.decode_text(body, charset)
    assert "jane@acme.com" in text.value
    assert text.encode(text.value) == body


def test_filter_for_each_kind_that_is_not_one_json_document() -> None:
    assert type(media.filter_for(BodyKind.TEXT, "US", same)).__name__ == "TextFilter"
    assert type(media.filter_for(BodyKind.NDJSON, "US", same)).__name__ == "NdjsonFilter"
    assert type(media.filter_for(BodyKind.SSE, "US", same)).__name__ == "SseFilter"
    for kind in (BodyKind.JSON, BodyKind.BINARY):
        with pytest.raises(ValueError, match="not filtered as text"):
            media.filter_for(kind, "US", same)


# ---------------------------------------------------------------------------- encodings

PLAIN = b"Jane <JANE@ACME.COM> +1 (512) 555-0100\nBob bob@example.org\n" * 3


def gzip_members(body: bytes) -> bytes:
    third = len(body) // 3
    return b"".join(gzip.compress(body[i:i + third]) for i in range(0, len(body), third))


Compress = Callable[[bytes], bytes]
ENCODINGS: list[tuple[str, Compress]] = [
    ("gzip", gzip_members),
    ("x-gzip", gzip.compress),
    ("br", brotli.compress),
    ("deflate", zlib.compress),
]


ANSWER = {RuleType.EMAIL: {"jane@acme.com"}}


def same(raw: bytes) -> bytes:
    return raw


@pytest.mark.parametrize(("encoding", "encode"), ENCODINGS)
def test_encoded_text_bodies_are_filtered_whole(encoding: str, encode: Compress) -> None:
    body = media.TextBody.read(BodyKind.TEXT, encode(PLAIN), encoding, headers("text/plain"),
                               1 << 20, "US")
    assert "jane@acme.com" in {n for c in body.candidates for n in c.normal}
    out = body.output(ANSWER, "strip", same)
    assert out is not None
    text = out.decode()  # identity-encoded: plain UTF-8 bytes
    assert not leak_detector.leaks(text, emails=["jane@acme.com"])
    assert text.count(MARKER) == 3
    assert leak_detector.leaks(text, emails=["bob@example.org"]) == ["bob@example.org"]


@pytest.mark.parametrize(("encoding", "encode"), ENCODINGS)
@pytest.mark.parametrize("kind", [BodyKind.TEXT, BodyKind.NDJSON, BodyKind.SSE])
def test_nothing_denied_sends_the_upstream_bytes(
    encoding: str, encode: Compress, kind: BodyKind
) -> None:
    body = media.TextBody.read(kind, encode(PLAIN), encoding, headers("text/csv"), 1 << 20, "US")
    assert body.output({RuleType.EMAIL: {"x@y.org"}}, "strip", same) is None
    assert body.output({}, "drop", same) is None


def test_ndjson_in_gzip_members_goes_through_the_json_path_line_by_line() -> None:
    raw = gzip_members(b'{"email": "jane@acme.com"}\n{"email": "bob@example.org"}\n' * 3)
    seen: list[bytes] = []

    def json_filter(line: bytes) -> bytes:
        seen.append(line)
        return line.replace(b"jane@acme.com", b"")

    body = media.TextBody.read(BodyKind.NDJSON, raw, "gzip", headers(), 1 << 20, "US")
    out = body.output(ANSWER, "strip", json_filter)
    assert len(seen) == 6
    assert out == b'{"email": ""}\n{"email": "bob@example.org"}\n' * 3


def test_json_documents_inside_for_the_json_paths_own_candidates() -> None:
    ndjson = b'{"a": 1}\nplain\n[2]\n'
    sse = b'data: {"a":\ndata: 1}\n\ndata: text\n\n'
    assert media.TextBody.of(BodyKind.NDJSON, ndjson, headers(), "US").json_documents() == [
        b'{"a": 1}', b"[2]"]
    assert media.TextBody.of(BodyKind.SSE, sse, headers(), "US").json_documents() == [
        b'{"a":\n1}']
    assert media.TextBody.of(BodyKind.TEXT, ndjson, headers(), "US").json_documents() == []


def test_counts_are_denied_places_by_type() -> None:
    body = media.TextBody.read(BodyKind.TEXT, PLAIN, "", headers(), 1 << 20, "US")
    answer = {RuleType.DOMAIN: {"acme.com"}, RuleType.PHONE: {"+15125550100"}}
    assert body.counts(answer) == {RuleType.EMAIL: 3, RuleType.PHONE: 3}
    assert body.counts({}) == {}


def test_json_lines_are_not_sent_through_the_json_path_when_nothing_is_denied() -> None:
    def refuse(raw: bytes) -> bytes:
        raise AssertionError("called")

    body = media.TextBody.read(BodyKind.NDJSON, b'{"a": 1}\n{"b": 2}\n', "", headers(),
                               1 << 20, "US")
    assert body.output({RuleType.EMAIL: set()}, "strip", refuse) is None


def test_a_rewritten_utf16_body_keeps_its_byte_order_mark() -> None:
    raw = codecs.BOM_UTF16_BE + "jane@acme.com\n".encode("utf-16-be")
    out = media.TextBody.of(BodyKind.TEXT, raw, headers(), "US").output(ANSWER, "strip", same)
    assert out == codecs.BOM_UTF16_BE + f"{MARKER}\n".encode("utf-16-be")


def test_a_rewritten_body_keeps_its_charset() -> None:
    raw = "café jane@acme.com\n".encode("latin-1")
    label = headers("text/plain; charset=latin-1")
    out = media.TextBody.read(BodyKind.TEXT, raw, "", label, 1 << 20, "US").output(
        ANSWER, "strip", same)
    assert out == f"café {MARKER}\n".encode("latin-1")


def test_a_body_over_the_limit_once_decoded_fails_closed() -> None:
    with pytest.raises(UpstreamBodyError, match="larger"):
        media.TextBody.read(BodyKind.TEXT, gzip.compress(PLAIN), "gzip", headers(), 64, "US")


def test_truncated_gzip_text_fails_closed() -> None:
    with pytest.raises(UpstreamBodyError):
        media.TextBody.read(BodyKind.TEXT, gzip.compress(PLAIN)[:-9], "gzip", headers(),
                            1 << 20, "US")
