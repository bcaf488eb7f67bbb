"""Identifiers in response headers: the structured filter's finders and the text scanner.

Both read every header text, so an address behind an entity, a percent escape or an
invisible character is found too. Over-matching is the safe failure: a candidate only costs
a place in the one lookup.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from multidict import CIMultiDict

from proxy.headers import header_texts
from rules import normalize
from rules.detect import scan
from rules.detect.match import _AROUND_EMAIL, _EMAIL_IN_TEXT, Identifier, is_denied
from rules.model import Lookup, RuleType

_LINKEDIN_URL = re.compile(r"(?:[\w.-]*\.)?linkedin\.com/in/[^\s\"'<>\\,;]+", re.IGNORECASE)
# Digit runs that could be a phone number: 7+ digits with the usual separators.
_PHONE_RUN = re.compile(r"\+?\(?\d[\d\s().-]{5,30}\d")
_MIN_DIGITS = 7


def text_identifiers(text: str, region: str) -> tuple[Identifier, ...]:
    """Every email, LinkedIn profile and phone-like run in `text`, normalised."""
    return tuple(dict.fromkeys(_find(text, region)))


def texts_identifiers(texts: Iterable[str], region: str) -> set[Identifier]:
    return {found for text in texts for found in text_identifiers(text, region)}


def _find(text: str, region: str) -> Iterator[Identifier]:
    if "@" in text:
        for match in _EMAIL_IN_TEXT.finditer(text):
            for variant in {match.group(), match.group().strip(_AROUND_EMAIL)}:
                if normal := normalize.email(variant):
                    yield RuleType.EMAIL, normal
    for match in _LINKEDIN_URL.finditer(text):
        if normal := normalize.linkedin(match.group()):
            yield RuleType.LINKEDIN, normal
    for found in scan.scan(text, region):
        for normal in found.normal:
            yield found.kind, normal
    for match in _PHONE_RUN.finditer(text):
        run = match.group()
        if sum(c.isdigit() for c in run) >= _MIN_DIGITS:
            for normal in normalize.phone_candidates(run.strip(), region):
                yield RuleType.PHONE, normal


CACHED_HEADERS = 4096
"""Headers whose identifiers are kept (least recently used go): with at most `CACHED_FIELD`
characters each, ~5 MB at worst."""
CACHED_FIELD = 1024
"""A longer header is scanned every time it comes (rare: cookies, long links)."""


def header_identifiers(name: str, value: str, region: str) -> tuple[Identifier, ...]:
    """The identifiers of one response header, cached: an upstream sends the same headers
    (Server, Content-Type, Vary, …) on every response, and scanning them cost every request."""
    if len(name) + len(value) > CACHED_FIELD:
        return _scanned(name, value, region)
    return _cached(name, value, region)


def _scanned(name: str, value: str, region: str) -> tuple[Identifier, ...]:
    return tuple(texts_identifiers(header_texts(name, value), region))


_cached = functools.lru_cache(maxsize=CACHED_HEADERS)(_scanned)
"""functools' C cache: a lookup per header of every response cost ~4x in Python."""


@dataclass(slots=True)
class HeaderIds:
    """Identifiers in response headers, kept by header so a denied one drops its header."""

    by_header: list[tuple[str, str, tuple[Identifier, ...]]]

    @classmethod
    def of(cls, headers: CIMultiDict[str], region: str) -> HeaderIds:
        found, cached = [], _cached  # header_identifiers inlined: ~10 per response
        for name, value in headers.items():
            if len(name) + len(value) > CACHED_FIELD:
                ids = _scanned(name, value, region)
            else:
                ids = cached(name, value, region)
            if ids:
                found.append((name, value, ids))
        return cls(found)

    def identifiers(self) -> set[Identifier]:
        return {i for _, _, ids in self.by_header for i in ids}

    def strip(self, headers: CIMultiDict[str], answer: Lookup) -> int:
        """Removes every header holding a denied identifier; returns how many went."""
        bad = {(n, v) for n, v, ids in self.by_header if any(is_denied(*i, answer) for i in ids)}
        if bad:
            kept = [(n, v) for n, v in headers.items() if (n, v) not in bad]
            headers.clear()
            headers.extend(kept)
        return len(bad)
