"""Scope ids besides a tenant and the global scope: named lists and a key's campaigns.

A scope id names a rule store's sets (rules/store/keys.py). A list's scope is `list:<id>`;
a campaign's is `<tenant>/<campaign>`, whose keys carry the tenant's hash tag, so a key's own
rules and its campaign's share one Cluster slot.
"""

from __future__ import annotations

import functools
import re
import uuid

from rules.model import GLOBAL, is_tenant

MAX_CAMPAIGN = 128
_CAMPAIGN = re.compile(r"[A-Za-z0-9._-]{1,128}")
_LIST_ID = re.compile(r"[0-9a-f]{32}")
LIST_PREFIX = "list:"


def check_campaign(campaign: str) -> str:
    """The campaign id as given, or ValueError (1-128 of `[A-Za-z0-9._-]`)."""
    if not _CAMPAIGN.fullmatch(campaign):
        raise ValueError("campaign must be 1-128 characters of A-Z a-z 0-9 . _ -")
    return campaign


def check_list_id(list_id: str) -> str:
    """A list id is 32 lowercase hex digits (a UUID's hex); anything else is ValueError."""
    if not _LIST_ID.fullmatch(list_id):
        raise ValueError("list id must be 32 lowercase hex digits")
    return list_id


def new_list_id() -> str:
    return uuid.uuid4().hex


def list_scope(list_id: str) -> str:
    return f"{LIST_PREFIX}{check_list_id(list_id)}"


def campaign_scope(tenant: str, campaign: str) -> str:
    """The scope of `tenant`'s rules for `campaign`; the global scope has no campaigns."""
    if tenant == GLOBAL or not is_tenant(tenant):
        raise ValueError("only an API key's scope has campaigns")
    return f"{tenant}/{check_campaign(campaign)}"


def scope_kind(scope: str) -> str:
    """`global`, `list`, `campaign` or `key`: what a catalogue record says of its scope."""
    if scope == GLOBAL:
        return "global"
    if scope.startswith(LIST_PREFIX):
        return "list"
    return "campaign" if "/" in scope else "key"


@functools.lru_cache(maxsize=4096)
def filtering_scopes(
    tenant: str, *, include_global: bool, campaign: str | None, lists: tuple[str, ...]
) -> tuple[str, ...]:
    """The scopes a response of `tenant` is filtered by: its own, then (unless only its own
    rules are asked) global and its assigned lists, then its campaign's (with the header).
    Kept per arguments: every lookup asks, and a key asks the same (~0.3 µs each)."""
    if tenant == GLOBAL:
        return (GLOBAL,)
    scopes = [tenant]
    if include_global:
        scopes += [GLOBAL, *(list_scope(i) for i in lists)]
    if campaign is not None:
        scopes.append(campaign_scope(tenant, campaign))
    return tuple(scopes)


@functools.lru_cache(maxsize=4096)
def has_lists(tenant: str, include_global: bool) -> bool:
    """Whether a lookup for `tenant` reads its assigned lists: a key's, with global rules.
    Kept per tenant: every lookup asks, and the tenant regex cost ~0.3 µs."""
    return include_global and tenant != GLOBAL and is_tenant(tenant)
