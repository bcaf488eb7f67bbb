"""Request paths as the forwarder reads them: decoded, dot segments refused, compared by segment."""

from __future__ import annotations

from urllib.parse import unquote

from proxy.errors import BadRequestError


def readings(path: str) -> list[list[str]]:
    """The path's segments as sent, decoded once (as most servers route) and decoded fully.

    `%252e%252e` decodes twice; decoding stops once it changes nothing. Each is also read with
    backslashes as slashes (some servers read them so).
    """
    if "%" not in path and "\\" not in path:  # the usual path: one reading, nothing to decode
        return [path.split("/")]
    texts, decoded = [path], path
    for _ in range(3):
        decoded, before = unquote(decoded), decoded
        if decoded == before:
            break
        texts.append(decoded)
    return [t.split("/") for t in texts] + [t.replace("\\", "/").split("/") for t in texts]


def check(path: str) -> None:
    """400 for dot segments in any reading: the upstream's base path must stay a prefix."""
    for segments in readings(path):
        if "." in segments or ".." in segments:
            raise BadRequestError("dot segments are not allowed in the path")


def is_exempt(path: str, prefixes: tuple[str, ...]) -> bool:
    """`/a/b` exempts `/a/b` and `/a/b/…`, never `/a/bc`: whole segments, in every reading.

    A path is exempt only if it lies under the prefix however it is decoded, so an encoding
    trick can make a trusted route filtered (safe), never a filtered route trusted.
    """
    if not prefixes:
        return False
    views = readings(path.partition("?")[0])
    for prefix in prefixes:
        wanted = prefix.rstrip("/").split("/")
        if all(view[: len(wanted)] == wanted for view in views):
            return True
    return False
