"""Scopes another topic owns: events to them are dead-lettered (reason `topic`), not applied.

Two consumers of two topics pointed at one Redis would otherwise write the same rule sets: one
topic's remove would delete the other's rule while its store stays marked complete. The first
topic to write a scope claims it (rules/store/mirrored.py `claim`); see rules/EVENTS.md.
"""

from __future__ import annotations

from rules.consumer.steps import Slice
from rules.events import InvalidEventError
from rules.model import Change, ListChange
from rules.scopes import list_scope
from rules.store import MirroredRedisStore, RuleWriter

FOREIGN = "its scope belongs to another topic's consumer (two topics on one Redis)"


def scope_of(change: Change) -> str:
    return list_scope(change.list_id) if isinstance(change, ListChange) else change.tenant


async def refuse_foreign(store: RuleWriter, part: Slice) -> None:
    """Claim the slice's scopes; move its events to scopes another topic owns to its rejects
    (dead-lettered before the write, like poison). A private store has no other topic."""
    if not isinstance(store, MirroredRedisStore) or not part.events:
        return
    foreign = await store.claim({scope_of(c) for c in part.changes})
    if not foreign:
        return
    kept = [i for i, c in enumerate(part.changes) if scope_of(c) not in foreign]
    gone = sorted(set(range(len(part.changes))).difference(kept))
    part.rejects += [(part.records[i], InvalidEventError("topic", FOREIGN)) for i in gone]
    part.changes = [part.changes[i] for i in kept]
    part.events = [part.events[i] for i in kept]
    part.records = [part.records[i] for i in kept]
