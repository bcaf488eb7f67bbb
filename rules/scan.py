"""The text scanner: every email, phone and LinkedIn-profile candidate anywhere in a text.

It complements the structured JSON walk: whatever surrounds an identifier (HTML, URLs, CSV,
prose, JSON escapes, invisible characters) it is found here, with its span in the text and
its normal forms (rules/normalize.py, the one normaliser) for the one store lookup.

The contract (a compiled core implements the same one later):
- Linear time. No regex backtracks over unbounded input; every expansion around an anchor
  (`@`, `linkedin.com`, a digit) is bounded (local part 64, domain 253, URL path 512,
  phone window 18 digits), so the work per input character is bounded by a constant.
- Both readings. The text is read as written and through one decoding of HTML entities,
  percent and JSON escapes, full-width forms and invisible characters (rules/textview.py);
  spans always refer to the original text.
- Over-matching is the safe failure: where a boundary is ambiguous (`foo|jane@acme.com`,
  `jane@acme.com。次`, `512 555 0100 512 555 0199`) every plausible reading is a candidate
  of its own, with its own span, so redacting one never touches an allowed neighbour.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from rules import normalize
from rules.model import RuleType
from rules.phonescan import number_digits, phone_windows
from rules.textview import View, decoded

__all__ = ["Candidate", "drop_lines", "number_digits", "redact_text", "scan", "scan_bytes"]

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
_LINKEDIN = re.compile(r"linkedin\.com", re.IGNORECASE)
_HOST_LEFT = re.compile(r"(?:[A-Za-z0-9-]{1,63}\.){0,4}$")
_SCHEME_LEFT = re.compile(r"(?:https?:)?//$", re.IGNORECASE)
_PORT = re.compile(r":[0-9]{1,5}")
_PATH_STOP = frozenset(" \t\r\n\"'<>`\\{}|^[]")
_TRAILING = ".,;:!?)]}'\"*"

Found = tuple[RuleType, int, int, tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class Candidate:
    """One reading of an identifier: its type, span `text[start:end]`, normal forms to look up."""

    kind: RuleType
    start: int
    end: int
    normal: tuple[str, ...]


def scan(text: str, region: str) -> list[Candidate]:
    """Every candidate in `text`, read as written and decoded, sorted by span."""
    found: dict[tuple[RuleType, int, int], dict[str, None]] = {}
    _collect(found, _find_all(text, region), None)
    view = decoded(text)
    if view is not None:
        _collect(found, _find_all(view.text, region), view)
    return [
        Candidate(kind, start, end, tuple(normals))
        for (kind, start, end), normals in sorted(found.items(), key=_order)
    ]


def _order(item: tuple[tuple[RuleType, int, int], dict[str, None]]) -> tuple[int, int, str]:
    (kind, start, end), _ = item
    return start, end, kind.value


def _collect(
    found: dict[tuple[RuleType, int, int], dict[str, None]],
    items: Iterable[Found],
    view: View | None,
) -> None:
    for kind, start, end, normals in items:
        if view is not None:
            start, end = view.span(start, end)
        found.setdefault((kind, start, end), {}).update(dict.fromkeys(normals))


def _find_all(text: str, region: str) -> Iterator[Found]:
    yield from _emails(text)
    yield from _linkedins(text)
    for start, end, normals in phone_windows(text, region):
        yield RuleType.PHONE, start, end, normals


# ---------------------------------------------------------------------------- emails


def _emails(text: str) -> Iterator[Found]:
    """Around every `@`: each reading of the local part times each reading of the domain."""
    at = text.find("@")
    while at != -1:
        starts = _local_starts(text, at)
        ends = _domain_ends(text, at) if starts else []
        for start in starts:
            for end in ends:
                normal = normalize.email(text[start:end])
                if normal is not None:
                    yield RuleType.EMAIL, start, end, (normal,)
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


def _linkedins(text: str) -> Iterator[Found]:
    """Every `linkedin.com` host with a path: the URL as written and without trailing marks."""
    for match in _LINKEDIN.finditer(text):
        start = _url_start(text, match.start())
        glued = start > 0 and (text[start - 1].isalnum() or text[start - 1] in "-_.")
        if glued and text.find("//", start, match.start()) == -1:
            continue  # `notlinkedin.com`: another host (`xhttps://linkedin.com` is not)
        end = match.end()
        port = _PORT.match(text, end)
        if port is not None:
            end = port.end()
        if end >= len(text) or text[end] != "/":
            continue
        for stop in _path_ends(text, end):
            normal = normalize.linkedin(text[start:stop])
            if normal is not None:
                yield RuleType.LINKEDIN, start, stop, (normal,)


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


# ---------------------------------------------------------------------------- output


def scan_bytes(body: bytes, region: str) -> list[Candidate]:
    """Candidates of a UTF-8 body, with spans in bytes.

    Undecodable bytes become lone surrogates (surrogateescape): they are neither letters nor
    digits, so they end a candidate exactly as the U+FFFD a client's decoder shows there
    would, and every valid byte keeps its meaning; nothing is dropped or merged.
    """
    text = body.decode("utf-8", errors="surrogateescape")
    found = scan(text, region)
    if body.isascii():
        return found
    return _to_bytes(text, found)


def _to_bytes(text: str, found: list[Candidate]) -> list[Candidate]:
    """Char spans to byte spans, encoding each stretch of text once (offsets ascend)."""
    offsets = sorted({c.start for c in found} | {c.end for c in found})
    to_byte: dict[int, int] = {}
    char, byte = 0, 0
    for offset in offsets:
        byte += len(text[char:offset].encode("utf-8", errors="surrogateescape"))
        char = offset
        to_byte[offset] = byte
    return [Candidate(c.kind, to_byte[c.start], to_byte[c.end], c.normal) for c in found]


def merge_spans(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, overlapping or touching spans joined into one."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def redact_text(text: str, spans: Iterable[tuple[int, int]], replacement: str = "") -> str:
    """`text` with every span (merged where they overlap) replaced by `replacement`."""
    out: list[str] = []
    position = 0
    for start, end in merge_spans(spans):
        out.append(text[position:start])
        out.append(replacement)
        position = end
    out.append(text[position:])
    return "".join(out)


def drop_lines(text: str, spans: Iterable[tuple[int, int]]) -> str:
    """`text` without every line (and its line break) that a span touches: `--policy drop`
    for line-based text (CSV rows without embedded newlines, NDJSON, plain text)."""
    out: list[str] = []
    position = 0
    for start, end in merge_spans(spans):
        if start < position:  # inside a line already dropped
            start = position
            if end <= position:
                continue
        line_start = text.rfind("\n", 0, start) + 1
        line_end = text.find("\n", max(start, end - 1))
        out.append(text[position:line_start])
        position = len(text) if line_end == -1 else line_end + 1
    out.append(text[position:])
    return "".join(out)
