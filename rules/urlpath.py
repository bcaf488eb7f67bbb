"""What a browser makes of a URL before it asks: host dots and path segments (WHATWG URL)."""

from __future__ import annotations

__all__ = ["HOST_DOTS", "browser_segments"]

# Label separators a browser reads as `.` in a host name (UTS 46 maps them): `linkedin。com`.
HOST_DOTS = str.maketrans("\u3002\uff0e\uff61", "...")


def browser_segments(path: str) -> list[str]:
    """The path segments a browser requests: `.` and `..` resolved (RFC 3986 §5.2.4), empty
    segments dropped, and the `/comm/` prefix of LinkedIn's e-mail links taken off."""
    segments: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            del segments[-1:]
        elif segment not in ("", "."):
            segments.append(segment)
    return segments[1:] if segments and segments[0].lower() == "comm" else segments
