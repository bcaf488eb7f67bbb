"""Parsers of setting values: each takes the text of a flag or variable and returns the value,
or raises ValueError saying what is wrong (proxy/settings.py names the setting)."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit


def address(value: str) -> str:
    _host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError("expected HOST:PORT")
    return value


def upstream(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("expected an http(s) URL")
    if parts.query or parts.fragment:
        raise ValueError("must not carry a query or fragment")
    return value.rstrip("/")


def boolean(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def positive(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(value: str) -> Any:
        number = kind(value)
        if not math.isfinite(number):  # float("nan") <= 0 is False: nan/inf would slip through
            raise ValueError("must be a finite number")
        if number <= 0:
            raise ValueError("must be positive")
        return number

    return parse


def choice(*options: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if value not in options:
            raise ValueError(f"expected one of {', '.join(options)}")
        return value

    return parse


def workers(value: str) -> int:
    return os.cpu_count() or 1 if value == "auto" else positive(int)(value)


def region(value: str) -> str:
    import phonenumbers

    region = value.upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError("unknown phone region")
    return region


def paths(value: str) -> tuple[str, ...]:
    paths = tuple(p.strip() for p in value.split(",") if p.strip())
    if not all(p.startswith("/") for p in paths):
        raise ValueError("paths must start with /")
    return paths


DEFAULT_BINARY_TYPES: tuple[str, ...] = (
    "image/*", "audio/*", "video/*", "font/*", "application/octet-stream", "application/pdf",
    "application/zip", "application/gzip", "application/x-gzip", "application/x-tar",
    "application/x-7z-compressed", "application/x-bzip2", "application/x-xz", "application/zstd",
    "application/vnd.rar", "application/x-rar-compressed",
)
"""Streamed untouched, never filtered (proxy/media.py): types that are clearly not text."""


def media_types(value: str) -> tuple[str, ...]:
    """A comma list of `type/subtype` or `type/*`, lowercased."""
    entries = tuple(e.strip().lower() for e in value.split(",") if e.strip())
    for entry in entries:
        top, slash, sub = entry.partition("/")
        if not slash or not top or not sub or top == "*" or ("*" in sub and sub != "*"):
            raise ValueError(f"{entry!r} is not type/subtype or type/*")
    return entries


def optional(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    return lambda value: parse(value) if value else None
