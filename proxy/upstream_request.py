"""The request head the upstream client writes: request line, the upstream's Host, the
caller's checked headers, and the body's framing (never a header holding a line break)."""

from __future__ import annotations

from multidict import CIMultiDict

_NO_BODY_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


def request_head(
    method: str, target: str, host: str, headers: CIMultiDict[str], body: bytes | None,
    chunked: bool = False,
) -> bytes:
    """Request line and headers; Host is the upstream's; a length or chunked framing added."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    elif "Content-Length" not in headers and (body or method not in _NO_BODY_METHODS):
        lines.append(f"Content-Length: {len(body or b'')}")
    head = "\r\n".join(lines)
    if head.count("\n") != len(lines) - 1 or head.count("\r") != len(lines) - 1:
        raise ValueError("a request header holds a line break")
    return (head + "\r\n\r\n").encode("utf-8", "surrogateescape")
