"""Finding, the pure-Python reference: every raw candidate in a text, with its span.

This is the contract the compiled core (rules/native, `rules._native`) implements byte for
byte; tests/test_native.py proves they agree. Finding is pure: no normaliser, no phone plan.
A raw candidate is `(kind, start, end, text)`: a kind code of rules/detect/readings.py, the span in
the original text, and the text to normalise (as written, or from the decoded reading).

- Linear time. Every expansion around an anchor (`@`, `linkedin.com`, a digit) is bounded
  (local part 64, domain 253, URL path 512, phone window 18 digits).
- Both readings. The text as written, then its decoded view (rules/detect/textview.py); spans
  always refer to the original text. Order: emails, LinkedIn URLs, phone windows, exponent
  numbers of the text as written, then the same of the decoded view; a candidate already
  listed (same kind, span and text) is not repeated.
- Over-matching is the safe failure: where a boundary is ambiguous (`foo|jane@acme.com`,
  `jane@acme.com。次`) every plausible reading is a candidate of its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from rules.detect.phonescan import number_tokens, phone_windows
from rules.detect.readings import EMAIL, LINKEDIN, NUMBER, PHONE
from rules.detect.textview import decoded

__all__ = ["Raw", "find_bytes", "find_text"]

_MAX_LOCAL = 64
_MAX_DOMAIN = 253
_MAX_PATH = 512
_MAX_SPLITS = 16  # alternative readings per side of one `@`: enough for any real address
_LOCAL_ASCII = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.!#$%&'*+/=?^_`{|}~-"
)
# Legal in a local part, but also used as separators in text: a reading starts after each.
_WEAK = frozenset("!#$%&'*/=?^`{|}~")
_DOMAIN_ASCII = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-")
_LINKEDIN = re.compile(r"linkedin[.\u3002]com", re.IGNORECASE)  # `linkedin。com`: a browser's dot
_HOST_LEFT = re.compile(r"(?:[A-Za-z0-9-]{1,63}\.){0,4}$")
_SCHEME_LEFT = re.compile(r"(?:https?:)?//$", re.IGNORECASE)
_PORT = re.compile(r":[0-9]{1,5}")
_PATH_STOP = frozenset(" \t\r\n\"'<>`{}|^[]")  # `\` is a `/` to a browser (WHATWG URL)
_TRAILING = ".,;:!?)]}'\"*"

Raw = tuple[int, int, int, str]


def find_text(text: str) -> list[Raw]:
    """Every raw candidate of `text` (spans in characters), read as written and decoded."""
    found: dict[Raw, None] = dict.fromkeys(_find_all(text))
    view = decoded(text)
    if view is not None:
        for kind, start, end, raw in _find_all(view.text):
            found.setdefault((kind, *view.span(start, end), raw), None)
    return list(found)


def find_bytes(body: bytes) -> list[Raw]:
    """Every raw candidate of a UTF-8 body, spans in bytes.

    Undecodable bytes become lone surrogates (surrogateescape): neither letters nor digits,
    they end a candidate exactly as the U+FFFD a client's decoder shows there would.
    """
    text = body.decode("utf-8", errors="surrogateescape")
    found = find_text(text)
    if body.isascii():
        return found
    offsets = sorted({r[1] for r in found} | {r[2] for r in found})
    to_byte: dict[int, int] = {}
    char, byte = 0, 0
    for offset in offsets:  # encode each stretch of text once: offsets ascend
        byte += len(text[char:offset].encode("utf-8", errors="surrogateescape"))
        char = offset
        to_byte[offset] = byte
    return [(kind, to_byte[start], to_byte[end], raw) for kind, start, end, raw in found]


def _find_all(text: str) -> Iterator[Raw]:
    yield from _emails(text)
    yield from _linkedins(text)
    for start, end in phone_windows(text):
        yield PHONE, start, end, text[start:end]
    for start, end in number_tokens(text):
        yield NUMBER, start, end, text[start:end]


# ---------------------------------------------------------------------------- emails


def _emails(text: str) -> Iterator[Raw]:
    """Around every `@`: each reading of the local part times each reading of the domain."""
    at = text.find("@")
    while at != -1:
        starts = _local_starts(text, at)
        ends = _domain_ends(text, at) if starts else []
        for start in starts:
            for end in ends:
                yield EMAIL, start, end, text[start:end]
        at = text.find("@", at + 1)


def _is_local(char: str) -> bool:
    return char in _LOCAL_ASCII or (not char.isascii() and char.isalnum())


def _is_domain(char: str) -> bool:
    return char in _DOMAIN_ASCII or (not char.isascii() and char.isalnum())


def _local_starts(text: str, at: int) -> list[int]:
    """The whole local part, and each suffix after a separator or a change of script."""
    first = at
    limit = max(0, at - _MAX_LOCAL)
    while first > limit and _is_local(text[first - 1]):
        first -= 1
    starts = [first] if first < at else []
    for k in range(at - 1, first, -1):
        before = text[k - 1]
        if before in _WEAK or (not before.isascii() and text[k].isascii()):
            starts.append(k)
            if len(starts) > _MAX_SPLITS:
                break
    return starts


def _domain_ends(text: str, at: int) -> list[int]:
    """Each end of the domain: before every dot, at a change of script, at the run's end."""
    end = at + 1
    limit = min(len(text), at + 1 + _MAX_DOMAIN)
    ends: list[int] = []
    while end < limit and _is_domain(text[end]):
        char = text[end]
        split = char == "." or (not char.isascii() and text[end - 1].isascii())
        if split and len(ends) < _MAX_SPLITS:
            ends.append(end)
        end += 1
    while end > at + 1 and text[end - 1] in ".-":
        end -= 1
    ends.append(end)
    return ends


# ---------------------------------------------------------------------------- LinkedIn


def _linkedins(text: str) -> Iterator[Raw]:
    """Every `linkedin.com` host (`linkedin.com.` too) with a path: as written and cut at marks."""
    for match in _LINKEDIN.finditer(text):
        start = _url_start(text, match.start())
        glued = start > 0 and (text[start - 1].isalnum() or text[start - 1] in "-_.")
        if glued and text.find("//", start, match.start()) == -1:
            continue  # `notlinkedin.com`: another host (`xhttps://linkedin.com` is not)
        end = match.end()
        if text.startswith(".", end):  # `linkedin.com./in/…`: the root label, same host
            end += 1
        port = _PORT.match(text, end)
        if port is not None:
            end = port.end()
        if end >= len(text) or text[end] not in "/\\":
            continue
        for stop in _path_ends(text, end):
            yield LINKEDIN, start, stop, text[start:stop]


def _url_start(text: str, host: int) -> int:
    """Where the URL begins: the subdomains and `https://` before `linkedin.com`, if any."""
    window = text[max(0, host - 64) : host]
    labels = _HOST_LEFT.search(window)
    start = host - (len(labels.group()) if labels else 0)
    scheme = _SCHEME_LEFT.search(text[max(0, start - 8) : start])
    return start - (len(scheme.group()) if scheme else 0)


def _path_ends(text: str, slash: int) -> list[int]:
    """The end of the path as written, without trailing punctuation, and before each mark."""
    end = slash
    limit = min(len(text), slash + _MAX_PATH)
    while end < limit and _is_path(text[end]):
        end += 1
    ends = [end]
    trimmed = end
    while trimmed > slash + 1 and text[trimmed - 1] in _TRAILING:
        trimmed -= 1
    ends.append(trimmed)
    for k in range(slash + 1, end):  # `/in/jane-doe.smith`, `/in/jane-doe,x`, `…/x`: each cut
        if not (text[k].isalnum() or text[k] in "-_%") and len(ends) < _MAX_SPLITS:
            ends.append(k)
    return list(dict.fromkeys(ends))


def _is_path(char: str) -> bool:
    if char.isascii():
        return char.isprintable() and char not in _PATH_STOP
    return char.isalnum()
