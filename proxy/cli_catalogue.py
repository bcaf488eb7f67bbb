"""`denyproxy rules list|export`: a key's catalogue read straight from Redis (no proxy needed).

Output goes to stdout (it holds the key's identifiers: redirect it to a file, do not log it);
only the scope's short hash goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from proxy.catalogue_export import encode_records
from proxy.settings import SettingsError, add_arguments, from_sources
from rules.catalogue.record import MAX_LIMIT, ListQuery
from rules.catalogue.redis import RedisCatalogue
from rules.model import RuleType
from rules.store import RedisStore, StoreUnavailableError

if TYPE_CHECKING:
    from proxy.rules_cli import Subcommands

_SORTS = ("created_at", "value", "type")


def add_catalogue(cmds: Subcommands) -> None:
    listing = cmds.add_parser("list", help="a page of a key's rule catalogue (JSON) from Redis")
    _common(listing)
    listing.add_argument("--search", help="case-insensitive substring of the value")
    listing.add_argument("--sort-by", default="created_at", choices=_SORTS)
    listing.add_argument("--sort-order", default="desc", choices=("asc", "desc"))
    listing.add_argument("--limit", type=int, default=50, help=f"1 to {MAX_LIMIT}")
    listing.add_argument("--offset", type=int, default=0)
    listing.set_defaults(run=run_list)
    export = cmds.add_parser("export", help="a key's whole catalogue (csv or ndjson) from Redis")
    _common(export)
    export.add_argument("--format", dest="form", default="ndjson", choices=("csv", "ndjson"))
    export.set_defaults(run=run_export)


def _common(parser: argparse.ArgumentParser) -> None:
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("--api-key-file", type=Path, metavar="PATH",
                       help="the key whose rules to read (or set DENYPROXY_API_KEY)")
    scope.add_argument("--tenant", help="tenant id (sha256 hex of the key)")
    scope.add_argument("--global", dest="global_scope", action="store_true")
    parser.add_argument("--type", dest="rule_type", choices=[t.value for t in RuleType])
    parser.set_defaults(api_key=None)
    add_arguments(parser, ("redis", "redis_cluster", "store_timeout"))


def run_list(args: argparse.Namespace) -> int:
    if not 1 <= args.limit <= MAX_LIMIT or args.offset < 0:
        raise SettingsError(f"--limit must be 1 to {MAX_LIMIT} and --offset at least 0")
    kind = RuleType(args.rule_type) if args.rule_type else None
    query = ListQuery(kind, args.search, args.sort_by, args.sort_order == "desc", args.limit,
                      args.offset)

    async def work(catalogue: RedisCatalogue, tenant: str) -> None:
        page = await catalogue.page(tenant, query)
        body = {"data": [r.as_json() for r in page.records], "total": page.total}
        sys.stdout.buffer.write(orjson.dumps(body, option=orjson.OPT_INDENT_2) + b"\n")

    return _with_catalogue(args, work)


def run_export(args: argparse.Namespace) -> int:
    kind = RuleType(args.rule_type) if args.rule_type else None

    async def work(catalogue: RedisCatalogue, tenant: str) -> None:
        out = sys.stdout.buffer
        if args.form == "csv":
            out.write(encode_records([], "csv", header=True))
        async for chunk in catalogue.export(tenant, kind):
            out.write(encode_records(chunk, args.form))
        out.flush()

    return _with_catalogue(args, work)


def _with_catalogue(args: argparse.Namespace, work: Any) -> int:
    """Resolve the scope and the store, refuse an incomplete store, run `work`."""
    from proxy.rules_cli import tenant_of_args  # the one scope resolver (it imports this module)

    settings = from_sources(vars(args), os.environ)
    if not settings.redis:
        raise SettingsError("rules list/export need --redis")
    tenant = tenant_of_args(args, os.environ)

    async def run() -> int:
        store = RedisStore.from_url(settings.redis or "", timeout=settings.store_timeout,
                                    cluster=settings.redis_cluster)
        try:
            if not await store.ready():
                print("denyproxy rules: failed: store incomplete or unreachable", file=sys.stderr)
                return 1
            await work(RedisCatalogue(store.client), tenant)
            return 0
        except StoreUnavailableError as exc:
            print(f"denyproxy rules: failed: {exc}", file=sys.stderr)
            return 1
        finally:
            await store.aclose()

    return asyncio.run(run())
