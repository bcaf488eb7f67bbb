"""The one place that names Redis keys.

Redis layout (one set per scope per type, hash-tagged so a scope stays in one Cluster slot):
    denyproxy:{<tenant>}:<type>          SET of normalised values
    denyproxy:{*}:<type>                 the global scope
    denyproxy:{state}:<topic>:offsets    HASH partition -> next offset to apply
    denyproxy:{state}:<topic>:pending    HASH partition -> offset a logged write in flight will
                                         reach (its rules are in, its offsets not yet)
    denyproxy:{state}:<topic>:heartbeat  HASH partition -> wall time the consumer was last fresh
    denyproxy:{state}:<topic>:ready      "1" once the consumer has caught up after a (re)build
    denyproxy:{<tag>}:<topic>:ready      Cluster only: that marker again in every slot (slot_marker)
    denyproxy:{state}:initialised        rules written without Kafka: an operator initialised them
    denyproxy:{<tag>}:initialised        Cluster only: that marker again in every slot
    denyproxy:{<tenant>}:writes          rule writes of the tenant in the current minute (limits)
    denyproxy:{<tenant>}:admitted        ZSET "<count>:<token>" -> expiry ms: adds admitted, not
                                         yet applied (the rule limit counts them)
    denyproxy:{<tag>}:topic              the topic whose consumer owns the scopes tagged <tag>
                                         (a key and its campaigns, `*`, `list:<id>`): SET NX
    denyproxy:{state}:region             the phone region of the rule set, and who recorded it
    denyproxy:{state}:generation         the rule set's generation (a planned rebuild raises it)
    denyproxy:{state}:normaliser         the normaliser version the rule set's values were made by
    denyproxy:{<tenant>}:<type>:expires  ZSET value -> expiry (epoch ms) of rules that expire
    denyproxy:{<tenant>}:rule:<id>       HASH the catalogue record of one rule (rules/catalogue)
    denyproxy:{<tenant>}:catalogue[:<type>]:created  ZSET id -> created_at (epoch ms)
    denyproxy:{<tenant>}:catalogue:values            ZSET score 0, "<value>\0<type>" (lex order)
    denyproxy:{<tenant>}:catalogue:types             ZSET score 0, "<type>\0<value>" (lex order)

Other scopes (rules/scopes.py) have the same keys under their own prefix:
    denyproxy:{list:<id>}:<type> ...                 a named list's entries (its own slot)
    denyproxy:{<tenant>}:campaign:<campaign>:<type>  a key's campaign rules (the key's slot)
Named lists themselves, all in the one slot {lists} (one script changes them atomically):
    denyproxy:{lists}:meta               HASH list id -> JSON {name, description, created_at,
                                         updated_at} (epoch ms)
    denyproxy:{lists}:tenants:<id>       SET tenants the list is assigned to
    denyproxy:{lists}:assigned:<tenant>  SET list ids assigned to the tenant
    denyproxy:{lists}:version:<tenant>   INCR whenever the tenant's lists change (lookups cache
                                         a tenant's lists and read this in their round trip)

"initialised", "region", "writes" and "topic" can never be a topic's or a rule type's name: a
topic's keys have one more `:` part, and rule types are email, phone, domain, linkedin and company.
"""

from __future__ import annotations

import functools
import itertools
import string
from typing import cast

from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from rules.model import RuleType

SLOTS = REDIS_CLUSTER_HASH_SLOTS


def rule_key(tenant: str, rule_type: RuleType) -> str:
    """The one place that names a rule set (of any scope: tenant, `*`, list, campaign)."""
    return f"{prefix(tenant)}{rule_type.value}"


def state_key(topic: str, what: str) -> str:
    return f"denyproxy:{{state}}:{topic}:{what}"


def ready_key(topic: str) -> str:
    """The marker that says the rule set of `topic` is complete."""
    return state_key(topic, "ready")


def offsets_key(topic: str) -> str:
    """The hash of mirrored next-offsets per partition of `topic`."""
    return state_key(topic, "offsets")


def pending_key(topic: str) -> str:
    """Offsets a logged write reaches once its step 4 lands: its rules already serve, so a
    planned rebuild's new generation must reach them too (rules/store/generation.py)."""
    return state_key(topic, "pending")


def heartbeat_key(topic: str) -> str:
    """When each partition was last fresh (applied to its end, or advancing): staleness."""
    return state_key(topic, "heartbeat")


def slot_marker(topic: str, slot: int) -> str:
    """The ready marker kept in Cluster slot `slot`: it goes wherever that slot's rules go.

    A node that comes back empty (no persistence, replaced, failover that lost writes) loses
    its slots' markers along with their rules, so lookups there fail closed.
    """
    return f"denyproxy:{{{slot_tags()[slot]}}}:{topic}:ready"


def initialised_key() -> str:
    """The marker that says an operator initialised a rule set written without Kafka."""
    return "denyproxy:{state}:initialised"


def slot_initialised(slot: int) -> str:
    """initialised_key() again in Cluster slot `slot`, like slot_marker()."""
    return f"denyproxy:{{{slot_tags()[slot]}}}:initialised"


def initialised_keys(cluster: bool) -> list[str]:
    """Every `initialised` marker: the {state} one and, on a Cluster, every slot's."""
    return [initialised_key(), *(slot_initialised(s) for s in range(SLOTS) if cluster)]


def region_key() -> str:
    """The phone region the rule set was recorded in (rules/store/region.py)."""
    return "denyproxy:{state}:region"


def generation_key() -> str:
    """The generation of the rule set in this logical database (rules/store/generation.py)."""
    return "denyproxy:{state}:generation"


def switches_key() -> str:
    """A count of generation switches, written in the switch's transaction: SWAPDB itself sends
    no invalidation, so the proxies' local caches (tracked_cache.py) are cleared by this key's."""
    return "denyproxy:{state}:switches"


def normaliser_key() -> str:
    """The normaliser version the stored values were normalised with."""
    return "denyproxy:{state}:normaliser"


def writes_key(tenant: str) -> str:
    """The tenant's rule-write counter of the current window: in the tenant's slot (a
    campaign's writes count against its key's, in the same slot)."""
    return f"denyproxy:{{{tenant.partition('/')[0]}}}:writes"


def admitted_key(tenant: str) -> str:
    """Adds the deny-rules API admitted and published, not yet applied: ZSET
    `<count>:<token>` -> expiry (epoch ms), counted against the scope's rule limit."""
    return f"{prefix(tenant)}admitted"


def claim_key(scope: str) -> str:
    """The topic that owns `scope` (rules/store/claims.py): one claim per hash tag, so a key's
    campaigns belong to the key's topic and the claim sits in the slot of the rules it guards."""
    return f"denyproxy:{{{scope.partition('/')[0]}}}:topic"


def slot_of(key: str) -> int:
    return key_slot(key.encode())


@functools.cache
def slot_tags() -> tuple[str, ...]:
    """A short hash tag per Cluster slot; searched once per process (~15 ms), on first use."""
    tags: list[str | None] = [None] * SLOTS
    left = SLOTS
    alphabet = (string.ascii_lowercase + string.digits).encode()
    for size in range(1, 5):  # 36**4 candidates: every slot is hit well before that
        for chars in itertools.product(alphabet, repeat=size):
            tag = bytes(chars)
            slot = key_slot(tag)
            if tags[slot] is None:
                tags[slot], left = tag.decode(), left - 1
                if not left:
                    return cast(tuple[str, ...], tuple(tags))
    raise AssertionError("some Cluster slot has no tag of up to 4 characters")


def prefix(tenant: str) -> str:
    """Every key of one scope starts so (the catalogue script derives record keys from it).

    A campaign scope `<tenant>/<campaign>` keeps the tenant's hash tag: one slot per key.
    """
    tag, campaign_sep, campaign = tenant.partition("/")
    if campaign_sep:
        return f"denyproxy:{{{tag}}}:campaign:{campaign}:"
    return f"denyproxy:{{{tenant}}}:"


LISTS = "denyproxy:{lists}:"


def lists_meta_key() -> str:
    return f"{LISTS}meta"


def list_tenants_key(list_id: str) -> str:
    return f"{LISTS}tenants:{list_id}"


def assigned_key(tenant: str) -> str:
    return f"{LISTS}assigned:{tenant}"


def lists_version_key(tenant: str) -> str:
    return f"{LISTS}version:{tenant}"


def expires_key(tenant: str, rule_type: RuleType) -> str:
    return f"{prefix(tenant)}{rule_type.value}:expires"


def record_key(tenant: str, rule_id: str) -> str:
    return f"{prefix(tenant)}rule:{rule_id}"


def created_key(tenant: str, rule_type: RuleType | None = None) -> str:
    suffix = f":{rule_type.value}" if rule_type is not None else ""
    return f"{prefix(tenant)}catalogue{suffix}:created"


def values_key(tenant: str) -> str:
    return f"{prefix(tenant)}catalogue:values"


def types_key(tenant: str) -> str:
    return f"{prefix(tenant)}catalogue:types"


def catalogue_keys(tenant: str, rule_type: RuleType) -> list[str]:
    """The keys the catalogue script declares for one scope and type, in its KEYS order."""
    return [
        rule_key(tenant, rule_type), expires_key(tenant, rule_type), created_key(tenant),
        created_key(tenant, rule_type), values_key(tenant), types_key(tenant),
    ]
