"""Which charsets a client may read a text body in: the label's, as Python and as a browser
name it, UTF-8 (EventSource and fetch's `text()` ignore the label), and a BOM-less UTF-16/32
JSON text by the NULs of its first four bytes (RFC 4627 §3, requests' `guess_json_utf`).

A body is scanned in each of these readings (README "deny by default"); the first one that
decodes without loss is the one the filter rewrites in.
"""

from __future__ import annotations

import codecs
import contextlib

__all__ = ["WHATWG_LABELS", "codecs_of", "json_codec", "reading_codecs"]

_UTF8 = ("unicode-1-1-utf-8", "unicode11utf8", "unicode20utf8", "utf-8", "utf8",
         "x-unicode20utf8")
_UTF16BE = ("unicodefffe", "utf-16be")
_UTF16LE = ("csunicode", "iso-10646-ucs-2", "ucs-2", "unicode", "unicodefeff", "utf-16",
            "utf-16le")
_WINDOWS_1252 = ("ansi_x3.4-1968", "ascii", "cp1252", "cp819", "csisolatin1", "ibm819",
                 "iso-8859-1", "iso-ir-100", "iso8859-1", "iso88591", "iso_8859-1",
                 "iso_8859-1:1987", "l1", "latin1", "us-ascii", "windows-1252", "x-cp1252")
WHATWG_LABELS: dict[str, str] = {
    **dict.fromkeys(_UTF8, "utf-8"),
    **dict.fromkeys(_UTF16BE, "utf-16-be"),
    **dict.fromkeys(_UTF16LE, "utf-16-le"),
    **dict.fromkeys(_WINDOWS_1252, "cp1252"),
}
"""WHATWG Encoding's labels (encoding.spec.whatwg.org) where a browser's decoder differs from
the codec Python gives the same name, or Python knows none: UTF-16 spellings (`unicodeFFFE`,
`ucs-2`), `utf-16` without a BOM (little-endian), latin-1 and ASCII (windows-1252)."""


def codecs_of(label: str) -> tuple[str, ...]:
    """Python's codec of a charset label and a browser's, when they know it (one if equal)."""
    found: list[str] = []
    with contextlib.suppress(LookupError):
        found.append(codecs.lookup(label).name)
    whatwg = WHATWG_LABELS.get(label.strip().lower())
    if whatwg is not None:
        found.append(codecs.lookup(whatwg).name)
    return tuple(dict.fromkeys(found))


def json_codec(body: bytes) -> str | None:
    """UTF-16/32 by the NULs among the first four bytes of a BOM-less JSON text, else None."""
    head = body[:4]
    nulls = head.count(0)
    if len(head) < 4 or nulls not in (2, 3):
        return None
    if nulls == 3:
        return "utf-32-be" if head[:3] == b"\0\0\0" else "utf-32-le"
    if head[0] == head[2] == 0:
        return "utf-16-be"
    return "utf-16-le" if head[1] == head[3] == 0 else None


def reading_codecs(body: bytes, charsets: tuple[str, ...], utf8_first: bool) -> list[str]:
    """Every codec a client may read `body` in, the one the filter writes in first: UTF-8 for
    a reader that ignores the label (`utf8_first`), else the first label a codec knows, then a
    JSON reader's guess, then UTF-8."""
    labelled = [codec for label in charsets for codec in codecs_of(label)]
    guessed = json_codec(body)
    order = ["utf-8"] if utf8_first else []
    order += [*labelled, *([guessed] if guessed else []), "utf-8"]
    return list(dict.fromkeys(codecs.lookup(c).name for c in order))
