"""Where rules live: reader/writer interfaces, an in-memory store and Redis stores."""

from __future__ import annotations

from rules.model import RULE_TYPES
from rules.store.base import (
    LimitError,
    Limits,
    RuleReader,
    RuleStore,
    RuleWriter,
    StoreFedByKafkaError,
    StoreNotInitialisedError,
    StoreSwappedError,
    StoreTimeoutError,
    StoreUnavailableError,
    TooManyRulesError,
    TooManyWritesError,
)
from rules.store.keys import rule_key, slot_marker, state_key
from rules.store.memory import MemoryStore
from rules.store.mirrored import MirroredRedisStore
from rules.store.redis import RedisStore
from rules.store.redis_connection import connect

__all__ = [
    "RULE_TYPES",
    "LimitError",
    "Limits",
    "MemoryStore",
    "MirroredRedisStore",
    "RedisStore",
    "RuleReader",
    "RuleStore",
    "RuleWriter",
    "StoreFedByKafkaError",
    "StoreNotInitialisedError",
    "StoreSwappedError",
    "StoreTimeoutError",
    "StoreUnavailableError",
    "TooManyRulesError",
    "TooManyWritesError",
    "connect",
    "rule_key",
    "slot_marker",
    "state_key",
]
