"""Readings of a text that its reader shows after undoing markup: HTML as a browser renders
it, a mail part as a mail client decodes it.

- *Rendered*: a browser drops NULs in body text, and tags and comments between two halves of
  an identifier vanish (`jane.doe<wbr>@acme.com`, `512<span>555</span>0100`); a JSON string
  holding HTML does the same with an escaped NUL (`\\u0000`) once a page renders it.
- *Quoted-printable* (RFC 2045 §6.7): `=40` is `@`, a soft line break (`=` at a line's end)
  joins two halves of an address.

Each reading is a `textview.View` (offsets map back to the text), scanned by the one scanner;
its candidates carry spans of the original text, so they are removed where they stand. Both
readings are built only when the text holds what they undo: the common body costs one search.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from rules.detect.scan import Candidate, scan
from rules.detect.textview import View

__all__ = ["MARKERS", "candidates", "candidates_bytes", "quoted_printable", "rendered"]

_MARKUP = re.compile(r"<!--.{0,4096}?-->|<[A-Za-z/!?][^<>]{0,2048}>|\x00|\\u0000", re.S)
_IN_JSON = r'(?:[^"\\]|\\.)'  # inside one JSON string: a quote only escaped
_JSON_MARKUP = re.compile(
    rf"<!--{_IN_JSON}{{0,4096}}?-->|<[A-Za-z/!?](?:(?![<>]){_IN_JSON}){{0,2048}}>|\\u0000", re.S
)
_QP = re.compile(r"=\r?\n|(?:=[0-9A-Fa-f]{2})+")
_QP_DECLARED = re.compile(r"quoted-printable", re.I)
MARKERS = (b"<", b"\0", b"\\u0000")
"""What a body must hold for its rendered reading to differ from the text as written."""


def _view(text: str, pattern: re.Pattern[str], decode: Callable[[str], str]) -> View | None:
    """`text` with every match of `pattern` replaced by `decode(match)`, offsets mapped back."""
    pieces: list[str] = []
    starts: list[int] = []
    origins: list[tuple[int, int, bool]] = []
    clean = position = 0
    for match in pattern.finditer(text):
        for piece, start, end, literal in ((text[position:match.start()], position,
                                            match.start(), True),
                                           (decode(match.group()), *match.span(), False)):
            if piece:
                pieces.append(piece)
                starts.append(clean)
                origins.append((start, end, literal))
                clean += len(piece)
        position = match.end()
    if not position:
        return None
    if position < len(text):
        pieces.append(text[position:])
        starts.append(clean)
        origins.append((position, len(text), True))
    orig_starts, orig_ends, literal = zip(*origins, strict=True) if origins else ((), (), ())
    return View("".join(pieces), tuple(starts), orig_starts, orig_ends, literal)


def rendered(text: str, json: bool = False) -> View | None:
    """The text a browser shows: tags, comments and NULs gone (None: nothing to drop). In a
    JSON text (`json`) markup is read inside one string, never across two."""
    if "<" not in text and "\0" not in text and "\\u0000" not in text:
        return None
    return _view(text, _JSON_MARKUP if json else _MARKUP, lambda _: "")


def _qp_decoded(token: str) -> str:
    if token[1] in "\r\n":
        return ""
    return bytes.fromhex(token.replace("=", "")).decode("utf-8", errors="replace")


def quoted_printable(text: str) -> View | None:
    """The text a mail client shows of a quoted-printable part (None: no part declares it)."""
    if _QP_DECLARED.search(text) is None:
        return None
    return _view(text, _QP, _qp_decoded)


def candidates(text: str, region: str, json: bool = False) -> list[Candidate]:
    """The candidates of the rendered and quoted-printable readings, spans in `text`."""
    out: list[Candidate] = []
    views = (rendered(text, json),) if json else (rendered(text), quoted_printable(text))
    for view in views:
        if view is None or not view.text:
            continue
        for c in scan(view.text, region):
            start, end = view.span(c.start, c.end)
            out.append(c._replace(start=start, end=end))
    return out


def candidates_bytes(body: bytes, region: str) -> list[Candidate]:
    """The rendered candidates of a UTF-8 JSON body, spans in bytes (the JSON path's)."""
    if not any(marker in body for marker in MARKERS):
        return []
    text = body.decode("utf-8", errors="surrogateescape")
    found = candidates(text, region, json=True)
    if len(text) == len(body):  # ASCII: characters are bytes
        return found

    def at(i: int) -> int:
        return len(text[:i].encode("utf-8", errors="surrogateescape"))

    return [c._replace(start=at(c.start), end=at(c.end)) for c in found]
