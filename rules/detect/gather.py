"""An inspection's identifiers, gathered once: what to ask the store, and what it denied.

Both run over every site and text candidate of a body (~800 and ~1,000 on 79 kB), so the
compiled core does them in one call each (rules/native/src/gather.rs); the functions here
named `*_reference` are the contract, and tests/test_gather.py proves with hypothesis that
both agree. A body's identifiers are the non-domain, non-company normal forms of its query
(`found`): no detector yields a domain or company identifier, those come from `query_for`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from rules import normalize
from rules.detect import finder
from rules.detect.match import Identifier, query_for
from rules.detect.scan import Candidate
from rules.model import Lookup, RuleType

Site = tuple[int, tuple[Identifier, ...]]  # token index, its identifiers
Hits = dict[RuleType, set[str]]  # type → the body's normal forms the answer denies
_DERIVED = (RuleType.DOMAIN, RuleType.COMPANY)  # asked for, never found in a body


def asked_reference(sites: Sequence[Site], text: Sequence[Candidate]) -> dict[RuleType, set[str]]:
    """`query_for` of every identifier of both detectors."""
    ids = {i for _, site_ids in sites for i in site_ids}
    ids.update((c.kind, n) for c in text for n in c.normal)
    return query_for(ids)


def denied_reference(
    sites: Sequence[Site], text: Sequence[Candidate], hits: Hits
) -> tuple[list[tuple[int, RuleType]], list[Candidate]]:
    """The sites holding a hit (with the type of their first one) and the text candidates
    holding a hit of their type."""
    placed = [
        (index, kind) for index, ids in sites
        if (kind := next((k for k, n in ids if n in hits.get(k, ())), None)) is not None
    ]
    spans = [c for c in text if not hits.get(c.kind, set()).isdisjoint(c.normal)]
    return placed, spans


_Domains = Callable[[str], Any]
_Asked = Callable[[Sequence[Site], Sequence[Candidate], RuleType, RuleType, _Domains], Any]
_Denied = Callable[[Sequence[Site], Sequence[Candidate], list[tuple[RuleType, set[str]]]], Any]


def asked(sites: Sequence[Site], text: Sequence[Candidate]) -> dict[RuleType, set[str]]:
    """What to ask the store for a body (a fresh dict: the caller adds its company keys)."""
    if _native_asked is None:
        return asked_reference(sites, text)
    out: dict[RuleType, set[str]] = _native_asked(
        sites, text, RuleType.EMAIL, RuleType.DOMAIN, normalize.parent_domains
    )
    return out


def denied(
    sites: Sequence[Site], text: Sequence[Candidate], hits: Hits
) -> tuple[list[tuple[int, RuleType]], list[Candidate]]:
    """`denied_reference`, compiled when the core is built."""
    if _native_denied is None:
        return denied_reference(sites, text, hits)
    placed, spans = _native_denied(sites, text, list(hits.items()))
    return placed, spans


def found(query: Lookup) -> frozenset[Identifier]:
    """The body's identifiers, from its query."""
    return frozenset(
        (kind, normal) for kind, values in query.items() if kind not in _DERIVED
        for normal in values
    )


def hits(query: Lookup, answer: Lookup) -> Hits:
    """Of the identifiers in `query` (a body's), the ones `answer` denies, by type; an email
    also by its domain or a parent's rule (`match.is_denied`)."""
    if not any(answer.values()):
        return {}
    out: Hits = {}
    for kind, values in answer.items():
        mine = query.get(kind) if kind not in _DERIVED and values else None
        if mine and (common := set(mine).intersection(values)):
            out[kind] = common
    if domains := set(answer.get(RuleType.DOMAIN, ())):
        by_domain = {e for e in query.get(RuleType.EMAIL, ()) if _domain_denied(e, domains)}
        if by_domain:
            out[RuleType.EMAIL] = out.get(RuleType.EMAIL, set()) | by_domain
    return out


def _domain_denied(email: str, domains: set[str]) -> bool:
    return any(d in domains for d in normalize.parent_domains(email.rpartition("@")[2]))


_native = finder._native
_native_asked: _Asked | None = _native.asked if _native is not None else None
_native_denied: _Denied | None = _native.denied if _native is not None else None
