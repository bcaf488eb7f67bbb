"""Clean text: one Unicode spelling for every identifier, on the rule side and the response side.

NFC, because `é` typed as one code point or as `e` plus a combining accent is the same name.
No format characters (Unicode category Cf: BOM U+FEFF, zero-width U+200B-U+200D and U+2060,
bidi marks U+200E/F, U+202A-E, U+2066-9, soft hyphen U+00AD, ...): they are invisible, survive
copy and paste into CRMs and spreadsheets, and defeat exact matching.
"""

from __future__ import annotations

import unicodedata

REPLACEMENT_CHARACTER = "\ufffd"
"""What a decoder leaves for bytes that were not UTF-8: a value holding it is mangled text."""


def clean(text: str) -> str:
    """`text` without format characters, in NFC; ASCII (the common case) is returned as is."""
    if text.isascii():
        return text
    kept = "".join(c for c in text if unicodedata.category(c) != "Cf")
    return unicodedata.normalize("NFC", kept)


def folded(text: str) -> str:
    """Clean, trimmed and lowercased, still NFC (lowercasing can decompose a character)."""
    value = clean(text).strip().lower()
    return value if value.isascii() else unicodedata.normalize("NFC", value)
