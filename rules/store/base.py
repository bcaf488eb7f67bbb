"""What the two sides of a rule store promise: a reader for the proxy, a writer for the consumer.

The proxy only looks rules up (and, for the rules API, writes one change or waits for an
offset); the Kafka consumer writes changes together with the offsets they bring the store to,
and says when the rule set is complete. A store fed by no consumer is only a `RuleStore`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from rules.lists.model import ListReader
from rules.model import Change, Lookup, RuleChange, RuleType


class StoreUnavailableError(Exception):
    """The store did not answer (down, slow, or still rebuilding): callers fail closed."""


class StoreTimeoutError(StoreUnavailableError):
    """The store did not answer in time: a write may or may not have been applied."""


class StoreNotInitialisedError(StoreUnavailableError):
    """The completeness marker is missing: the rule set may have been lost (flush, restart
    empty) and nothing written without Kafka can rebuild it; an operator must initialise."""


class StoreFedByKafkaError(StoreUnavailableError):
    """A direct write into a rule set that a Kafka consumer keeps: a rebuild would drop it."""


class StoreSwappedError(Exception):
    """A planned rebuild switched generations under this writer: nothing was mirrored, so it
    must position again from the new generation's offsets (rules/store/generation.py)."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Abuse limits of one API key's direct rule writes (global rules are not limited)."""

    max_rules: int = 1_000_000
    """Rules of all types one key may hold."""
    writes_per_minute: int = 100
    """Rule writes (adds and removes) one key may make per minute."""


class LimitError(Exception):
    """A rule write refused by a limit; nothing was changed."""


@dataclass
class TooManyRulesError(LimitError):
    held: int
    adding: int
    limit: int

    def __str__(self) -> str:
        return (f"this key holds {self.held} rules; adding {self.adding} would exceed the"
                f" limit of {self.limit} rules per key; nothing was changed")


@dataclass
class TooManyWritesError(LimitError):
    retry_after: int
    limit: int

    def __str__(self) -> str:
        return (f"more than {self.limit} rule writes per minute for this key; retry in"
                f" {self.retry_after} s; nothing was changed")


class RuleReader(Protocol):
    """The lookup side: one round trip per response, and whether its answers can be trusted."""

    async def lookup(
        self, tenant: str, query: Lookup, *, include_global: bool = True,
        campaign: str | None = None,
    ) -> dict[RuleType, set[str]]:
        """Which of `query` are denied for `tenant` (and globally, by its assigned lists, and
        for `campaign` of it): one round trip, which also reads the completeness marker.

        Raises StoreUnavailableError when the answer cannot be trusted.
        """

    async def ready(self) -> bool:
        """True when lookups can be trusted."""

    async def aclose(self) -> None: ...


class RuleStore(RuleReader, Protocol):
    """What a proxy holds: lookups, plus the rules API's direct write and offset wait."""

    @property
    def lists(self) -> ListReader:
        """The named lists and their assignments (rules/lists)."""

    async def apply(self, changes: Sequence[Change]) -> None:
        """Apply changes in order, unchecked (tests and tools)."""

    async def write(self, change: RuleChange, limits: Limits) -> None:
        """The rules API without Kafka: apply one change if the rule set is initialised and
        the key is within `limits`, atomically. Raises LimitError or StoreUnavailableError."""

    async def admit(self, change: RuleChange, limits: Limits) -> str | None:
        """The rules API with Kafka: count the write against `limits` (atomically) before it
        is published, without applying it. Raises LimitError or StoreUnavailableError.

        An add's new values stay reserved against the rule limit until released (or a minute
        passed): concurrent admissions cannot together exceed it. Returns the reservation."""

    async def release(self, tenant: str, reservation: str) -> None:
        """The admitted change was applied: its values count as held, no longer reserved."""

    async def offsets(self) -> dict[int, int]:
        """The next offset to apply per partition; empty when nothing is mirrored."""


@runtime_checkable
class CachesLists(Protocol):
    """A store that knows, without I/O, the lists its last lookup of a tenant read."""

    def cached_lists(self, tenant: str) -> tuple[str, ...]: ...


@runtime_checkable
class RuleWriter(Protocol):
    """The consumer's side: writes with the offsets they reach, and the completeness marker."""

    @property
    def shared(self) -> bool:
        """Other processes read what this writer writes, so a consumer group may split the
        topic; False for a store private to this process (it must read every partition)."""

    def mirrors(self, topic: str) -> bool:
        """Whether this writer may keep the offsets of `topic`."""

    async def apply(
        self, changes: Sequence[Change], offsets: Mapping[int, int] | None = None
    ) -> None:
        """Apply changes in order, and record the consumer offsets they bring us to."""

    async def apply_and_check(
        self, changes: Sequence[Change], offsets: Mapping[int, int]
    ) -> bool:
        """apply(), and whether the ready marker was there both before and after the writes.

        False tells a consumer that believed the store complete that it was flushed (or a
        rebuild began) around this write: the offsets it just mirrored cannot be trusted.
        """

    async def offsets(self) -> dict[int, int]:
        """The next offset to apply per partition; empty means rebuild from the start."""

    async def set_heartbeat(self, fresh: Mapping[int, float]) -> None:
        """Per partition, the wall time it was last fresh (see rules/consumer/stall.py)."""

    async def heartbeat(self) -> dict[int, float]:
        """What set_heartbeat wrote; proxies bound rule staleness with it."""

    async def set_ready(self, ready: bool) -> None:
        """The consumer marks the rule set complete (or not) for lookups."""

    async def fence(self) -> None:
        """Remember the store's generation: offsets are mirrored only while it is unchanged."""

    async def ready(self) -> bool:
        """True when the store holds a complete rule set."""
