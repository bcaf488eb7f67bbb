"""`denyproxy store init`: an operator's word that a rule set written without Kafka is complete.

Rules written straight into Redis (the rules API without Kafka) have no source of truth to
rebuild from: after a flush or a Redis restarted empty they are gone, and the store's
`initialised` marker with them, so every lookup answers 503. Only an operator can decide that
what is left (often nothing) is to be trusted; this says what was found and then marks it.
"""

from __future__ import annotations

from dataclasses import dataclass

from rules.model import RULE_TYPES
from rules.store.keys import initialised_key, offsets_key, ready_key
from rules.store.redis import RedisStore

_RULE_SUFFIXES = tuple(f"}}:{t.value}" for t in RULE_TYPES)


@dataclass(frozen=True, slots=True)
class InitReport:
    """What `initialise` found and did."""

    marker_present: bool
    rule_sets: int
    """Rule sets (one per scope and type) present in Redis."""
    initialised: bool
    refused: str | None = None

    def __str__(self) -> str:
        found = f"{self.rule_sets} rule sets present" if self.rule_sets else "no rule sets present"
        state = "marker present" if self.marker_present else "marker missing"
        if self.refused:
            return f"{state}; {found}; not initialised: {self.refused}"
        done = "initialised" if self.initialised else "nothing to do"
        return f"{state}; {found}; {done}"


async def initialise(store: RedisStore, *, only_if_empty: bool = False) -> InitReport:
    """Write the `initialised` marker(s) and report what was there.

    Refused when `store.feeder_topic`'s consumer keeps this Redis (its rebuild, not an
    operator, makes it complete), and with `only_if_empty` (`serve --init-store`) when rules
    are present without a marker: they may be what is left of a larger set.
    """
    present = await store.all_present([(initialised_key(),)])
    rule_sets = await count_rule_sets(store)
    fed = await _fed_by_kafka(store)
    refused = None
    if fed:
        refused = f"kept by the Kafka consumer of topic {store.feeder_topic}; it rebuilds it"
    elif only_if_empty and rule_sets and not present:
        refused = "rules present without a marker; check them, then run `denyproxy store init`"
    if refused:
        return InitReport(present, rule_sets, initialised=False, refused=refused)
    if present and not store.cluster:
        return InitReport(present, rule_sets, initialised=False)
    await store.mark_initialised()  # on a Cluster: also restores the markers of a lost node
    return InitReport(present, rule_sets, initialised=True)


async def count_rule_sets(store: RedisStore) -> int:
    """Rule sets in Redis, by SCAN (every node of a Cluster)."""
    found = 0
    async for key in store.client.scan_iter(match="denyproxy:{*}:*", count=1000):
        found += str(key).endswith(_RULE_SUFFIXES)
    return found


async def _fed_by_kafka(store: RedisStore) -> bool:
    topic = store.feeder_topic
    return bool(await store.client.exists(ready_key(topic), offsets_key(topic)))
