"""Which finder serves the scanner: the compiled core when it is built, else the reference.

Both implement one contract (rules/textfind.py): `find_text(text)` with spans in characters,
`find_bytes(body)` with spans in bytes. The compiled core (`rules._native`, built from
rules/native by `pip install .` when a Rust toolchain is present) is the same finding, ~50 times
faster; without it the proxy still works, slower, and says so once at start-up
(`announce()`).
`DENYPROXY_REQUIRE_NATIVE=1` turns the fallback into an import error (CI proves the core).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from types import ModuleType

from rules import textfind
from rules.textfind import Raw

__all__ = ["BACKEND", "Raw", "announce", "find_bytes", "find_text"]

log = logging.getLogger(__name__)


def _load_native() -> ModuleType | None:
    try:
        from rules import _native  # type: ignore[attr-defined]  # built by setuptools-rust
    except ImportError:
        return None
    return _native  # type: ignore[no-any-return]  # an extension module, untyped


_native = _load_native()
BACKEND = "native" if _native is not None else "python"


def _native_text(text: str) -> list[Raw]:
    """The compiled core over the text's UTF-8; spans come back in characters."""
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: only the reference reads them as Python does
        return textfind.find_text(text)
    return _native_find(data, True)


def _native_bytes(body: bytes) -> list[Raw]:
    return _native_find(body, False)


_native_find: Callable[[bytes, bool], list[Raw]]
find_text: Callable[[str], list[Raw]]
find_bytes: Callable[[bytes], list[Raw]]
if _native is not None:
    _native_find = _native.find
    find_text, find_bytes = _native_text, _native_bytes
else:
    if os.environ.get("DENYPROXY_REQUIRE_NATIVE") == "1":
        raise ImportError("DENYPROXY_REQUIRE_NATIVE=1 but rules._native is not built")
    find_text, find_bytes = textfind.find_text, textfind.find_bytes

_announced = False


def announce() -> str:
    """The backend's name; the first call (the proxy's start-up) warns if it is the fallback."""
    global _announced
    if BACKEND != "native" and not _announced:
        log.warning(
            "compiled scanning core rules._native is not built: using the pure-Python finder "
            "(slower; install a Rust toolchain and reinstall denyproxy to build it)"
        )
    _announced = True
    return BACKEND
