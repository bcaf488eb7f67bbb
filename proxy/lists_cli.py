"""`denyproxy lists …`: named lists from the command line, published to Kafka (--kafka) or,
without Kafka, written straight into Redis (--redis); listing reads Redis."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import TYPE_CHECKING

from proxy.admin_lists import direct_write_allowed
from proxy.rules_cli import settings_of
from proxy.settings import KAFKA_SETTINGS, Settings, SettingsError, add_arguments, kafka_options
from rules.lists.entries import parse_entries
from rules.model import Change, ListChange, RuleChange, chunks, tenant_of
from rules.scopes import check_list_id, list_scope, new_list_id
from rules.store import RedisStore, StoreUnavailableError

if TYPE_CHECKING:
    from proxy.rules_cli import Subcommands

_SETTINGS = (*KAFKA_SETTINGS, "redis", "redis_cluster", "store_timeout", "phone_region")


def add_lists(subparsers: Subcommands) -> None:
    lists = subparsers.add_parser("lists", help="create, fill and assign named lists")
    cmds = lists.add_subparsers(dest="lists_command", metavar="COMMAND", required=True)
    create = _command(cmds, "create", "create a list; prints its id")
    create.add_argument("name")
    create.add_argument("--description")
    _command(cmds, "list", "print every list (needs --redis)")
    add = _command(cmds, "add", "add entries (type detected: email, phone, domain, LinkedIn)")
    add.add_argument("list_id")
    add.add_argument("values", nargs="+", metavar="VALUE")
    assign = _command(cmds, "assign", "assign a list to exactly these keys (replace-all)")
    assign.add_argument("list_id")
    assign.add_argument("--api-key", action="append", default=[], dest="api_keys")
    assign.add_argument("--tenant", action="append", default=[], dest="tenants")


def _command(cmds: Subcommands, name: str, help: str) -> argparse.ArgumentParser:
    parser = cmds.add_parser(name, help=help)
    add_arguments(parser, _SETTINGS)
    parser.set_defaults(run=run_lists)
    return parser


def run_lists(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    if not settings.kafka and not settings.redis:
        raise SettingsError("lists needs --kafka (publish) or --redis (write directly)")
    return asyncio.run(_run(args, settings))


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    if args.lists_command == "list":
        return await _print_lists(settings)
    changes, said = _changes(args, settings)
    try:
        await _submit(settings, changes)
    except StoreUnavailableError as exc:  # unreachable, not initialised, or kept by Kafka
        print(f"denyproxy lists: {exc}", file=sys.stderr)
        return 1
    print(said)
    return 0


def _changes(args: argparse.Namespace, settings: Settings) -> tuple[list[Change], str]:
    now = time.time()
    if args.lists_command == "create":
        list_id = new_list_id()
        return [ListChange("create", list_id, now, args.name, args.description)], list_id
    list_id = _list_id(args.list_id)
    if args.lists_command == "assign":
        tenants = sorted({tenant_of(k) for k in args.api_keys} | set(args.tenants))
        return [ListChange("assign", list_id, now, tenants=tuple(tenants))], (
            f"assigned to {len(tenants)} tenants")
    entries = parse_entries(args.values, settings.phone_region)
    for index, why in entries.failed:
        print(f"value {index + 1}: {why}")
    changes: list[Change] = [
        RuleChange("add", list_scope(list_id), t, tuple(part))
        for t, values in entries.by_type.items() for part in chunks(values)
    ]
    return changes, f"{sum(len(c.values) for c in changes)} entries sent"


def _list_id(text: str) -> str:
    try:
        return check_list_id(text)
    except ValueError as exc:
        raise SettingsError(str(exc)) from None


async def _submit(settings: Settings, changes: list[Change]) -> None:
    if settings.kafka:
        from rules.publisher import RulePublisher

        async with RulePublisher(kafka_options(settings), settings.topic,
                                 region=settings.phone_region, source="cli") as publisher:
            for change in changes:
                if isinstance(change, ListChange):
                    await (await publisher.send_list(change))
                else:
                    await (await publisher.send_normalised(
                        change.op, change.tenant, change.type, change.values))
        return
    store = _store(settings)
    try:
        await direct_write_allowed(store)  # never into a store a Kafka consumer rebuilds
        await store.apply(changes)
    finally:
        await store.aclose()


async def _print_lists(settings: Settings) -> int:
    store = _store(settings)
    try:
        for info in await store.lists.lists():
            print(f"{info.id}  {info.entry_count:>9}  {info.name}")
    finally:
        await store.aclose()
    return 0


def _store(settings: Settings) -> RedisStore:
    if not settings.redis:
        raise SettingsError("this needs --redis")
    return RedisStore.from_url(settings.redis, timeout=settings.store_timeout,
                               cluster=settings.redis_cluster)
