"""Company names and cities in one comparable spelling, on the rule side and the response side.

`Acme Corp.`, `ACME Corporation`, `Acme, Inc.` and `The Acme Company` all become `acme`;
`Société Générale S.A.` becomes `societe generale`; `Procter & Gamble` and `Procter and Gamble`
become `procter gamble`. The steps, in order: white space collapsed when the value is long (over
2,000 characters after that it is unreadable, see below), clean text (rules/text.py), case folded
and accents removed (cleanco's folding, which also maps `ø`, `ł`, `đ` that Unicode does not
decompose), then the letters nothing decomposes spelled out (`_LETTERS`: `æ` `ae`, `œ` `oe`,
Turkish dotless i (U+0131) `i`, Icelandic `þ` `th`, `ð` `d`; after the accents go, so `ǽ`, `ᴭ`
are `æ` first and the fold is idempotent), apostrophes and dots dropped inside words (`McDonald's`,
`S.A.`), the vowel fold (`_VOWELS`), every other punctuation a space, the connectors `&`, `and`,
`und`, `et` dropped, a leading `the` dropped, then legal forms removed from the end, repeatedly
(`GmbH & Co. KG`, `Pty Ltd`). Normalising a normal form gives it back, for every code point
(tests/test_company.py tries them all): the API publishes normal keys and the consumer
normalises them again.

**Choice (umlauts, `å`):** German writes `ö` as `oe` where it has no umlaut (`Köln`, `Koeln`),
and folding accents gives `Koln`: all three must meet. Dropping every `e` run after `a`, `o`, `u`
makes them `koln` (`ß` is `ss` by case folding). Danish and Norwegian write `å` as `aa`
(`Aarhus`, `Århus`, folded `arhus`): a run of `a` (and `e` after it) is one `a`. One pass of
`(a)[ae]*|([ou])e+` does both, and leaves no `aa`, `ae`, `oe`, `ue` behind (idempotent). It also
joins a few names that only look alike (`Joe` and `Jo`, `Blue` and `Blu`, `Michael` and
`Michal`, `Saar` and `Sar`): over-matching is the safe failure for a suppression list, and a name
still needs its city (tier 3) unless the name-only flag is on.

**Choice (length):** a name or city longer than 2,000 characters once its white space is
collapsed is not read (its cost), and it is not "no name" either: `Acme Store` and 2,000 dots
reads as `Acme Store`. `readable` tells the two apart; a rule holding one is refused (400), a
response record holding one is unchecked and the response refused (502, rules/detect/company.py).
Truncating would be wrong: a rule could match the prefix only.

The legal forms are cleanco's list (some 250 terms, 67 countries), read in this module's own
spelling so a term and a name always compare alike. **Choice:** they are removed from the end
only, and never the last word left (`Limited` stays `limited`): a term in the middle of a name
is usually part of it. Over-matching is the chosen failure: two companies that differ only by
their legal form (`Acme Inc` and `Acme GmbH`) get one name, which is why a name alone matches
only with `--company-name-only-match`, and a name with its city otherwise.
"""

from __future__ import annotations

import re
from functools import lru_cache

from cleanco.clean import normalized  # type: ignore[import-untyped]  # no type information
from cleanco.termdata import terms_by_country, terms_by_type  # type: ignore[import-untyped]

from rules.text import clean

MAX_NAME = 500
"""Characters of a company name or city we read (OpenProspect allows 500 for a list's name)."""

_MAX_RAW = 4 * MAX_NAME  # longer, once white space is collapsed: unreadable (`readable`)
_JOINED = re.compile(r"['\u2019`.\u00b4]")  # dropped inside words: `McDonald's`, `S.A.`
_SPLIT = re.compile(r"[\W_]+")
_MARKS = str.maketrans({"\u2122": " ", "\u2120": " "})  # ™ ℠: folding spells them `tm`, `sm`
_LETTERS = str.maketrans({  # no decomposition; after folding, which turns `ǽ`, `ᴭ` into `æ`
    "æ": "ae", "œ": "oe", "\u0131": "i", "þ": "th", "ð": "d",
})
_VOWELS = re.compile(r"(a)[ae]*|([ou])e+")  # `aa` = `å` = `a`, `oe` = `ö` = `o`: runs, at once
_CONNECTORS = frozenset({"and", "und", "et"})
_LEADING = frozenset({"the"})
_CITY_WORDS = {"st": "saint", "ste": "sainte", "ft": "fort", "mt": "mount"}


def _words(text: str) -> list[str]:
    """Folded words of `text`: no case, accents, punctuation or connectors."""
    folded = _folded(text)
    spelled = _JOINED.sub("", folded.translate(_LETTERS).replace("&", " and "))
    joined = _VOWELS.sub(r"\1\2", spelled)
    return [w for w in _SPLIT.split(joined) if w and w not in _CONNECTORS]


def _folded(text: str) -> str:
    """Clean text, case folded and without accents (cleanco's folding). ASCII, most names, is
    lowercased only: the folding leaves no ASCII character else (tests/test_company.py)."""
    if text.isascii():
        return text.lower()
    folded: str = normalized(clean(text).translate(_MARKS)).casefold()  # can yield capitals
    return folded


@lru_cache(maxsize=1)
def _legal_forms() -> frozenset[tuple[str, ...]]:
    """cleanco's terms in this module's spelling (`gmbh & co. kg` → (gmbh, co, kg))."""
    terms = [t for group in (terms_by_type, terms_by_country) for ts in group.values() for t in ts]
    return frozenset(words for t in terms if (words := tuple(_words(t))))


@lru_cache(maxsize=1)
def _longest_form() -> int:
    return max(len(t) for t in _legal_forms())


def _without_legal_forms(words: list[str]) -> list[str]:
    """Legal forms removed from the end, longest first, while a word is left before them."""
    forms, longest = _legal_forms(), _longest_form()
    changed = True
    while changed:
        changed = False
        for size in range(min(longest, len(words) - 1), 0, -1):
            if tuple(words[-size:]) in forms:
                del words[-size:]
                changed = True
                break
    return words


@lru_cache(maxsize=65_536)
def company_name(raw: str) -> str | None:
    """The comparable form of a company name; None when nothing is left of it or it is too
    long to read (`readable` tells which)."""
    text = _readable(raw)
    if text is None:
        return None
    words = _words(text)
    while len(words) > 1 and words[0] in _LEADING:
        del words[0]
    return _bounded(" ".join(_without_legal_forms(words)))


@lru_cache(maxsize=16_384)
def city(raw: str) -> str | None:
    """The comparable form of a city: `St. Louis` and `Saint-Louis` are `saint louis`."""
    text = _readable(raw)
    if text is None:
        return None
    words = _words(text)
    if words and words[0] in _CITY_WORDS:
        words[0] = _CITY_WORDS[words[0]]
    return _bounded(" ".join(words))


def _bounded(form: str) -> str | None:
    """A form of at most MAX_NAME characters (the bound is on the result: idempotent)."""
    return form if 0 < len(form) <= MAX_NAME else None


def readable(raw: str) -> bool:
    """Whether a name or city is short enough to read, white space collapsed (`Acme` padded with
    spaces is read). An unreadable one is not "no name": a response holding it is refused."""
    return _readable(raw) is not None


def _readable(raw: str) -> str | None:
    """`raw`, its white space collapsed when it is long (cheap, and the words are the same);
    None when it is still over the bound: normalising it would cost too much."""
    if len(raw) <= _MAX_RAW:
        return raw
    text = " ".join(raw.split())
    return text if len(text) <= _MAX_RAW else None
