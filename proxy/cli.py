"""`denyproxy serve | consume | rules …`: flags and env → Settings → run.

Exit codes: 0 done, 2 bad usage or configuration (one line naming the setting), 1 runtime
failure (Kafka unreachable, topic cannot be created). API keys, emails and phones are never
printed: scopes appear as a tenant-hash prefix, bad values by position or line number.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from proxy import heap, lists_cli, logs, rebuild_cli, rules_cli, server
from proxy.settings import (
    SettingsError,
    add_arguments,
)
from rules.kafka_access import KafkaAccessError

CONSUME_SETTINGS = (
    "admin_listen", "redis", "redis_cluster", "kafka", "topic", "group", "phone_region",
    "store_timeout", "changelog", "kafka_security_protocol", "kafka_sasl_mechanism",
    "kafka_sasl_username", "kafka_sasl_password", "kafka_ssl_cafile", "log_level", "log_format",
)


if TYPE_CHECKING:  # what `add_subparsers` returns; argparse has no public name for it
    Subcommands = argparse._SubParsersAction[argparse.ArgumentParser]


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="denyproxy", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the proxy (and, with --kafka, the rule consumer)")
    add_arguments(serve)
    serve.set_defaults(run=run_serve)
    consume = sub.add_parser("consume", help="run the Kafka → Redis rule consumer alone")
    add_arguments(consume, CONSUME_SETTINGS)
    consume.set_defaults(run=run_consume)
    doctor = sub.add_parser("doctor", help="check the upstream, Redis, Kafka and the clock")
    add_arguments(doctor)  # the same settings as serve
    doctor.set_defaults(run=run_doctor)
    rules_cli.add_rules(sub)
    lists_cli.add_lists(sub)
    _add_store(sub)
    rebuild_cli.add_rebuild(sub)
    return top


settings_of = rules_cli.settings_of


def run_serve(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    logs.configure(settings.log_level, settings.log_format)
    if settings.workers > 1:
        from proxy import workers

        return workers.run(settings)
    heap.settle()  # the process's collector: a library coroutine (tests run many) leaves it be
    server.run(settings, lambda: heap.collecting(server.serve(settings)))
    return 0


def run_doctor(args: argparse.Namespace) -> int:
    from proxy import doctor

    return doctor.main(settings_of(args))


def run_consume(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    if not settings.kafka or not settings.redis:
        raise SettingsError("consume needs --kafka and --redis")
    logs.configure(settings.log_level, settings.log_format)
    asyncio.run(server.consume(settings))
    return 0


def _add_store(subparsers: Subcommands) -> None:
    """`store init`: what an operator runs after a Redis without Kafka lost its rules."""
    store = subparsers.add_parser("store", help="operate the Redis rule store")
    cmds = store.add_subparsers(dest="store_command", required=True)
    init = cmds.add_parser(
        "init", help="report what a Redis rule store holds, then mark it initialised"
    )
    add_arguments(init, ("redis", "redis_cluster", "topic", "store_timeout", "log_level",
                         "log_format"))
    init.set_defaults(run=run_store_init)


def run_store_init(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    if not settings.redis:
        raise SettingsError("store init needs --redis")
    logs.configure(settings.log_level, settings.log_format)
    return asyncio.run(server.store_init(settings))


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.run(args))
    except SettingsError as exc:
        print(f"denyproxy: {exc}", file=sys.stderr)
        return 2
    except KafkaAccessError as exc:  # serve/consume: credentials or an ACL; one line, exit 1
        print(f"denyproxy: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
