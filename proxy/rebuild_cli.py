"""`denyproxy rebuild`: the next generation of the Redis rule store, switched in atomically.

The proxies keep answering from the current generation (db 0) throughout: zero 503s. Needs a
single Redis (SWAPDB); on Redis Cluster see rules/EVENTS.md "Generations".
"""

from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING

from proxy import logs
from proxy.rules_cli import settings_of
from proxy.settings import SettingsError, add_arguments, kafka_options

if TYPE_CHECKING:
    from proxy.cli import Subcommands

REBUILD_SETTINGS = (
    "redis", "redis_cluster", "kafka", "topic", "phone_region", "kafka_security_protocol",
    "kafka_sasl_mechanism", "kafka_sasl_username", "kafka_sasl_password", "kafka_ssl_cafile",
    "log_level", "log_format",
)


def add_rebuild(subparsers: Subcommands) -> None:
    rebuild = subparsers.add_parser(
        "rebuild", help="rebuild the Redis rule store in the next generation, then switch to it"
    )
    add_arguments(rebuild, REBUILD_SETTINGS)
    rebuild.add_argument(
        "--rebuild-db", type=int, default=1, metavar="N",
        help="logical database the next generation is built in (emptied first; default 1)",
    )
    rebuild.add_argument(
        "--from-topic", action="store_true",
        help="ignore the changelog: replay the input topic from its beginning",
    )
    rebuild.add_argument(
        "--seed-changelog", action="store_true",
        help="write every rule to <topic>.changelog (starting a changelog; consumer stopped)",
    )
    rebuild.set_defaults(run=run_rebuild)


def run_rebuild(args: argparse.Namespace) -> int:
    from rules.consumer.rebuild import RebuildPlan, rebuild

    settings = settings_of(args)
    if not settings.kafka or not settings.redis:
        raise SettingsError("rebuild needs --kafka and --redis")
    if settings.redis_cluster:
        raise SettingsError(
            "rebuild: Redis Cluster has no SWAPDB; see rules/EVENTS.md \"Generations\""
        )
    if args.rebuild_db < 1:
        raise SettingsError("--rebuild-db must be another database than 0 (the serving one)")
    logs.configure(settings.log_level, settings.log_format)
    plan = RebuildPlan(
        kafka_options(settings), settings.topic, settings.redis, args.rebuild_db,
        settings.phone_region, from_changelog=not args.from_topic,
        seed_changelog=args.seed_changelog,
    )
    print(asyncio.run(rebuild(plan)))
    return 0
