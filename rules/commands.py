"""What `denyproxy rules add|remove|import` do, without the command line: scope, values, publish.

The CLI (proxy/cli.py) parses flags into Settings and KafkaOptions, calls these functions and
prints what they return. Values are never part of an error message: bad ones are named by
position (they may be emails and phones).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from rules.events import chunks
from rules.importer import ImportSpec, ImportSummary, import_csv
from rules.kafka import KafkaOptions
from rules.kafka_access import Need, explained, prepare_publishing
from rules.model import GLOBAL, Op, RuleType, is_tenant, tenant_of
from rules.normalize import detect, for_type
from rules.progress import Progress
from rules.publisher import RulePublisher

SOURCE = "denyproxy-cli"
"""The `source` field of the events the CLI publishes, unless told otherwise."""

PARALLEL_FROM = 4 * 1024 * 1024
"""Files from this size are normalised in worker processes (starting them costs ~0.5 s)."""

_NAMED_POSITIONS = 10


class InvalidInputError(ValueError):
    """A scope or values that cannot be published; the message names no value."""


@dataclass(frozen=True, slots=True)
class Published:
    """One event sent and acknowledged: what the CLI reports per chunk."""

    op: Op
    tenant: str
    rule_type: RuleType
    count: int
    partition: int
    offset: int


def scope_of(api_key: str | None, tenant: str | None) -> str:
    """The tenant id of `--api-key` or `--tenant`; the global scope when neither is given."""
    if api_key is not None:
        if not api_key:
            raise InvalidInputError("--api-key must not be empty")
        return tenant_of(api_key)
    if tenant is None:
        return GLOBAL
    scope = tenant.strip().lower()
    if scope == GLOBAL or not is_tenant(scope):
        raise InvalidInputError("--tenant must be 64 hex digits (the sha256 of the API key)")
    return scope


def normalise_all(
    values: Sequence[str], rule_type: RuleType | None, region: str
) -> dict[RuleType, list[str]]:
    """Values by type (None: detect each one), normalised and deduplicated, order kept."""
    groups: dict[RuleType, list[str]] = {}
    bad: list[int] = []
    for i, raw in enumerate(values, start=1):
        found = _normalise_one(raw, rule_type, region)
        if found is None:
            bad.append(i)
        else:
            groups.setdefault(found[0], []).append(found[1])
    if bad:
        raise InvalidInputError(_bad_values(bad, len(values), rule_type))
    return {t: list(dict.fromkeys(v)) for t, v in groups.items()}


def _normalise_one(
    raw: str, rule_type: RuleType | None, region: str
) -> tuple[RuleType, str] | None:
    if rule_type is None:
        return detect(raw, region)
    value = for_type(rule_type, region)(raw)
    return (rule_type, value) if value else None


def _bad_values(bad: list[int], total: int, rule_type: RuleType | None) -> str:
    named = ", ".join(str(i) for i in bad[:_NAMED_POSITIONS])
    more = " …" if len(bad) > _NAMED_POSITIONS else ""
    what = "recognisable values" if rule_type is None else f"valid {rule_type.value} values"
    return f"{len(bad)} of {total} are not {what} (positions {named}{more})"


async def publish_change(
    options: KafkaOptions,
    topic: str,
    op: Op,
    tenant: str,
    groups: dict[RuleType, list[str]],
    *,
    region: str,
    source: str = SOURCE,
) -> AsyncIterator[Published]:
    """Create the topic if needed, then send each type's values in event-sized chunks."""
    await prepare_publishing(options, topic)
    with explained(options, Need("WRITE", "topic", topic)):
        async with RulePublisher(options, topic, region=region, source=source) as publisher:
            for rule_type, values in groups.items():
                for chunk in chunks(values):
                    meta = await publisher.publish(op, tenant, rule_type, chunk)
                    yield Published(op, tenant, rule_type, len(chunk), meta.partition, meta.offset)


def jobs_for(size: int, jobs: int | None) -> int:
    """Processes normalising a file: as asked, else every CPU for a large file, one otherwise."""
    if jobs:
        return jobs
    return os.cpu_count() or 1 if size >= PARALLEL_FROM else 1


async def import_file(
    options: KafkaOptions,
    topic: str,
    spec: ImportSpec,
    *,
    source: str = SOURCE,
    progress: Progress | None = None,
    jobs: int | None = None,
) -> ImportSummary:
    """Create the topic if needed, then stream the CSV into events (see rules/importer.py)."""
    await prepare_publishing(options, topic)
    workers = jobs_for(spec.path.stat().st_size, jobs)
    with explained(options, Need("WRITE", "topic", topic)):
        async with RulePublisher(
            options, topic, region=spec.region, source=source, linger_ms=20
        ) as publisher:
            return await import_csv(spec, publisher, progress, jobs=workers)
