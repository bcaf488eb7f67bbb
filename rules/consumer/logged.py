"""The consumer's side of the changelog: one slice written so that a crash anywhere loses nothing.

    1. the rules, one pipeline between two reads of the ready marker, no offsets yet, but
       the offsets they will reach as `pending` (before the rules, same pipeline);
    2. the records they left in the store (read back) to `<topic>.changelog`, acknowledged;
    3. the input offsets they reach to the changelog (`offsets:<p>`), acknowledged;
    4. the same offsets to the store, fenced by its generation; they clear `pending`.

The store's offsets come last, so a crash before 4 replays the slice from them: the rules
replayed in order end in the same state, and the changelog receives the same records again
(compaction keeps the last). The changelog's offsets never pass records it lacks (3 after 2).
A planned rebuild's switch catches up to `pending` too: rules in db 0 are in the new generation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rules.changelog import ChangelogWriter, ensure_changelog, read_changelog
from rules.kafka import KafkaOptions, partition_ids
from rules.kafka_access import changelog_needs, check_access
from rules.lists.snapshot import deleted_entries, list_entries, restore_lists, touched_lists
from rules.model import Change
from rules.scopes import list_scope
from rules.store import MirroredRedisStore, RuleWriter
from rules.store.snapshot import entries, restore, touched


class Changelog:
    """Created with the topic, started and stopped with the consumer; disabled, a write is
    the store's own (rules and offsets in one pipeline)."""

    def __init__(
        self, options: KafkaOptions, topic: str, store: RuleWriter, *, enabled: bool = True
    ) -> None:
        if enabled and not isinstance(store, MirroredRedisStore):
            raise ValueError("a changelog needs the Redis store a consumer keeps")
        self.options, self.topic, self.store, self.enabled = options, topic, store, enabled
        self.writer: ChangelogWriter | None = None
        self.partitions = 0

    async def start(self, partitions: int) -> None:
        """Create `<topic>.changelog` (compacted) if missing; learn the input's partitions."""
        if not self.enabled:
            return
        self.partitions = len(await partition_ids(self.options, self.topic)) or partitions
        await ensure_changelog(self.options, self.topic, self.partitions)
        await check_access(self.options, changelog_needs(self.topic))  # once it exists
        writer = ChangelogWriter(self.options, self.topic)
        await writer.start()
        self.writer = writer

    async def stop(self) -> None:
        writer, self.writer = self.writer, None
        if writer is not None:
            await writer.stop()

    async def write(self, changes: Sequence[Change], offsets: Mapping[int, int]) -> bool:
        """Steps 1-4 above; whether the ready marker held around the rules."""
        store, writer = self.store, self.writer
        if writer is None or not isinstance(store, MirroredRedisStore):
            return await store.apply_and_check(changes, offsets)  # disabled: all in one pipeline
        purged = await deleted_entries(store.client, changes)  # gone once applied: read first
        fresh = await store.apply_and_check(changes, {}, pending=offsets)
        rules = list(dict.fromkeys([*touched(changes), *purged]))
        logged = await entries(store.client, rules, self.partitions)
        logged += await list_entries(store.client, touched_lists(changes), self.partitions)
        await writer.write(logged, offsets)
        await store.apply([], offsets)
        return fresh

    async def restore(self, partitions: set[int]) -> dict[int, int]:
        """The store lost its rules: put back the changelog's of `partitions` (a group member
        restores only its own); the input offsets they reach (empty without a changelog)."""
        store = self.store
        if self.writer is None or not isinstance(store, MirroredRedisStore):
            return {}
        offsets: dict[int, int] = {}
        for part in await read_changelog(self.options, self.topic):
            mine = [r for r in part.rules.values() if r.partition in partitions]
            lists = [r for r in part.lists.values() if r.partition in partitions]
            scopes = [r.scope for r in mine] + [list_scope(r.list_id) for r in lists]
            taken = await store.claim(scopes)
            mine = [r for r in mine if r.scope not in taken]  # another topic's since the flush
            lists = [r for r in lists if list_scope(r.list_id) not in taken]
            await restore(store.client, mine)
            await restore_lists(store.client, lists)
            offsets.update({p: o for p, o in part.offsets.items() if p in partitions})
        return offsets
