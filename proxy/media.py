"""What kind of body a response carries, and so which filter reads it.

Every textual body is filtered; only clearly binary types stream untouched. The kinds:

- `BINARY`: exactly one Content-Type, and it is in `--binary-types` (default: image, audio,
  video and font types, octet-stream, PDF, archives). Streamed byte for byte, never buffered.
  **Choice: the label is the contract.** A body labelled binary is not sniffed, even if it
  holds text: sniffing would mean buffering every download, and a client that honours the
  label does not render it as text. Structured-syntax suffixes are text whatever the top
  type (`image/svg+xml`, `*+json`): they are never binary.
- `JSON`: labelled `application/json`, `text/json` or `*+json`; or, whatever its (non-binary)
  label, a body that is one JSON object or array (a UTF-8 BOM and white space before it
  allowed). A `{`/`[` start alone is not enough for an unlabelled body: a log line such as
  `[12:00] …` in text/plain would then be refused as broken JSON instead of filtered as text.
- `NDJSON`: `application/x-ndjson`, `application/jsonl`, `application/json-seq` (and their
  spellings), or a body of two or more lines that each start with `{`.
- `SSE`: `text/event-stream`.
- `TEXT`: everything else: text/*, CSV, HTML, XML, JavaScript, unknown types, no
  Content-Type at all.
Two Content-Type headers (or one holding a comma list) are read in the most dangerous way:
never binary, and the strictest filter any of them names (JSON, then NDJSON, then SSE).
"""

from __future__ import annotations

import codecs
import enum
import functools
from collections.abc import Iterable
from dataclasses import dataclass

from multidict import CIMultiDictProxy, MultiMapping

from proxy.charsets import codecs_of, reading_codecs
from proxy.errors import UpstreamBodyError
from proxy.setting_values import DEFAULT_BINARY_TYPES
from proxy.upstream import decode
from rules.detect import rendered
from rules.detect.match import Policy, is_denied
from rules.detect.scan import Candidate, merge_spans, scan
from rules.detect.textbody import (
    BodyFilter,
    JsonFilter,
    NdjsonFilter,
    SseFilter,
    TextFilter,
    denied_normals,
    is_json_document,
    ndjson_documents,
    sse_documents,
)
from rules.model import Lookup, RuleType

__all__ = [
    "BodyKind", "Label", "Text", "TextBody", "classify", "decode_text", "filter_for", "is_binary",
    "label_kind",
]

_JSON = frozenset({"application/json", "text/json"})
_NDJSON = frozenset({
    "application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonl",
    "application/jsonlines", "application/x-jsonlines", "application/json-seq",
})
_SSE = "text/event-stream"
_TEXT_SUFFIXES = ("+json", "+xml", "+json-seq")
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF32_LE, "utf-32-le"),
         (codecs.BOM_UTF32_BE, "utf-32-be"), (codecs.BOM_UTF16_LE, "utf-16-le"),
         (codecs.BOM_UTF16_BE, "utf-16-be"))  # UTF-32-LE's BOM starts with UTF-16-LE's
_SNIFF_LINES = 2


class BodyKind(enum.Enum):
    JSON = "json"
    NDJSON = "ndjson"
    SSE = "sse"
    TEXT = "text"
    BINARY = "binary"


@dataclass(frozen=True, slots=True)
class Label:
    """What the Content-Type headers say: every media type named (lowercased, no parameters;
    a comma inside one header counts as another reading; empty: no header) and every charset
    parameter (lowercased, in order, each once: a client may take any of them)."""

    types: tuple[str, ...]
    charsets: tuple[str, ...] = ()

    @classmethod
    def of(cls, headers: MultiMapping[str] | CIMultiDictProxy[str]) -> Label:
        return _label(tuple(headers.getall("Content-Type", ())))

    def is_mail(self) -> bool:
        """A mail (`message/rfc822`, `multipart/*`): its parts may be quoted-printable."""
        return any(t.startswith(("message/", "multipart/")) for t in self.types)

    @property
    def charset(self) -> str | None:
        """The codec of the first charset a codec knows (Python's, else a browser's)."""
        return next((c for label in self.charsets for c in codecs_of(label)[:1]), None)


@functools.lru_cache(maxsize=256)
def _label(values: tuple[str, ...]) -> Label:
    """Worked out once per Content-Type: an upstream sends the same few on every response."""
    types = [p.partition(";")[0].strip().lower() for v in values for p in v.split(",")]
    return Label(tuple(types), _charsets(values))


def _charsets(values: Iterable[str]) -> tuple[str, ...]:
    found: list[str] = []
    for value in values:
        for param in value.split(";")[1:]:
            name, _, raw = param.partition("=")
            if name.strip().lower() == "charset":
                found.append(raw.strip().strip("\"'").lower())
    return tuple(dict.fromkeys(found))


def is_binary(media: str, binary: Iterable[str] = DEFAULT_BINARY_TYPES) -> bool:
    if media.endswith(_TEXT_SUFFIXES):
        return False
    top = media.partition("/")[0]
    return any(entry == media or entry == f"{top}/*" for entry in binary)


@functools.lru_cache(maxsize=256)
def label_kind(label: Label, binary: tuple[str, ...] = DEFAULT_BINARY_TYPES) -> BodyKind:
    """The kind the labels alone give: decides, before reading the body, whether it streams.
    Remembered per label (the settings' `binary` is one tuple for the process)."""
    types = label.types
    if len(types) == 1 and is_binary(types[0], binary):
        return BodyKind.BINARY
    if any(t in _JSON or t.endswith("+json") for t in types):
        return BodyKind.JSON
    if any(t in _NDJSON or t.endswith("+json-seq") for t in types):
        return BodyKind.NDJSON
    if _SSE in types:
        return BodyKind.SSE
    return BodyKind.TEXT


def classify(
    label: Label, body: bytes, binary: tuple[str, ...] = DEFAULT_BINARY_TYPES
) -> BodyKind:
    """The kind of a (content-decoded) body: its labels, then what the body looks like."""
    kind = label_kind(label, binary)
    if kind in (BodyKind.BINARY, BodyKind.JSON):
        return kind
    text = readings(body, label, kind)[0].value
    if is_json_document(text):
        return BodyKind.JSON
    if kind is BodyKind.TEXT and _looks_ndjson(text):
        return BodyKind.NDJSON
    return kind


def _looks_ndjson(text: str) -> bool:
    lines = [line.strip() for line in text.lstrip("\ufeff").splitlines() if line.strip()]
    return len(lines) >= _SNIFF_LINES and all(line.startswith("{") for line in lines)


@dataclass(frozen=True, slots=True)
class Text:
    """A body as text, and how to write a rewritten one back in the same charset."""

    value: str
    codec: str
    bom: bytes

    def encode(self, text: str) -> bytes:
        return self.bom + text.encode(self.codec, errors="surrogateescape")


def decode_text(body: bytes, charset: str | None) -> Text:
    """The body as a client reads it: a BOM wins, then `charset`, else UTF-8.

    Bytes that do not decode become lone surrogates (surrogateescape): they end an identifier
    as a client's U+FFFD would, and write back as the same bytes.
    """
    bom, codec = next(((b, c) for b, c in _BOMS if body.startswith(b)), (b"", charset or "utf-8"))
    try:
        return Text(body[len(bom):].decode(codec, errors="surrogateescape"), codec, bom)
    except UnicodeDecodeError as exc:  # UTF-16 of an odd length, UTF-32 out of range
        raise UpstreamBodyError("upstream body does not decode in its charset") from exc


def readings(body: bytes, label: Label, kind: BodyKind) -> tuple[Text, list[str]]:
    """The body in every charset a client may read it in (`charsets.reading_codecs`): the
    first that decodes without loss, which a rewrite is written in, and the others' texts."""
    codecs_ = reading_codecs(body, label.charsets, kind is BodyKind.SSE)
    primary: Text | None = None
    others: list[str] = []
    for codec in codecs_:
        if primary is None:
            try:
                primary = decode_text(body, codec)
                continue
            except UpstreamBodyError:
                if codec == label.charset:  # it cannot be read as labelled: 502
                    raise
        others.append(body.decode(codec, errors="replace"))
    if primary is None:  # no label, no guess decodes whole: UTF-8 (502 under a broken BOM)
        primary = decode_text(body, None)
    same = (primary.value, "\ufeff" + primary.value)  # a label's codec reads the BOM too
    return primary, [o for o in dict.fromkeys(others) if o not in same]


def filter_for(kind: BodyKind, region: str, json_filter: JsonFilter) -> BodyFilter:
    """The filter of a kind that is not one JSON document (JSON and BINARY have their own path).
    """
    if kind is BodyKind.NDJSON:
        return NdjsonFilter(region, json_filter)
    if kind is BodyKind.SSE:
        return SseFilter(region, json_filter)
    if kind is BodyKind.TEXT:
        return TextFilter(region)
    raise ValueError(f"{kind.value} bodies are not filtered as text")


@dataclass(frozen=True, slots=True)
class TextBody:
    """A body of kind NDJSON, SSE or TEXT on its way through the ONE lookup.

    `read` decodes it (gzip with every member, deflate, br: the proxy's one decoder, capped at
    the filter limit; 502 for what does not decode) and finds its candidates; `output` is
    None when nothing was removed, so the upstream's bytes go out as they came (encoding and
    length kept), else the rewritten body, identity-encoded, in the body's own charset.
    """

    kind: BodyKind
    text: Text
    candidates: list[Candidate]
    region: str
    elsewhere: tuple[Candidate, ...] = ()  # of the other charsets' readings: asked, verified

    @classmethod
    def read(
        cls, kind: BodyKind, raw: bytes, encoding: str, label: Label, limit: int, region: str
    ) -> TextBody:
        return cls.of(kind, decode(raw, encoding, limit), label, region)

    @classmethod
    def of(cls, kind: BodyKind, decoded: bytes, label: Label, region: str) -> TextBody:
        """From a body already content-decoded (as `classify` needed it): every reading of it
        scanned, the rendered ones (rules/detect/rendered.py) with spans in the first."""
        text, others = readings(decoded, label, kind)
        mail = label.is_mail()
        found = scan(text.value, region)
        views = rendered.candidates(text.value, region, mail)
        if views:
            found = sorted(found + views, key=lambda c: (c.start, c.end, c.kind))
        elsewhere = [c for other in others for c in scan(other, region)]  # as written only
        return cls(kind, text, found, region, tuple(elsewhere))

    def all_candidates(self) -> list[Candidate]:
        """Every reading's candidates: what the lookup asks and the verifier reads."""
        return [*self.candidates, *self.elsewhere] if self.elsewhere else self.candidates

    def json_documents(self) -> list[bytes]:
        """The JSON inside (NDJSON lines, event data), if the JSON path wants its own
        candidates in the lookup too."""
        if self.kind is BodyKind.NDJSON:
            return ndjson_documents(self.text.value)
        if self.kind is BodyKind.SSE:
            return sse_documents(self.text.value)
        return []

    def output(self, answer: Lookup, policy: Policy, json_filter: JsonFilter) -> bytes | None:
        if not any(answer.values()):  # nothing denied: no filter can remove anything
            return None
        denied = denied_normals(self.candidates, answer)
        body_filter = filter_for(self.kind, self.region, json_filter)
        if isinstance(body_filter, TextFilter):  # one scan: the candidates are this text's
            out = body_filter.redact(self.text.value, denied, policy, self.candidates)
        else:
            out = body_filter.redact(self.text.value, denied, policy)
        return None if out == self.text.value else self.text.encode(out)

    def counts(self, answer: Lookup) -> dict[RuleType, int]:
        """Denied identifiers by type (overlapping readings count once), for the metric and
        the X-Denyproxy-Suppressed header."""
        spans: dict[RuleType, list[tuple[int, int]]] = {}
        for c in self.candidates:
            if any(is_denied(c.kind, n, answer) for n in c.normal):
                spans.setdefault(c.kind, []).append((c.start, c.end))
        return {kind: len(merge_spans(found)) for kind, found in spans.items()}
