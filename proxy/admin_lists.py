"""What the admin API does to named lists, apart from HTTP: changes published to Kafka and
awaited (every proxy converges), or written straight into the store without Kafka."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from proxy.errors import NotFoundError, ProxyError, PublishError, StoreError
from rules.catalogue.of import Catalogue
from rules.lists.entries import Entries
from rules.lists.model import ListInfo
from rules.model import Change, ChangeMeta, ListChange, RuleChange, chunks
from rules.scopes import list_scope
from rules.store import (
    RedisStore,
    RuleStore,
    StoreFedByKafkaError,
    StoreNotInitialisedError,
    StoreUnavailableError,
)
from rules.store.keys import initialised_key, ready_key
from rules.store.write_script import NOT_INITIALISED

if TYPE_CHECKING:
    from rules.kafka import RecordMetadata
    from rules.publisher import RulePublisher

SOURCE = "admin-api"
T = TypeVar("T")


class OutcomeUnknownError(ProxyError):
    status = 504


@dataclass(slots=True)
class ListAdmin:
    store: RuleStore
    catalogue: Catalogue
    publisher: RulePublisher | None
    timeout: float
    """Store calls and the wait for a published change to be applied, s."""

    async def get(self, list_id: str) -> ListInfo:
        found = await self.read(self.store.lists.lists([list_id]))
        if not found:
            raise NotFoundError("list not found")
        return found[0]

    async def create(self, list_id: str, name: str, description: str | None) -> ListInfo:
        await self.submit([ListChange("create", list_id, time.time(), name, description)])
        return await self.get(list_id)

    async def add(self, list_id: str, entries: Entries) -> int:
        """The entries not yet in the list are added; how many."""
        scope, at = list_scope(list_id), time.time()
        held = await self.read(self.store.lookup(scope, entries.by_type, include_global=False))
        changes: list[Change] = []
        added = 0
        for rule_type, values in entries.by_type.items():
            new = [v for v in values if v not in held.get(rule_type, ())]
            added += len(new)
            meta = ChangeMeta(at, SOURCE)
            changes += [RuleChange("add", scope, rule_type, tuple(part), meta)
                        for part in chunks(new)]
        await self.submit(changes)
        return added

    async def submit(self, changes: Sequence[Change]) -> None:
        if not changes:
            return
        if self.publisher is None:
            await self.read(direct_write_allowed(self.store))
            await self.read(self.store.apply(changes))
            return
        last = await self._publish(self.publisher, changes)
        await self._applied(last)

    async def _publish(self, publisher: RulePublisher, changes: Sequence[Change]
                       ) -> RecordMetadata:
        """Every change keyed `*` (one partition, in order): the last one's metadata."""
        try:
            async with asyncio.timeout(self.timeout):
                sent = [await _send(publisher, change) for change in changes]
                return (await asyncio.gather(*sent))[-1]
        except TimeoutError as exc:
            raise OutcomeUnknownError("publishing the change timed out; retry is safe") from exc
        except Exception as exc:
            raise PublishError("could not publish the change; retry is safe") from exc

    async def _applied(self, meta: RecordMetadata) -> None:
        """Until the store's mirrored offset passes the event (as the rules API waits)."""
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            try:
                if (await self.store.offsets()).get(meta.partition, -1) > meta.offset:
                    return
            except StoreUnavailableError:
                pass
            await asyncio.sleep(0.01)
        raise OutcomeUnknownError("published but not yet applied; it will be once the rule"
                                  " consumer catches up")

    async def read(self, awaitable: Awaitable[T]) -> T:
        """A store call, bounded; unavailable answers 503."""
        try:
            async with asyncio.timeout(self.timeout):
                return await awaitable
        except (StoreNotInitialisedError, StoreFedByKafkaError) as exc:
            raise StoreError(str(exc)) from exc
        except (StoreUnavailableError, TimeoutError) as exc:
            raise StoreError("suppression store unavailable") from exc


async def direct_write_allowed(store: RuleStore) -> None:
    """What the rules API's direct writes need (write_script.py): an initialised Redis that no
    Kafka consumer keeps, or a rebuild would drop what is written here."""
    if not isinstance(store, RedisStore):
        return
    pipe = store.client.pipeline(transaction=False)
    pipe.exists(initialised_key())
    pipe.exists(ready_key(store.feeder_topic))
    has_initialised, has_fed = await store._run(pipe)
    if has_fed:
        raise StoreFedByKafkaError(f"this store is kept by the Kafka consumer of topic"
                                   f" {store.feeder_topic}: configure --kafka; nothing changed")
    if not has_initialised:
        raise StoreNotInitialisedError(NOT_INITIALISED + "; nothing was changed")


async def _send(publisher: RulePublisher, change: Change) -> asyncio.Future[RecordMetadata]:
    if isinstance(change, ListChange):
        return await publisher.send_list(change)
    return await publisher.send_normalised(
        change.op, change.tenant, change.type, change.values, change.meta
    )
