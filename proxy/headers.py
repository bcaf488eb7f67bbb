"""Which headers cross the proxy, in each direction (RFC 9110 §7.6.1)."""

from __future__ import annotations

import functools
import re
from email.errors import HeaderParseError
from email.header import decode_header
from itertools import islice
from urllib.parse import unquote

from multidict import CIMultiDict, CIMultiDictProxy

from proxy.errors import BadRequestError

HOP_BY_HOP = frozenset(
    {
        "connection",
        "proxy-connection",
        "keep-alive",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "proxy-authenticate",
        "proxy-authorization",
    }
)
# Set by the proxy itself on the way in; never taken from the client.
_REQUEST_OWN = frozenset({
    "host", "content-length", "x-forwarded-for", "x-forwarded-proto",
    "x-denyproxy-campaign",  # the proxy's own (issue #13): never sent upstream
})
# Never forwarded on a filtered route: a slice of a body cannot be filtered.
_RANGE = frozenset({"range", "if-range"})
_AUTH = frozenset({"x-api-key", "authorization"})
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VALUE = re.compile(r"[\t\x20-\x7e]*")  # visible ASCII, space and tab
_URL_PARTS = re.compile(r"[?&=#<>;]")
# Numbers and dates: not scanned when they are exactly that (RFC 9110 §5.6.7 HTTP-date,
# delta-seconds), read like any header when they are not.
_DAY = "(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
_MONTH = "(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
_HTTP_DATE = re.compile(
    rf"{_DAY}, \d\d {_MONTH} \d{{4}} \d\d:\d\d:\d\d GMT"  # IMF-fixdate
    rf"|(?:Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day, \d\d-{_MONTH}-\d\d \d\d:\d\d:\d\d GMT"
    rf"|{_DAY} {_MONTH} [\d ]\d \d\d:\d\d:\d\d \d{{4}}"  # asctime
)
_NUMBER = re.compile(r"\d{1,19}")
_STRUCTURAL = {"content-length": _NUMBER, "age": _NUMBER, "date": _HTTP_DATE,
               "last-modified": _HTTP_DATE, "expires": _HTTP_DATE}
# Recomputed when the body is rewritten.
REWRITTEN_BODY = frozenset({"content-length", "content-encoding", "etag", "content-md5"})


def _dropped(headers: CIMultiDictProxy[str]) -> frozenset[str]:
    """Hop-by-hop headers plus every header that Connection names."""
    values = headers.getall("Connection", ())
    if not values:
        return HOP_BY_HOP
    if len(values) == 1 and len(values[0]) <= 64:  # `keep-alive` on every response: cached
        return _named_once(values[0])
    return _named_by(values)


def _named_by(values: list[str]) -> frozenset[str]:
    named = {token.strip().lower() for value in values for token in value.split(",")}
    return HOP_BY_HOP.union(named - {""})


@functools.lru_cache(maxsize=256)
def _named_once(value: str) -> frozenset[str]:
    """One short Connection value's set, kept (at most 256 of 64 characters: a client cannot grow
    it)."""
    return _named_by([value])


def check_request(headers: CIMultiDictProxy[str]) -> frozenset[str]:
    """400 before anything goes upstream: bad names or values, or auth named hop-by-hop.
    Returns the headers that do not cross (`_dropped`), worked out once for both uses.

    Choice: a request whose Connection names X-API-Key or Authorization is refused rather
    than half-honoured; dropping the auth header would change whose rules apply.
    """
    bad = _bad_name(tuple(headers.keys()))
    upto = len(headers) if bad is None else bad[0] + 1  # a bad value first is reported first
    if not _printable("".join(islice(headers.values(), upto))):  # each is iff all are
        raise BadRequestError(_NOT_PRINTABLE)
    if bad is not None:
        raise BadRequestError(bad[1])
    dropped = _dropped(headers)
    if dropped & _AUTH:
        raise BadRequestError("Connection must not name X-API-Key or Authorization")
    return dropped


_NOT_PRINTABLE = "request header names and values must be printable ASCII"


@functools.lru_cache(maxsize=1024)
def _bad_name(names: tuple[str, ...]) -> tuple[int, str] | None:
    """(index, detail) of the first name refused, or None: worked out once per sequence of
    names (a client sends the same one every time; a regex per name cost every request)."""
    for index, name in enumerate(names):
        if not _TOKEN.fullmatch(name):
            return index, _NOT_PRINTABLE
        if "_" in name and _auth_alias(name):
            return index, "X_API_Key-style spellings of an auth header are not allowed"
    return None


def _printable(value: str) -> bool:
    """Visible ASCII, space and tab; str's own tests first (a regex per value cost more)."""
    return value.isascii() and (value.isprintable() or _VALUE.fullmatch(value) is not None)


def _auth_alias(name: str) -> bool:
    """`X_API_Key`: CGI/WSGI stacks read it as X-API-Key, the proxy would not (so it would
    filter with the global rules only while the upstream answers for the key)."""
    return name.replace("_", "-").lower() in _AUTH


def _copy(headers: CIMultiDictProxy[str], skip: frozenset[str]) -> CIMultiDict[str]:
    """The headers but those named in `skip` (lowercase) and any `Proxy-*`, order kept: one
    copy in C, then the few removals."""
    out = CIMultiDict(headers)
    for name in _unwanted(tuple(headers.keys()), skip):
        out.popall(name, None)
    return out


@functools.lru_cache(maxsize=1024)
def _unwanted(names: tuple[str, ...], skip: frozenset[str]) -> frozenset[str]:
    """Which of `names` go: worked out once per sequence of names (a client or an upstream
    sends the same one every time; reading each name per request cost ~2 %)."""
    return frozenset(
        name for name in names if (lower := name.lower()) in skip or lower.startswith("proxy-")
    )


_SKIP = HOP_BY_HOP | _REQUEST_OWN
_SKIP_FILTERED = _SKIP | _RANGE


def upstream_request(
    headers: CIMultiDictProxy[str],
    *,
    peer: str | None,
    scheme: str,
    length: int | None,
    filtered: bool = True,
) -> CIMultiDict[str]:
    """Client headers for the upstream: hop-by-hop removed, Forwarded-* added, auth kept.

    On a filtered route Range and If-Range are dropped: the proxy filters whole bodies only.
    """
    dropped = check_request(headers)
    if dropped is HOP_BY_HOP:  # no Connection header (the usual): the sets are made once
        skip = _SKIP_FILTERED if filtered else _SKIP
    else:
        skip = dropped | _REQUEST_OWN | _RANGE if filtered else dropped | _REQUEST_OWN
    out = _copy(headers, skip)
    forwarded_for = headers.get("X-Forwarded-For")
    if peer:
        forwarded_for = f"{forwarded_for}, {peer}" if forwarded_for else peer
    if forwarded_for:
        out["X-Forwarded-For"] = forwarded_for
    out["X-Forwarded-Proto"] = scheme
    if length is not None:
        out["Content-Length"] = str(length)
    return out


def client_response(headers: CIMultiDictProxy[str], *, rewritten: bool) -> CIMultiDict[str]:
    """Upstream headers for the client; length and encoding dropped when we rewrote the body."""
    skip = _dropped(headers)
    if rewritten:
        skip |= REWRITTEN_BODY
    return _copy(headers, skip)


def private(headers: CIMultiDict[str]) -> None:
    """A filtered body depends on the key: never stored by a shared cache, varies by key."""
    cache_control, vary = _private_values(
        tuple(headers.getall("Cache-Control", ())), tuple(headers.getall("Vary", ()))
    )
    headers["Cache-Control"] = cache_control
    if vary is not None:
        headers["Vary"] = vary


@functools.lru_cache(maxsize=256)
def _private_values(
    cache_control: tuple[str, ...], vary: tuple[str, ...]
) -> tuple[str, str | None]:
    """(Cache-Control, Vary or None to leave it) for the upstream's values: an upstream sends
    the same few on every response, so they are worked out once."""
    directives = [d.strip() for value in cache_control for d in value.split(",")]
    kept = [d for d in directives if d and d.split("=")[0].strip().lower() not in _SHARED]
    varies = [v.strip() for value in vary for v in value.split(",")]
    if "*" in varies:
        return ", ".join(["private", *kept]), None
    missing = [h for h in ("X-API-Key", "Authorization") if h.lower() not in _lower(varies)]
    return ", ".join(["private", *kept]), ", ".join([v for v in varies if v] + missing)


_SHARED = frozenset({"public", "private", "s-maxage", "proxy-revalidate"})


def _lower(values: list[str]) -> set[str]:
    return {v.lower() for v in values}


def header_texts(name: str, value: str) -> list[str]:
    """The texts of one response header that may carry an identifier (name, value, decoded)."""
    if (form := _STRUCTURAL.get(name.lower())) and form.fullmatch(value):
        return []
    decoded = unquote(value)  # `mailto:jane%40acme.com`
    texts = [name, value, _URL_PARTS.sub(" ", decoded)]  # `mailto:a@b.co?subject=…`
    if "=?" in value:  # `=?utf-8?Q?jane.doe=40acme.com?=`
        texts.append(_rfc2047(value))
    return texts


def _rfc2047(value: str) -> str:
    """The RFC 2047 reading a mail client would show; a bad byte or charset is replaced, so a
    malformed word never raises and never hides the rest of the value."""
    try:
        words = decode_header(value)
    except HeaderParseError:
        return value
    return "".join(_word(text, charset) for text, charset in words)


def _word(text: bytes | str, charset: str | None) -> str:
    if isinstance(text, str):
        return text
    try:
        return text.decode(charset or "ascii", errors="replace")
    except LookupError:  # `=?bogus?Q?…?=`
        return text.decode("latin-1")


def response_header_texts(headers: CIMultiDict[str] | CIMultiDictProxy[str]) -> list[str]:
    """Every header text the identifier finders must read before a response goes out."""
    return [text for name, value in headers.items() for text in header_texts(name, value)]
