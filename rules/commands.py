"""What `denyproxy rules add|remove|import` do, without the command line: scope, values, publish.

The CLI (proxy/cli.py) parses flags into Settings and KafkaOptions, calls these functions and
prints what they return. Values are never part of an error message: bad ones are named by
position (they may be emails and phones).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from rules.importer import ImportSpec, ImportSummary, import_csv
from rules.kafka import KafkaOptions
from rules.kafka_access import Need, explained, prepare_publishing
from rules.model import GLOBAL, ChangeMeta, Op, RuleType, chunks, is_tenant, tenant_of
from rules.normalize import classify
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


def scope_of(api_key: str | None, tenant: str | None, *, key_from: str = "--api-key") -> str:
    """The tenant id of an API key or `--tenant`; the global scope when neither is given.

    The key is trimmed (one read from a file ends in a newline; the proxy sees header values
    without surrounding white space), so it names the tenant its requests have.
    """
    if api_key is not None:
        if not api_key.strip():
            raise InvalidInputError(f"{key_from} must not be empty")
        return tenant_of(api_key.strip())
    if tenant is None:
        return GLOBAL
    scope = tenant.strip().lower()
    if scope == GLOBAL or not is_tenant(scope):
        raise InvalidInputError("--tenant must be 64 hex digits (the sha256 of the API key)")
    return scope


def read_api_key(path: Path) -> str:
    """The key in a file (`--api-key-file`), trimmed; the message never holds the file's text."""
    try:
        key = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise InvalidInputError(f"--api-key-file {path}: {why}") from None
    if not key:
        raise InvalidInputError(f"--api-key-file {path} is empty")
    return key


def normalise_all(
    values: Sequence[str],
    rule_type: RuleType | None,
    region: str,
    *,
    allow_freemail: bool = False,
) -> dict[RuleType, list[str]]:
    """Values by type (None: detect each one), normalised and deduplicated, order kept."""
    groups: dict[RuleType, list[str]] = {}
    bad: dict[int, str] = {}
    for i, raw in enumerate(values, start=1):
        found = classify(raw, rule_type, region, allow_freemail=allow_freemail)
        if isinstance(found, str):
            bad[i] = found
        else:
            groups.setdefault(found[0], []).append(found[1])
    if bad:
        raise InvalidInputError(_bad_values(bad, len(values), rule_type))
    return {t: list(dict.fromkeys(v)) for t, v in groups.items()}


def _bad_values(bad: dict[int, str], total: int, rule_type: RuleType | None) -> str:
    """How many are bad, their positions, and the reasons (never the values: PII)."""
    named = ", ".join(str(i) for i in list(bad)[:_NAMED_POSITIONS])
    more = " …" if len(bad) > _NAMED_POSITIONS else ""
    what = "recognisable values" if rule_type is None else f"valid {rule_type.value} values"
    reasons = "; ".join(dict.fromkeys(bad.values()))
    return f"{len(bad)} of {total} are not {what} (positions {named}{more}): {reasons}"


async def publish_change(
    options: KafkaOptions,
    topic: str,
    op: Op,
    tenant: str,
    groups: dict[RuleType, list[str]],
    *,
    region: str,
    source: str = SOURCE,
    meta: ChangeMeta | None = None,
) -> AsyncIterator[Published]:
    """Create the topic if needed, then send each type's values in event-sized chunks."""
    await prepare_publishing(options, topic)
    with explained(options, Need("WRITE", "topic", topic)):
        async with _publisher(options, topic, region, source, linger_ms=5) as publisher:
            for rule_type, values in groups.items():
                for chunk in chunks(values):  # normalised by normalise_all (free-mail choice)
                    sent = await publisher.send_normalised(op, tenant, rule_type, list(chunk), meta)
                    where = await sent
                    yield Published(
                        op, tenant, rule_type, len(chunk), where.partition, where.offset
                    )


def _publisher(
    options: KafkaOptions, topic: str, region: str, source: str, *, linger_ms: int
) -> RulePublisher:
    """The one place the CLI makes its publisher: the region it normalised with goes along.

    The publisher puts `region` (from --phone-region / DENYPROXY_PHONE_REGION) in every event
    it sends, so every consumer reads the values as they were read here (issue #17.3).
    """
    return RulePublisher(options, topic, region=region, source=source, linger_ms=linger_ms)


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
        async with _publisher(options, topic, spec.region, source, linger_ms=20) as publisher:
            return await import_csv(spec, publisher, progress, jobs=workers)
