"""Readings of a text that its reader shows after undoing markup: HTML as a browser renders
it, a mail part as a mail client decodes it.

- *Rendered*: a browser drops NULs in body text, and tags and comments between two halves of
  an identifier vanish (`jane.doe<wbr>@acme.com`, `512<span>555</span>0100`); a JSON string
  holding HTML does the same with an escaped NUL (`\\u0000`) once a page renders it.
- *Quoted-printable* (RFC 2045 §6.7), in a mail (`message/*`, `multipart/*`): `=40` is `@`, a
  soft line break (`=` at a line's end) joins two halves of an address.

The one scanner reads each reading; a candidate's span is mapped back to the text as written
(markup included), so it is removed where it stands. Cost: a text without `<`, NUL or `\\u0000`
costs three searches. Otherwise only what crosses a dropped piece is new (the rest is the text
as written, read already): the rendered reading is scanned in windows around those pieces,
whole when the windows would cover most of it.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable
from itertools import accumulate

from rules.detect.scan import Candidate, merge_spans, scan
from rules.detect.textview import View

__all__ = ["MARKERS", "candidates", "candidates_bytes", "quoted_printable"]

_TAG = re.compile(r"<[A-Za-z/!?][^<>]*+>")
_IN_JSON = r'(?:[^"\\]|\\.)'  # inside one JSON string: a quote only escaped
_JSON_TAG = re.compile(rf"<[A-Za-z/!?](?:(?![<>]){_IN_JSON})*+>", re.S)
"""A tag of any length (a bound was a way out: `jane.doe`, a 3,000-character tag, `@acme.com`),
in linear time: it stops at the next `<` or `>` (or quote), where the search for the next `<`
starts anyway. Comments are `_Comments`'."""
_MARKUP = re.compile(rf"({_TAG.pattern}|\x00|\\u0000)", re.S)
_JSON_MARKUP = re.compile(rf"({_JSON_TAG.pattern}|\\u0000)", re.S)
_DENSE = 64  # one `<` or NUL in fewer characters: split by regex (C), else `str.find`
REACH = 320
"""Characters read on each side of a dropped piece: the longest email the finder reads (64 +
1 + 253). No widening to tokens here (a rendered text has none): this bound is the safety."""
_QP = re.compile(r"=\r?\n|(?:=[0-9A-Fa-f]{2})+")
MARKERS = (b"<", b"\0", b"\\u0000")
"""What a body must hold for its rendered reading to differ from the text as written."""


def _has_markers(text: str) -> bool:
    """`<`, a NUL, or `\\u0000` (a backslash first: one-byte searches are the cheap ones)."""
    return "<" in text or "\0" in text or ("\\" in text and "\\u0000" in text)


def rendered_candidates(text: str, region: str, json: bool = False) -> list[Candidate]:
    """Candidates the rendered reading holds and the text as written does not (they cross a
    dropped piece), spans in `text`. In a JSON text markup is read inside one string."""
    if not _has_markers(text):
        return []
    dense = (text.count("<") + text.count("\0")) * _DENSE > len(text)
    if dense and "<!--" not in text:  # one split in C (a comment needs `_Comments`)
        parts = (_JSON_MARKUP if json else _MARKUP).split(text)  # kept, dropped, kept, …
    else:
        parts = _parts(text, _dropped(text, json))
    if len(parts) == 1:
        return []
    kept = parts[0::2]
    shown = "".join(kept)
    cuts = list(accumulate(map(len, kept[:-1])))  # where each dropped piece was, in `shown`
    before = list(accumulate(map(len, parts[1::2]), initial=0))
    size, inert = len(shown), _INERT
    live = [cut for cut in cuts if 0 < cut < size  # a cut next to an inert character joins none
            and shown[cut - 1] not in inert and shown[cut] not in inert]
    out: list[Candidate] = []
    for c in _crossing(shown, live, region) if live else ():
        start = c.start + before[bisect_right(cuts, c.start)]
        end = c.end + before[bisect_right(cuts, c.end - 1)]
        out.append(Candidate(c.kind, start, end, c.normal))
    return out


def _parts(text: str, dropped: list[tuple[int, int]]) -> list[str]:
    """`text` cut as `re.split` with a group cuts it: kept, dropped, kept, …, kept."""
    parts: list[str] = []
    position = 0
    for start, end in dropped:
        parts += (text[position:start], text[start:end])
        position = end
    parts.append(text[position:])
    return parts


def _dropped(text: str, json: bool) -> list[tuple[int, int]]:
    """The spans a browser drops (tags, comments, NULs, `\\u0000`), in order, disjoint. Found
    by `str.find` (C speed), a regex matched only where a `<` stands: markup is sparse."""
    tag = _JSON_TAG if json else _TAG
    comments = _Comments(text, json)
    spans: list[tuple[int, int]] = []
    position = text.find("<")
    while position != -1:
        end = comments.end(position)
        if end is None and (match := tag.match(text, position)) is not None:
            end = match.end()
        if end is not None:
            spans.append((position, end))
        position = text.find("<", position + 1 if end is None else end)
    for needle in ("\0", "\\u0000"):
        position = text.find(needle)
        while position != -1:
            spans.append((position, position + len(needle)))
            position = text.find(needle, position + len(needle))
    out: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if out and start < out[-1][1]:  # inside a tag dropped already
            out[-1] = (out[-1][0], max(end, out[-1][1]))
        else:
            out.append((start, end))
    return out


class _Comments:
    """Where a comment starting at a `<` ends: at the first `-->` after its `<!--`, whatever its
    length (a bound was a way out: `jane.doe`, a 5,000-character comment, `@acme.com`); in a
    JSON text only if no quote ends the string first. Unclosed, it is no comment (a tag, maybe:
    a renderer may read it so; over-reading is the safe side). The next `-->` and quote are
    searched from where the last search found them (the `<`s come in order): linear in the
    text, where a regex rescanned up to 4,096 characters per unclosed `<!--`."""

    def __init__(self, text: str, json: bool) -> None:
        self.text, self.json = text, json
        self.close = self.quote = -2  # the next `-->` / unescaped quote found so far (-1: none)

    def end(self, position: int) -> int | None:
        if not self.text.startswith("<!--", position):
            return None
        start = position + 4
        if self.close != -1 and self.close < start:
            self.close = self.text.find("-->", start)
        if self.close == -1:
            return None
        if self.json:
            if self.quote != -1 and self.quote < start:
                self.quote = self._quote(start)
            if self.quote != -1 and self.quote < self.close:
                return None  # the string ends before the comment does
        return self.close + 3

    def _quote(self, start: int) -> int:
        """The first quote at or after `start` that no backslash escapes, or -1."""
        text = self.text
        quote = text.find('"', start)
        while quote != -1:
            backslashes = quote - len(text[start:quote].rstrip("\\")) - start
            if backslashes % 2 == 0:
                return quote
            start, quote = quote + 1, text.find('"', quote + 1)
        return -1


_INERT = frozenset('"<>\r\n')
"""Characters no candidate holds: a cut next to one joins nothing (`"cc: <jane@acme.com>"`)."""


def _crossing(shown: str, cuts: list[int], region: str) -> list[Candidate]:
    """The candidates of `shown` that hold a cut inside them, read around the cuts only."""
    if len(cuts) * REACH * 4 > len(shown):  # the windows would cover most of it
        windows = [(0, len(shown))]
    else:
        windows = merge_spans((max(0, cut - REACH), cut + REACH) for cut in cuts)
    found: list[Candidate] = []
    for start, end in windows:
        for c in scan(shown[start:end], region):
            s, e = c.start + start, c.end + start
            i = bisect_right(cuts, s)
            if i < len(cuts) and cuts[i] < e:
                found.append(Candidate(c.kind, s, e, c.normal))
    return found


def _qp_decoded(token: str) -> str:
    if token[1] in "\r\n":
        return ""
    return bytes.fromhex(token.replace("=", "")).decode("utf-8", errors="replace")


def quoted_printable(text: str) -> View | None:
    """The text a mail client shows of its quoted-printable parts (None: nothing encoded)."""
    pieces: list[tuple[str, int, int, bool]] = []
    position = 0
    for match in _QP.finditer(text):
        pieces.append((text[position:match.start()], position, match.start(), True))
        pieces.append((_qp_decoded(match.group()), match.start(), match.end(), False))
        position = match.end()
    if not position:
        return None
    pieces.append((text[position:], position, len(text), True))
    kept = [piece for piece in pieces if piece[0]]
    starts = list(accumulate((len(piece[0]) for piece in kept), initial=0))[:len(kept)]
    return View("".join(p[0] for p in kept), tuple(starts), tuple(p[1] for p in kept),
                tuple(p[2] for p in kept), tuple(p[3] for p in kept))


def candidates(text: str, region: str, mail: bool = False) -> list[Candidate]:
    """The candidates of the rendered reading and, in a mail (`mail`), the quoted-printable
    one, spans in `text`."""
    out = rendered_candidates(text, region)
    view = quoted_printable(text) if mail else None
    if view is not None and view.text:
        for c in scan(view.text, region):
            start, end = view.span(c.start, c.end)
            out.append(Candidate(c.kind, start, end, c.normal))
    return out


def candidates_bytes(body: bytes, region: str) -> list[Candidate]:
    """The rendered candidates of a UTF-8 JSON body, spans in bytes (the JSON path's)."""
    if b"<" not in body and (b"\\" not in body or b"\\u0000" not in body):
        return []  # (a JSON text holds no raw NUL; one-byte searches are memchr: ~1 µs/79 kB)
    text = body.decode("utf-8", errors="surrogateescape")
    found = rendered_candidates(text, region, json=True)
    if len(text) == len(body):  # ASCII: characters are bytes
        return found
    at = _byte_offsets(text, {i for c in found for i in (c.start, c.end)})
    return [Candidate(c.kind, at[c.start], at[c.end], c.normal) for c in found]


def _byte_offsets(text: str, positions: Iterable[int]) -> dict[int, int]:
    """Each character offset of `text` in `positions` as its UTF-8 byte offset, in one walk:
    encoding the whole prefix per offset was quadratic in an upstream's hands (16,000
    candidates in 560 kB: 3.5 s of CPU). A slice edge never splits a character (the
    surrogateescape ones included: one code point per byte), so the pieces add up."""
    out: dict[int, int] = {}
    at = byte = 0
    for position in sorted(positions):
        byte += len(text[at:position].encode("utf-8", errors="surrogateescape"))
        out[position] = byte
        at = position
    return out
