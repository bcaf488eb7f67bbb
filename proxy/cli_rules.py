"""`denyproxy rules add|remove|import`: publish deny-rule events to Kafka.

Exit codes: 0 done, 2 bad usage or configuration (one line naming the setting), 1 runtime
failure (Kafka unreachable, topic cannot be created). API keys, emails and phones are never
printed: scopes appear as a tenant-hash prefix, bad values by position or line number.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from aiokafka.errors import KafkaError

from proxy.settings import (
    KAFKA_SETTINGS,
    Settings,
    SettingsError,
    add_arguments,
    from_sources,
    kafka_options,
)
from rules.events import InvalidEventError, chunks
from rules.importer import ImportFileError, ImportSpec, ImportSummary, Progress, import_csv
from rules.kafka import KafkaOptions, TopicSetupError, ensure_topic
from rules.model import GLOBAL, RuleType, is_tenant, tenant_of
from rules.normalize import detect, for_type
from rules.publisher import RulePublisher

_TYPES = [t.value for t in RuleType]
_SOURCE = "denyproxy-cli"
_PARALLEL_FROM = 4 * 1024 * 1024
"""Files from this size are normalised in worker processes (starting them costs ~0.5 s)."""


class UsageError(ValueError):
    """Bad command-line input; printed on one line, exit code 2."""


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add `rules` with its add, remove and import subcommands."""
    rules = subparsers.add_parser("rules", help="publish deny-rule events to Kafka")
    commands = rules.add_subparsers(dest="rules_command", metavar="COMMAND", required=True)
    for op in ("add", "remove"):
        parser = commands.add_parser(op, help=f"{op} values for one scope")
        _scope_and_kafka(parser)
        parser.add_argument("--type", dest="rule_type", required=True, choices=[*_TYPES, "auto"])
        parser.add_argument("values", nargs="+", metavar="VALUE")
        parser.set_defaults(run=run_change, op=op)
    parser = commands.add_parser("import", help="publish the values of a CSV file (streamed)")
    _scope_and_kafka(parser)
    parser.add_argument("file", metavar="FILE.csv", type=Path)
    parser.add_argument("--column", help="column name (header row); default: the first column")
    parser.add_argument("--type", dest="rule_type", default="auto", choices=[*_TYPES, "auto"])
    parser.add_argument("--remove", action="store_true", help="publish removals, not additions")
    parser.add_argument(
        "--rejected", type=Path, help="rejected-rows CSV (default: FILE.csv.rejected.csv)"
    )
    parser.add_argument(
        "--rejected-values",
        action="store_true",
        help="also write each rejected value to that file (it may hold emails and phones)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--jobs", type=int, help="processes normalising rows (default: CPUs; 1 for small files)"
    )
    parser.set_defaults(run=run_import)


def _scope_and_kafka(parser: argparse.ArgumentParser) -> None:
    scope = parser.add_mutually_exclusive_group(required=True)
    scope.add_argument("--api-key", help="the rules apply to this API key (only its hash is sent)")
    scope.add_argument("--tenant", help="the rules apply to this tenant id (sha256 hex of the key)")
    scope.add_argument("--global", dest="global_scope", action="store_true", help="every key")
    parser.add_argument("--source", default=_SOURCE, help="source field of the events")
    add_arguments(parser, names=[*KAFKA_SETTINGS, "phone_region"])


def run_change(args: argparse.Namespace) -> int:
    """`rules add|remove`: validate every value locally, then publish (chunked by 10,000)."""
    try:
        settings, options, tenant = _common(args)
        groups = _normalise_all(args.values, args.rule_type, settings.phone_region)
    except (SettingsError, UsageError) as exc:
        return _fail(exc, 2)
    return _run(_publish_change(args, settings, options, tenant, groups))


def run_import(args: argparse.Namespace) -> int:
    """`rules import`: stream the CSV, publish, print a summary (rejects go to a file)."""
    try:
        settings, options, tenant = _common(args)
        if not args.file.is_file():
            raise UsageError(f"{args.file}: no such file")
    except (SettingsError, UsageError) as exc:
        return _fail(exc, 2)
    spec = ImportSpec(
        path=args.file,
        tenant=tenant,
        op="remove" if args.remove else "add",
        rule_type=None if args.rule_type == "auto" else RuleType(args.rule_type),
        column=args.column,
        region=settings.phone_region,
        rejected_path=args.rejected,
        include_values=args.rejected_values,
    )
    return _run(_publish_import(args, settings, options, spec))


def _common(args: argparse.Namespace) -> tuple[Settings, KafkaOptions, str]:
    settings = from_sources(vars(args), os.environ)
    return settings, kafka_options(settings), _tenant(args)


def _tenant(args: argparse.Namespace) -> str:
    if args.global_scope:
        return GLOBAL
    if args.api_key is not None:
        if not args.api_key:
            raise UsageError("--api-key must not be empty")
        return tenant_of(args.api_key)
    tenant = args.tenant.strip().lower()
    if tenant == GLOBAL or not is_tenant(tenant):
        raise UsageError("--tenant must be 64 hex digits (the sha256 of the API key)")
    return str(tenant)


def _normalise_all(values: Sequence[str], kind: str, region: str) -> dict[RuleType, list[str]]:
    """Values by type, normalised; UsageError naming bad ones by position (never by content)."""
    groups: dict[RuleType, list[str]] = {}
    bad: list[int] = []
    for i, raw in enumerate(values, start=1):
        found = _normalise_one(raw, kind, region)
        if found is None:
            bad.append(i)
        else:
            groups.setdefault(found[0], []).append(found[1])
    if bad:
        named = ", ".join(str(i) for i in bad[:10]) + (" …" if len(bad) > 10 else "")
        what = "recognisable values" if kind == "auto" else f"valid {kind} values"
        raise UsageError(f"{len(bad)} of {len(values)} are not {what} (positions {named})")
    return {t: list(dict.fromkeys(v)) for t, v in groups.items()}


def _normalise_one(raw: str, kind: str, region: str) -> tuple[RuleType, str] | None:
    if kind == "auto":
        return detect(raw, region)
    value = for_type(RuleType(kind), region)(raw)
    return (RuleType(kind), value) if value else None


async def _publish_change(
    args: argparse.Namespace,
    settings: Settings,
    options: KafkaOptions,
    tenant: str,
    groups: dict[RuleType, list[str]],
) -> int:
    await ensure_topic(options, settings.topic)
    async with RulePublisher(
        options, settings.topic, region=settings.phone_region, source=args.source
    ) as publisher:
        for rule_type, values in groups.items():
            for chunk in chunks(values):
                meta = await publisher.publish(args.op, tenant, rule_type, chunk)
                print(
                    f"published {args.op} of {len(chunk)} {rule_type.value} value(s) for "
                    f"{_scope(tenant)} to {settings.topic} partition {meta.partition} "
                    f"offset {meta.offset}"
                )
    return 0


async def _publish_import(
    args: argparse.Namespace, settings: Settings, options: KafkaOptions, spec: ImportSpec
) -> int:
    await ensure_topic(options, settings.topic)
    size = spec.path.stat().st_size
    progress = None if args.no_progress else Progress(size)
    jobs = args.jobs or (os.cpu_count() or 1 if size >= _PARALLEL_FROM else 1)
    async with RulePublisher(
        options, settings.topic, region=settings.phone_region, source=args.source, linger_ms=20
    ) as publisher:
        summary = await import_csv(spec, publisher, progress, jobs=jobs)
    print(format_summary(spec, summary))
    return 0


def format_summary(spec: ImportSpec, summary: ImportSummary) -> str:
    """The end-of-import report: counts only, never values."""
    types = ", ".join(f"{t.value} {n:,}" for t, n in summary.by_type.items() if n)
    lines = [
        f"imported {spec.path} for {_scope(spec.tenant)}: {summary.rows:,} rows in "
        f"{summary.seconds:.1f}s ({summary.rows_per_second:,.0f} rows/s)"
        + ("; header row skipped" if summary.header else ""),
        f"  published: {summary.published:,} values in {summary.events:,} {spec.op} events"
        + (f" ({types})" if types else ""),
        f"  rejected:  {summary.rejected:,} rows"
        + (f" -> {summary.rejected_path} (line numbers and reasons)" if summary.rejected else ""),
    ]
    for reason, count in sorted(summary.reasons.items(), key=lambda kv: -kv[1]):
        lines.append(f"    {count:>12,}  {reason}")
    return "\n".join(lines)


def _scope(tenant: str) -> str:
    return "the global scope" if tenant == GLOBAL else f"tenant {tenant[:12]}…"


def _run(work: object) -> int:
    """Run the async part; Kafka and I/O failures are one line and exit code 1."""
    try:
        return asyncio.run(work)  # type: ignore[arg-type]
    except (ImportFileError, InvalidEventError) as exc:
        return _fail(exc, 2)
    except (KafkaError, TopicSetupError, OSError) as exc:
        return _fail(exc, 1)


def _fail(exc: BaseException, code: int) -> int:
    kind = "error" if code == 2 else "failed"
    print(f"denyproxy rules: {kind}: {str(exc) or type(exc).__name__}", file=sys.stderr)
    return code
