"""Publish rule events: an idempotent aiokafka producer that other services can import.

Usage: `async with RulePublisher(KafkaOptions("kafka:9092"), "denyproxy.rules") as pub:`
then `meta = await pub.publish("add", tenant_of(api_key), "email", ["jane@acme.com"])`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Self

from rules import events
from rules.kafka import DELIVERY_TIMEOUT_MS, KafkaOptions, RecordMetadata, make_producer
from rules.lists.events import encode_list
from rules.model import GLOBAL, MAX_VALUES_PER_CHANGE, ChangeMeta, ListChange, Op, RuleType
from rules.psl import is_freemail


class RulePublisher:
    """Sends add/remove events keyed by tenant, acks=all and idempotent (no duplicates on retry).

    Values are normalised before sending (with `region` for phones without a country code),
    so a bad value fails here, at the caller, instead of dead-lettering the whole event.
    Every event carries `region` too: what it holds is data read in that region, and every
    consumer reads it so, whatever its own `--phone-region`.
    `delivery_timeout_ms`: how long a send may wait for the broker (tests shorten it).
    """

    def __init__(
        self,
        options: KafkaOptions,
        topic: str,
        *,
        region: str,
        source: str | None = None,
        linger_ms: int = 5,
        delivery_timeout_ms: int = DELIVERY_TIMEOUT_MS,
    ) -> None:
        self.topic = topic
        self.region = region
        self.source = source
        self._producer = make_producer(
            options, "denyproxy-publisher", linger_ms=linger_ms, timeout_ms=delivery_timeout_ms
        )

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        """Flushes what is buffered, then closes."""
        await self._producer.stop()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def publish(
        self,
        op: Op,
        tenant: str,
        rule_type: RuleType | str,
        values: Sequence[str],
        source: str | None = None,
        *,
        allow_freemail: bool = False,
        meta: ChangeMeta | None = None,
    ) -> RecordMetadata:
        """Send one event (1 to MAX_VALUES_PER_CHANGE values); wait for its partition and offset.

        `meta` adds the v2 fields (reason, expires_at) of the catalogue."""
        sent = await self.send(
            op, tenant, rule_type, values, source, allow_freemail=allow_freemail, meta=meta
        )
        return await sent

    async def send(
        self,
        op: Op,
        tenant: str,
        rule_type: RuleType | str,
        values: Sequence[str],
        source: str | None = None,
        *,
        allow_freemail: bool = False,
        meta: ChangeMeta | None = None,
    ) -> asyncio.Future[RecordMetadata]:
        """Buffer one event and return at once with a future of its metadata (bulk import).

        Raises InvalidEventError (nothing sent) when a value does not normalise; free-mail
        domains (`gmail.com`) only with `allow_freemail`, which the event then carries.
        """
        kind = RuleType(rule_type)
        if len(values) > MAX_VALUES_PER_CHANGE:
            raise events.InvalidEventError(
                "too_many_values", f"{len(values)} values (at most {MAX_VALUES_PER_CHANGE})"
            )
        normal = events.normalise(values, kind, self.region, allow_freemail=allow_freemail)
        body = self._encode(op, tenant, kind, list(normal), allow_freemail, source, meta)
        return await self._send(tenant, body)

    async def send_normalised(
        self, op: Op, tenant: str, rule_type: RuleType, values: Sequence[str],
        meta: ChangeMeta | None = None,
    ) -> asyncio.Future[RecordMetadata]:
        """`send` for values the caller has already normalised (the CLI and the CSV importer).

        The caller normalised them with its own free-mail choice, so a free-mail domain here
        was allowed: the event says so, or the consumer would dead-letter it.
        """
        freemail = rule_type is RuleType.DOMAIN and any(is_freemail(v) for v in values)
        body = self._encode(op, tenant, rule_type, values, freemail, None, meta)
        return await self._send(tenant, body)

    def _encode(
        self, op: Op, tenant: str, kind: RuleType, values: Sequence[str], allow_freemail: bool,
        source: str | None, meta: ChangeMeta | None,
    ) -> bytes:
        """The event: v2 fields (reason, expires_at) when `meta` has them."""
        expires = meta.expires_at if meta else None
        return events.encode(
            op, tenant, kind, values, region=self.region, allow_freemail=allow_freemail,
            source=source or self.source, reason=meta.reason if meta else None,
            expires_at=None if expires is None else datetime.fromtimestamp(expires, UTC),
        )

    async def send_list(self, change: ListChange) -> asyncio.Future[RecordMetadata]:
        """A change to a named list itself (keyed `*`, like the list's entries)."""
        body = encode_list(change, source=self.source)
        return await self._send(GLOBAL, body)

    async def _send(self, tenant: str, body: bytes) -> asyncio.Future[RecordMetadata]:
        """Placed by murmur2 over the partition count the producer knows now, which the record
        names in a header: a consumer still accepts it after partitions were added."""
        key = events.key_of(tenant)
        count = len(await self._producer.partitions_for(self.topic))
        future: asyncio.Future[RecordMetadata] = await self._producer.send(
            self.topic, body, key=key, partition=events.partition_of(key, count),
            headers=[events.partitions_header(count)],
        )
        return future
