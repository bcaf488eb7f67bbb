"""`denyproxy serve | consume | rules …`: flags and env → Settings → run."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

from proxy import logs, server
from proxy.settings import Settings, SettingsError, add_arguments, from_sources

CONSUME_SETTINGS = (
    "admin_listen", "redis", "redis_cluster", "kafka", "topic", "group", "phone_region",
    "store_timeout", "kafka_security_protocol", "kafka_sasl_mechanism", "kafka_sasl_username",
    "kafka_sasl_password", "kafka_ssl_cafile", "log_level", "log_format",
)


def parser() -> argparse.ArgumentParser:
    from proxy import cli_rules

    top = argparse.ArgumentParser(prog="denyproxy", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the proxy (and, with --kafka, the rule consumer)")
    add_arguments(serve)
    serve.set_defaults(run=run_serve)
    consume = sub.add_parser("consume", help="run the Kafka → Redis rule consumer alone")
    add_arguments(consume, CONSUME_SETTINGS)
    consume.set_defaults(run=run_consume)
    cli_rules.register(sub)
    return top


def settings_of(args: argparse.Namespace) -> Settings:
    return from_sources(vars(args), os.environ)


def run_serve(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    logs.configure(settings.log_level, settings.log_format)
    if settings.workers > 1:
        from proxy import workers

        return workers.run(settings)
    asyncio.run(server.serve(settings))
    return 0


def run_consume(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    if not settings.kafka or not settings.redis:
        raise SettingsError("consume needs --kafka and --redis")
    logs.configure(settings.log_level, settings.log_format)
    asyncio.run(server.consume(settings))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.run(args))
    except SettingsError as exc:
        print(f"denyproxy: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
