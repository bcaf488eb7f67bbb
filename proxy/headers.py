"""Which headers cross the proxy, in each direction (RFC 9110 §7.6.1)."""

from __future__ import annotations

from multidict import CIMultiDict, CIMultiDictProxy

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
_REQUEST_OWN = frozenset({"host", "content-length", "x-forwarded-for", "x-forwarded-proto"})
# Recomputed when the body is rewritten.
_REWRITTEN_BODY = frozenset({"content-length", "content-encoding", "etag", "content-md5"})


def _dropped(headers: CIMultiDictProxy[str]) -> frozenset[str]:
    """Hop-by-hop headers plus every header that Connection names."""
    values = headers.getall("Connection", ())
    if not values:
        return HOP_BY_HOP
    named = {token.strip().lower() for value in values for token in value.split(",")}
    return HOP_BY_HOP.union(named - {""})


def _copy(headers: CIMultiDictProxy[str], skip: frozenset[str]) -> CIMultiDict[str]:
    return CIMultiDict(
        (name, value)
        for name, value in headers.items()
        if (lower := name.lower()) not in skip and not lower.startswith("proxy-")
    )


def upstream_request(
    headers: CIMultiDictProxy[str], *, peer: str | None, scheme: str, length: int | None
) -> CIMultiDict[str]:
    """Client headers for the upstream: hop-by-hop removed, Forwarded-* added, auth kept."""
    out = _copy(headers, _dropped(headers) | _REQUEST_OWN)
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
        skip |= _REWRITTEN_BODY
    return _copy(headers, skip)
