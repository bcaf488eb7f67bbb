"""A decoded view of a text, with every decoded offset mapped back to the original.

Identifiers hide behind encodings a client undoes: HTML entities (`&#64;`, `&lt;`), percent
escapes (`%40`), JSON escapes (`\\u0040`, `\\/`), full-width forms (U+FF20 for `@`), compatibility
forms read as digits or punctuation (`①`, `¹`, U+2024: `COMPAT`) and invisible characters
(U+200B…). One left-to-right pass with a regex of bounded tokens (linear: no token is longer
than 33 characters, apart from runs of percent escapes, which cannot backtrack) decodes each
token once; the scanner reads both the original and this view.
"""

from __future__ import annotations

import html
import re
import unicodedata
from bisect import bisect_right
from dataclasses import dataclass
from urllib.parse import unquote

# Default-ignorable code points: invisible, so a reader never sees them between two letters.
IGNORABLE = (
    "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\U0001d173-\U0001d17a\U000e0000-\U000e0fff"
)
_SHOWN = frozenset("0123456789+().@-")


def compat_forms() -> dict[str, str]:
    """Characters a reader (and NFKC) reads as digits, `+`, `(`, `)`, `.`, `@`, `-`: `①`, `¹`,
    `₅`, `⑴`, U+2024 (one dot leader), U+FE52. Full-width forms and Unicode digits are read
    elsewhere (`_TOKEN`, the digit class)."""
    digit, out = re.compile(r"\d"), {}
    for code in [*range(0x80, 0x10000), *range(0x1F100, 0x1F200)]:  # where NFKC has them
        c = chr(code)
        if 0xFF01 <= code <= 0xFF5E or code in (0xFE6B, 0xFF61) or digit.fullmatch(c):
            continue
        shown = unicodedata.normalize("NFKC", c)
        if shown != c and shown.isascii() and shown and _SHOWN.issuperset(shown):
            out[c] = shown
    return out


COMPAT = compat_forms()  # 131 characters (Unicode 14); rules/native/src/tables.rs has the same
_COMPAT_CLASS = "".join(COMPAT)
_TOKEN = re.compile(
    r"&#[0-9]{1,7};?|&#[xX][0-9a-fA-F]{1,6};?|&[A-Za-z][A-Za-z0-9]{1,31};?"
    r"|(?:%[0-9A-Fa-f]{2})++"
    r"|\\u[0-9a-fA-F]{4}|\\[\"\\/bfnrt]"
    rf"|[{IGNORABLE}]++"
    r"|[\uff01-\uff5e\ufe6b\uff61]"
    rf"|[{_COMPAT_CLASS}]"
)
_JSON_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def decode_token(token: str) -> str:
    """The text a client reads for one encoded token (the token itself if it means nothing).

    What an escape decodes to is read once more for full-width forms and invisible
    characters (`\\uff20`, `&#xff20;`, `%EF%BC%A0` are an `@` to a reader)."""
    first = token[0]
    if first == "&":
        return _folded(html.unescape(token))
    if first == "%":
        return _folded(unquote(token, errors="replace"))
    if first == "\\":
        if token[1] == "u":
            return _folded(chr(int(token[-4:], 16)))  # `\\u0040`: the last four are hex
        return _JSON_ESCAPES.get(token[1], token[1])
    if first == "\uff61":  # halfwidth ideographic full stop
        return "."
    if "\uff01" <= first <= "\uff5e":
        return chr(ord(first) - 0xFEE0)
    if first == "\ufe6b":  # small commercial at
        return "@"
    return COMPAT.get(first, "")  # a compatibility form, or a default-ignorable character


def _folded(text: str) -> str:
    if _FOLDABLE.search(text) is None:
        return text
    return _FOLDABLE.sub(lambda m: decode_token(m.group()), text)


_FOLDABLE = re.compile(rf"[{IGNORABLE}\uff01-\uff5e\ufe6b\uff61{_COMPAT_CLASS}]")


@dataclass(frozen=True, slots=True)
class View:
    """Decoded text plus the pieces that map it back: literal pieces map offset for offset,
    a decoded token maps as a whole to the original characters it came from."""

    text: str
    clean_starts: tuple[int, ...]
    orig_starts: tuple[int, ...]
    orig_ends: tuple[int, ...]
    literal: tuple[bool, ...]

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original span of the decoded characters `text[start:end]` (end > start)."""
        first = bisect_right(self.clean_starts, start) - 1
        last = bisect_right(self.clean_starts, end - 1) - 1
        if self.literal[first]:
            orig_start = self.orig_starts[first] + start - self.clean_starts[first]
        else:
            orig_start = self.orig_starts[first]
        if self.literal[last]:
            orig_end = self.orig_starts[last] + end - self.clean_starts[last]
        else:
            orig_end = self.orig_ends[last]
        return orig_start, orig_end


def decoded(text: str) -> View | None:
    """The decoded view of `text`, or None when nothing in it is encoded."""
    if _TOKEN.search(text) is None:
        return None
    pieces: list[str] = []
    clean_starts: list[int] = []
    orig_starts: list[int] = []
    orig_ends: list[int] = []
    literal: list[bool] = []
    clean = 0

    def add(piece: str, start: int, end: int, is_literal: bool) -> None:
        nonlocal clean
        if piece:
            pieces.append(piece)
            clean_starts.append(clean)
            orig_starts.append(start)
            orig_ends.append(end)
            literal.append(is_literal)
            clean += len(piece)

    position = 0
    for match in _TOKEN.finditer(text):
        add(text[position : match.start()], position, match.start(), True)
        add(_folded(decode_token(match.group())), match.start(), match.end(), False)
        position = match.end()
    add(text[position:], position, len(text), True)
    return View(
        "".join(pieces), tuple(clean_starts), tuple(orig_starts), tuple(orig_ends), tuple(literal)
    )
