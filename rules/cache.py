"""A least-recently-used cache bounded in bytes, not entries.

`functools.lru_cache(maxsize=N)` bounds the count of entries, so N values of 40 KB each hold
N times 40 KB: a client that sends long strings chooses our memory. This one charges every entry
the length of its key plus that of its value (characters of str; a tuple or None charged by
its parts, plus a fixed overhead per entry) and evicts the least recently used until the total
fits. An entry larger than the whole budget is not kept.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

ENTRY_OVERHEAD = 64
"""Bytes charged per entry besides its key and value (the dict slot, the node)."""

_MISSING = object()


def size_of(value: object) -> int:
    """Characters of a str (bytes of bytes), summed over a tuple; 8 for anything else."""
    if isinstance(value, str | bytes):
        return len(value)
    if isinstance(value, tuple):
        return sum(size_of(part) for part in value)
    return 8


class ByteLRU(Generic[K, V]):
    """get / put / len / bytes; not thread-safe (one per event loop, like the rest)."""

    def __init__(self, max_bytes: int) -> None:
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        self.max_bytes = max_bytes
        self._entries: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._bytes = 0

    def get(self, key: K, default: V | None = None) -> V | None:
        """The cached value (now the most recently used), or `default`."""
        entry = self._entries.get(key)
        if entry is None:
            return default
        self._entries.move_to_end(key)
        return entry[0]

    def lookup(self, key: K) -> tuple[bool, V | None]:
        """(found, value): for caches whose values may themselves be None."""
        entry = self._entries.get(key)
        if entry is None:
            return False, None
        self._entries.move_to_end(key)
        return True, entry[0]

    def put(self, key: K, value: V) -> None:
        """Keep `value`, evicting the least recently used entries until it fits."""
        cost = size_of(key) + size_of(value) + ENTRY_OVERHEAD
        self.discard(key)
        if cost > self.max_bytes:
            return
        while self._bytes + cost > self.max_bytes:
            _, (_, evicted) = self._entries.popitem(last=False)
            self._bytes -= evicted
        self._entries[key] = (value, cost)
        self._bytes += cost

    def discard(self, key: K) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= entry[1]

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0

    @property
    def bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries
