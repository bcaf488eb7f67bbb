"""The writes of a batch of changes, queued into one pipeline (RedisStore, the consumer's)."""

from __future__ import annotations

from collections.abc import Sequence

from redis.asyncio.client import Pipeline

from rules.lists.redis import queue_list_change
from rules.model import Change, ListChange, chunks
from rules.store.catalogue_script import APPLY, meta_args
from rules.store.catalogue_script import CHUNK as CATALOGUE_CHUNK
from rules.store.keys import catalogue_keys


def queue_changes(pipe: Pipeline, changes: Sequence[Change]) -> None:
    """Sets, expiries and catalogue records together, one script call per chunk of values;
    a change to a list itself, one script call on the {lists} slot."""
    for change in changes:
        if isinstance(change, ListChange):
            queue_list_change(pipe, change)
            continue
        keys = catalogue_keys(change.tenant, change.type)
        head = meta_args(change)
        for chunk in chunks(change.values, CATALOGUE_CHUNK):
            pipe.eval(APPLY, len(keys), *keys, *head, *chunk)

