"""What a domain rule must not be: a public suffix, or (unless allowed) a free-mail provider.

The public suffix list is the `publicsuffixlist` package's bundled snapshot (ICANN and private
sections, so `github.io` counts), loaded once on first use and never fetched at run time.
A rule on a public suffix would deny every domain under it (`co.uk`: a whole country); a rule
on a free-mail domain denies every person using that provider, which is rarely what was meant.
"""

from __future__ import annotations

from functools import lru_cache

from publicsuffixlist import PublicSuffixList

FREEMAIL_DOMAINS: frozenset[str] = frozenset(
    {
        # Google, Yahoo, Microsoft, Apple, AOL
        "gmail.com", "googlemail.com",
        "yahoo.com", "yahoo.co.uk", "yahoo.fr", "yahoo.de", "yahoo.it", "yahoo.es",
        "yahoo.co.jp", "yahoo.com.br", "yahoo.co.in", "yahoo.ca", "ymail.com", "rocketmail.com",
        "outlook.com", "outlook.fr", "outlook.de", "hotmail.com", "hotmail.co.uk", "hotmail.fr",
        "hotmail.de", "hotmail.it", "hotmail.es", "live.com", "live.co.uk", "live.fr", "msn.com",
        "icloud.com", "me.com", "mac.com", "aol.com", "aim.com",
        # privacy providers
        "proton.me", "protonmail.com", "protonmail.ch", "pm.me", "tutanota.com", "tuta.io",
        "fastmail.com", "hey.com", "zoho.com", "mail.com",
        # Europe
        "gmx.de", "gmx.net", "gmx.com", "gmx.at", "gmx.ch", "gmx.fr", "gmx.co.uk", "gmx.us",
        "web.de", "t-online.de", "freenet.de", "laposte.net", "orange.fr", "free.fr",
        "libero.it", "virgilio.it", "seznam.cz", "wp.pl", "o2.pl", "interia.pl",
        # Russia and neighbours
        "mail.ru", "inbox.ru", "list.ru", "bk.ru", "rambler.ru",
        "yandex.ru", "yandex.com", "yandex.ua", "yandex.by", "yandex.kz", "ya.ru",
        # Asia
        "qq.com", "163.com", "126.com", "yeah.net", "sina.com", "sohu.com", "aliyun.com",
        "naver.com", "daum.net", "hanmail.net", "rediffmail.com",
        # North American ISPs
        "comcast.net", "att.net", "sbcglobal.net", "verizon.net", "cox.net", "charter.net",
    }
)
"""Providers whose domain is shared by millions of unrelated people (punycode, lowercase)."""


@lru_cache(maxsize=1)
def _suffixes() -> PublicSuffixList:
    """The bundled snapshot (about 0.1 s to load, so only when a domain rule is first read)."""
    return PublicSuffixList()


@lru_cache(maxsize=4096)
def is_public_suffix(host: str) -> bool:
    """`com`, `co.uk`, `github.io`: names under which anyone can register their own domain.
    No registrable domain: `registrable` answers (and keeps it for a website's domain next)."""
    return registrable(host) is None


def is_freemail(host: str) -> bool:
    """A free-mail provider's own domain (a subdomain of it is a narrower, deliberate rule)."""
    return host in FREEMAIL_DOMAINS


@lru_cache(maxsize=16_384)
def registrable(host: str) -> str | None:
    """The registrable domain of a host (`shop.acme.co.uk` → `acme.co.uk`); None for a suffix."""
    found: str | None = _suffixes().privatesuffix(host)
    return found
