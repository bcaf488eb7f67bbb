"""rules/cache.py: the byte-bounded LRU."""

from __future__ import annotations

import pytest

from rules.cache import ENTRY_OVERHEAD, ByteLRU, size_of


def test_sizes_are_characters_of_keys_and_values() -> None:
    assert size_of("abc") == 3 and size_of(b"ab") == 2
    assert size_of(("ab", "cde")) == 5 and size_of(None) == 8


def test_total_bytes_never_exceed_the_budget_however_long_the_values() -> None:
    cache: ByteLRU[str, str] = ByteLRU(10_000)
    for i in range(1_000):
        cache.put(f"k{i}", "x" * (i * 7 % 3_000))
        assert cache.bytes <= 10_000
    assert cache.bytes == sum(len(k) + len(v) + ENTRY_OVERHEAD
                              for k in [f"k{i}" for i in range(1_000)]
                              if (v := cache.get(k)) is not None)


def test_least_recently_used_goes_first() -> None:
    cache: ByteLRU[str, str] = ByteLRU(3 * (1 + 1 + ENTRY_OVERHEAD))
    for key in "abc":
        cache.put(key, key)
    assert cache.get("a") == "a"  # a is now the most recent
    cache.put("d", "d")
    assert "b" not in cache and all(k in cache for k in "acd")


def test_an_entry_larger_than_the_budget_is_not_kept_and_evicts_nothing() -> None:
    cache: ByteLRU[str, str] = ByteLRU(1_000)
    cache.put("small", "v")
    cache.put("big", "x" * 1_000)
    assert "big" not in cache and cache.get("small") == "v"


def test_replacing_a_key_recharges_it_and_none_values_are_found() -> None:
    cache: ByteLRU[str, str | None] = ByteLRU(1_000)
    cache.put("k", "x" * 100)
    cache.put("k", None)
    assert cache.bytes == 1 + 8 + ENTRY_OVERHEAD and len(cache) == 1
    assert cache.lookup("k") == (True, None) and cache.lookup("absent") == (False, None)
    cache.discard("k")
    assert cache.bytes == 0 and len(cache) == 0


def test_budget_must_be_positive() -> None:
    with pytest.raises(ValueError, match="must be positive"):
        ByteLRU(0)
