"""What a browser makes of a URL before it asks (WHATWG URL), and which LinkedIn paths show a
member's profile: the one place that says where a profile's slug is in a linkedin.com path."""

from __future__ import annotations

import re

__all__ = ["HOST_DOTS", "browser_segments", "profile_slug"]

# Label separators a browser reads as `.` in a host name (UTS 46 maps them): `linkedin。com`.
HOST_DOTS = str.maketrans("\u3002\uff0e\uff61", "...")

# Prefixes LinkedIn serves `/in/<slug>` under, the same profile: `/comm/` (e-mail links),
# `/m/` and `/mwlite/` (mobile web, LinkedIn Lite), `/public-profile/` (the signed-out view).
_PROFILE_PREFIXES = frozenset({"comm", "m", "mwlite", "public-profile"})
# A legacy `/pub/<name>/<a>/<b>/<c>` URL: the member's hex id in groups of three, the last
# group first; LinkedIn redirects it to `/in/<name>-<c><b><a>` (`a7/576/b50` → `b50576a7`).
_PUB_GROUP = re.compile(r"[0-9a-f]{1,3}", re.IGNORECASE)


def browser_segments(path: str) -> list[str]:
    """The path segments a browser requests: `.` and `..` resolved (RFC 3986 §5.2.4) and
    empty segments dropped."""
    segments: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            del segments[-1:]
        elif segment not in ("", "."):
            segments.append(segment)
    return segments


def profile_slug(path: str) -> str | None:
    """The slug (as written, still percent-encoded) of the profile a linkedin.com path shows:
    `/in/<slug>/…`, under a prefix above, or a legacy `/pub/` URL; None for any other page."""
    segments = browser_segments(path)
    while segments and segments[0].lower() in _PROFILE_PREFIXES:
        del segments[0]
    if len(segments) < 2:
        return None
    kind = segments[0].lower()
    if kind == "in":
        return segments[1]
    return _pub_slug(segments[1:]) if kind == "pub" else None


def _pub_slug(parts: list[str]) -> str | None:
    """`<name>/<a>/<b>/<c>` → `<name>-<c><b><a>`, the middle and last groups zero-padded."""
    if len(parts) < 4 or not all(_PUB_GROUP.fullmatch(group) for group in parts[1:4]):
        return None
    name, first, middle, last = parts[:4]
    return f"{name}-{last.zfill(3)}{middle.zfill(3)}{first}"
