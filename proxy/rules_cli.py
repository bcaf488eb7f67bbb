"""The `rules` subcommands of the CLI: parse the scope, key and values, publish, print a summary.

What is published and how lives in rules/commands.py; this module only reads flags and prints.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Coroutine, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiokafka.errors import KafkaError

from proxy.cli_catalogue import add_catalogue
from proxy.settings import (
    KAFKA_SETTINGS,
    Settings,
    SettingsError,
    add_arguments,
    from_sources,
    kafka_options,
)
from rules import commands
from rules.catalogue.meta import checked_meta
from rules.events import InvalidEventError
from rules.importer import ImportFileError, ImportSpec, ImportSummary
from rules.kafka import TopicSetupError
from rules.model import GLOBAL, ChangeMeta, RuleType
from rules.progress import Progress

_TYPES = [t.value for t in RuleType]

if TYPE_CHECKING:  # what `add_subparsers` returns; argparse has no public name for it
    Subcommands = argparse._SubParsersAction[argparse.ArgumentParser]


def settings_of(args: argparse.Namespace) -> Settings:
    """Flags over DENYPROXY_* variables over defaults, as for every subcommand."""
    return from_sources(vars(args), os.environ)


def add_rules(subparsers: Subcommands) -> None:
    """`rules` with its add, remove and import subcommands."""
    rules = subparsers.add_parser("rules", help="publish deny-rule events to Kafka")
    cmds = rules.add_subparsers(dest="rules_command", metavar="COMMAND", required=True)
    for op in ("add", "remove"):
        change = cmds.add_parser(op, help=f"{op} values for one scope")
        _scope_and_kafka(change)
        change.add_argument("--type", dest="rule_type", required=True, choices=[*_TYPES, "auto"])
        change.add_argument("values", nargs="+", metavar="VALUE")
        if op == "add":
            _add_record_fields(change)
        change.set_defaults(run=run_change, op=op)
    _add_import(cmds.add_parser("import", help="publish the values of a CSV file (streamed)"))
    add_catalogue(cmds)


def _add_import(parser: argparse.ArgumentParser) -> None:
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
    _add_record_fields(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--jobs", type=int, help="processes normalising rows (default: CPUs; 1 for small files)"
    )
    parser.set_defaults(run=run_import)


def _add_record_fields(parser: argparse.ArgumentParser) -> None:
    """What the catalogue records beside each added rule, as the rules API's fields."""
    parser.add_argument("--reason", help="why (at most 500 characters), kept in each record")
    expiry = parser.add_mutually_exclusive_group()
    expiry.add_argument("--expires-at", metavar="RFC3339", help="when the rules stop suppressing")
    expiry.add_argument("--ttl-seconds", type=int, metavar="N", help="expire N seconds from now")


def meta_of(args: argparse.Namespace) -> ChangeMeta | None:
    """The v2 fields of the events (None: a plain v1-like add, or a removal)."""
    reason = getattr(args, "reason", None)
    expires_at, ttl = getattr(args, "expires_at", None), getattr(args, "ttl_seconds", None)
    if reason is None and expires_at is None and ttl is None:
        return None
    if getattr(args, "remove", False):
        raise commands.InvalidInputError("--reason, --expires-at and --ttl-seconds are for adds")
    try:
        return checked_meta(args.source, reason, expires_at, ttl)
    except ValueError as exc:
        raise commands.InvalidInputError(str(exc)) from None


API_KEY_ENV = "DENYPROXY_API_KEY"
"""The API key whose rules these are, when no scope flag is given (keeps it out of argv)."""


def _scope_and_kafka(parser: argparse.ArgumentParser) -> None:
    """Whose rules (one of the scope flags, else DENYPROXY_API_KEY), Kafka and the region."""
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "--api-key-file",
        type=Path,
        metavar="PATH",
        help=f"the rules apply to the API key in this file (or set {API_KEY_ENV}); "
        "trimmed, only its hash is sent",
    )
    scope.add_argument(
        "--api-key",
        help="the API key itself: visible to other users in the process list, prefer "
        f"--api-key-file or {API_KEY_ENV}",
    )
    scope.add_argument("--tenant", help="the rules apply to this tenant id (sha256 hex of the key)")
    scope.add_argument("--global", dest="global_scope", action="store_true", help="every key")
    parser.add_argument("--source", default=commands.SOURCE, help="source field of the events")
    parser.add_argument(
        "--allow-freemail-domains",
        dest="allow_freemail",
        action="store_true",
        help="accept domain rules on free-mail providers (gmail.com: every person using it)",
    )
    add_arguments(parser, names=[*KAFKA_SETTINGS, "phone_region"])


def tenant_of_args(args: argparse.Namespace, environ: Mapping[str, str]) -> str:
    """The scope flags (or DENYPROXY_API_KEY) → tenant id; the key itself is never printed."""
    if args.api_key is not None:
        tenant = commands.scope_of(args.api_key, None)
        _warn(f"--api-key on the command line is visible to other users; use --api-key-file "
              f"or {API_KEY_ENV}")
        return tenant
    if args.api_key_file is not None:
        return commands.scope_of(commands.read_api_key(args.api_key_file), None)
    if args.tenant is not None or args.global_scope:
        return commands.scope_of(None, args.tenant)
    if API_KEY_ENV in environ:
        return commands.scope_of(environ[API_KEY_ENV], None, key_from=API_KEY_ENV)
    raise commands.InvalidInputError(
        f"whose rules? give --api-key-file, {API_KEY_ENV}, --tenant or --global"
    )


def _rule_type(name: str) -> RuleType | None:
    return None if name == "auto" else RuleType(name)


def run_change(args: argparse.Namespace) -> int:
    """`rules add|remove`: validate every value locally, then publish in event-sized chunks."""
    try:
        settings = settings_of(args)
        options = kafka_options(settings)
        tenant = tenant_of_args(args, os.environ)
        groups = commands.normalise_all(
            args.values,
            _rule_type(args.rule_type),
            settings.phone_region,
            allow_freemail=args.allow_freemail,
        )
        meta = meta_of(args)
    except (SettingsError, commands.InvalidInputError) as exc:
        return _fail(exc, 2)

    async def publish() -> int:
        sends = commands.publish_change(
            options,
            settings.topic,
            args.op,
            tenant,
            groups,
            region=settings.phone_region,
            source=args.source,
            meta=meta,
        )
        async for sent in sends:
            print(
                f"published {sent.op} of {sent.count} {sent.rule_type.value} value(s) for "
                f"{_scope(tenant)} to {settings.topic} partition {sent.partition} "
                f"offset {sent.offset}"
            )
        return 0

    return _run(publish())


def run_import(args: argparse.Namespace) -> int:
    """`rules import`: stream the CSV, publish, print a summary (rejects go to a file)."""
    try:
        settings = settings_of(args)
        options = kafka_options(settings)
        spec = _import_spec(args, settings)
    except (SettingsError, commands.InvalidInputError) as exc:
        return _fail(exc, 2)

    async def publish() -> int:
        progress = None if args.no_progress else Progress(spec.path.stat().st_size)
        summary = await commands.import_file(
            options, settings.topic, spec, source=args.source, progress=progress, jobs=args.jobs
        )
        print(format_summary(spec, summary))
        return 0

    return _run(publish())


def _import_spec(args: argparse.Namespace, settings: Settings) -> ImportSpec:
    tenant = tenant_of_args(args, os.environ)
    if not args.file.is_file():
        raise commands.InvalidInputError(f"{args.file}: no such file")
    return ImportSpec(
        path=args.file,
        tenant=tenant,
        op="remove" if args.remove else "add",
        rule_type=_rule_type(args.rule_type),
        column=args.column,
        region=settings.phone_region,
        allow_freemail=args.allow_freemail,
        rejected_path=args.rejected,
        include_values=args.rejected_values,
        meta=meta_of(args),
    )


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


def _run(work: Coroutine[Any, Any, int]) -> int:
    """Run the async part; Kafka and I/O failures are one line and exit code 1."""
    try:
        return asyncio.run(work)
    except (ImportFileError, InvalidEventError) as exc:
        return _fail(exc, 2)
    except (KafkaError, TopicSetupError, OSError) as exc:
        return _fail(exc, 1)


def _warn(message: str) -> None:
    print(f"denyproxy rules: warning: {message}", file=sys.stderr)


def _fail(exc: BaseException, code: int) -> int:
    kind = "error" if code == 2 else "failed"
    print(f"denyproxy rules: {kind}: {str(exc) or type(exc).__name__}", file=sys.stderr)
    return code
