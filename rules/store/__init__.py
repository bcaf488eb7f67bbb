"""Where rules live: reader/writer interfaces, an in-memory store and Redis stores."""

from __future__ import annotations

from rules.model import RULE_TYPES
from rules.store.base import RuleReader, RuleStore, RuleWriter, StoreUnavailableError
from rules.store.keys import rule_key, slot_marker, state_key
from rules.store.memory import MemoryStore
from rules.store.redis import MirroredRedisStore, RedisStore
from rules.store.redis_connection import connect

__all__ = [
    "RULE_TYPES",
    "MemoryStore",
    "MirroredRedisStore",
    "RedisStore",
    "RuleReader",
    "RuleStore",
    "RuleWriter",
    "StoreUnavailableError",
    "connect",
    "rule_key",
    "slot_marker",
    "state_key",
]
