"""Configuration in one place: a frozen dataclass, filled from flags and DENYPROXY_* env vars.

Every field is one flag (`--admin-listen`) and one variable (`DENYPROXY_ADMIN_LISTEN`); a flag
wins over the variable, the variable over the default. Nothing else reads the environment.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import Field, dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from proxy.setting_values import (
    DEFAULT_BINARY_TYPES,
    address,
    boolean,
    choice,
    media_types,
    optional,
    positive,
)
from proxy.setting_values import (
    paths as paths_value,
)
from proxy.setting_values import (
    region as region_value,
)
from proxy.setting_values import (
    upstream as upstream_value,
)
from proxy.setting_values import (
    workers as workers_value,
)
from proxy.tls import readable_ca_file
from proxy.upstream_slots import MAX_CONNECTIONS
from rules.model import DEFAULT_REGION

if TYPE_CHECKING:
    from rules.kafka import KafkaOptions

MiB = 1024 * 1024


class SettingsError(ValueError):
    """A bad setting; the message names it. The CLI prints it on one line and exits 2."""


def _setting(
    default: Any, parse: Callable[[str], Any], help: str, *, secret: bool = False
) -> Any:
    """A field with its parser and help; a `secret` one is never shown by repr (issue #10)."""
    return field(default=default, repr=not secret, metadata={"parse": parse, "help": help})


def _shown(f: Field[Any], value: Any) -> Any:
    """A setting as repr shows it: secrets masked, the password of a URL too."""
    if value is None or not isinstance(value, str):
        return value
    return _without_password(value) if f.repr else "***"


def _without_password(value: str) -> str:
    try:
        parts = urlsplit(value)
        password = parts.password
    except ValueError:  # not a URL we can read: show nothing of it rather than a secret
        return "***"
    if password is None:
        return value
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{parts.username or ''}:***@{host}").geturl()


@dataclass(frozen=True, slots=True, repr=False)
class Settings:
    upstream: str = _setting("https://api.openmart.ai", upstream_value, "upstream base URL")
    upstream_ca_file: str | None = _setting(
        None,
        optional(readable_ca_file),
        "CA bundle (PEM) trusted for an https upstream instead of the system's (always verified)",
    )
    listen: str = _setting("127.0.0.1:8080", address, "proxy listener HOST:PORT")
    admin_listen: str = _setting(
        "127.0.0.1:9901", address, "admin listener (/healthz /readyz /metrics)"
    )
    redis: str | None = _setting(None, optional(str), "Redis URL; unset = in-memory store")
    redis_cluster: bool = _setting(False, boolean, "the Redis URL names a Redis Cluster node")
    kafka: str | None = _setting(None, optional(str), "Kafka bootstrap servers; unset = none")
    topic: str = _setting("denyproxy.rules", str, "Kafka topic of rule events")
    group: str = _setting("denyproxy", str, "Kafka consumer group")
    consumer: bool = _setting(True, boolean, "serve: run the rule consumer in-process with --kafka")
    changelog: bool = _setting(
        False, boolean, "consumer with --redis: keep the compacted <topic>.changelog (rebuilds)"
    )
    policy: str = _setting("strip", choice("strip", "drop"), "strip values or drop records")
    phone_region: str = _setting(
        DEFAULT_REGION, region_value, "region for phones without a country code"
    )
    workers: int = _setting(1, workers_value, "worker processes (a number or auto)")
    event_loop: str = _setting(
        "asyncio", choice("auto", "uvloop", "asyncio"),
        "event loop of serve: asyncio, uvloop, or auto (uvloop when installed)",
    )
    connect_timeout: float = _setting(10.0, positive(float), "upstream connect timeout, s")
    upstream_timeout: float = _setting(120.0, positive(float), "upstream total timeout, s")
    upstream_max_connections: int = _setting(
        MAX_CONNECTIONS, positive(int), "upstream connections at once (in use and idle); more wait"
    )
    store_timeout: float = _setting(1.0, positive(float), "rule store timeout, s")
    store_cache: bool = _setting(
        True, boolean, "Redis store: answer repeated lookups from memory (Redis-tracked)"
    )
    max_request_body: int = _setting(16 * MiB, positive(int), "request body limit, bytes")
    max_filter_body: int = _setting(32 * MiB, positive(int), "decoded filtered-body limit, bytes")
    exempt_paths: tuple[str, ...] = _setting(
        (), paths_value, "comma-separated path prefixes forwarded unfiltered (trusted routes only)"
    )
    binary_types: tuple[str, ...] = _setting(
        DEFAULT_BINARY_TYPES, media_types,
        "comma-separated media types (type/sub or type/*) streamed unfiltered as binary",
    )
    shutdown_timeout: float = _setting(30.0, positive(float), "drain time on SIGTERM, s")
    max_rule_staleness: float | None = _setting(
        None, optional(positive(float)), "fail closed once the rule consumer stalled this long, s"
    )
    rule_wait_timeout: float = _setting(5.0, positive(float), "deny-rules API wait, s")
    forward_deny_rules: bool = _setting(False, boolean, "also send deny-rule calls upstream")
    validate_keys: bool = _setting(False, boolean, "check API keys upstream before rule calls")
    company_name_only_match: bool = _setting(
        False, boolean, "company rules also match a record by its name alone (over-blocks)"
    )
    company_preflight: bool = _setting(
        False, boolean, "refuse (422) batch submits whose tasks target a denied company"
    )
    init_store: bool = _setting(
        False, boolean, "serve --redis without Kafka: mark a brand-new, empty Redis initialised"
    )
    max_rules_per_key: int = _setting(1_000_000, positive(int), "rules one API key may hold")
    rule_writes_per_minute: int = _setting(
        100, positive(int), "deny-rules API writes per API key per minute"
    )
    kafka_security_protocol: str = _setting(
        "PLAINTEXT",
        choice("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"),
        "Kafka security protocol",
    )
    kafka_sasl_mechanism: str | None = _setting(
        None,
        optional(choice("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")),
        "Kafka SASL mechanism",
    )
    kafka_sasl_username: str | None = _setting(None, optional(str), "Kafka SASL user")
    kafka_sasl_password: str | None = _setting(
        None, optional(str), "Kafka SASL password", secret=True
    )
    kafka_ssl_cafile: str | None = _setting(None, optional(str), "CA file for Kafka TLS")
    admin_token: str | None = _setting(
        None, optional(str), "bearer token of the admin API (/admin/v1); unset = API off",
        secret=True,
    )
    admin_token_file: str | None = _setting(
        None, optional(str), "file holding the admin API's bearer token (instead of the token)"
    )
    log_level: str = _setting(
        "info", choice("debug", "info", "warning", "error"), "log level"
    )
    log_format: str = _setting("auto", choice("auto", "json", "text"), "log format")

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    def __repr__(self) -> str:
        shown = (f"{f.name}={_shown(f, getattr(self, f.name))!r}" for f in fields(self))
        return f"Settings({', '.join(shown)})"


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def env_var(name: str) -> str:
    return "DENYPROXY_" + name.upper()


def add_arguments(parser: argparse.ArgumentParser, names: Sequence[str] | None = None) -> None:
    """One flag per setting (all of them unless `names` picks some); values stay strings."""
    for f in fields(Settings):
        if names is not None and f.name not in names:
            continue
        if f.metadata["parse"] is boolean:  # --consumer / --no-consumer
            parser.add_argument(
                flag(f.name), dest=f.name, default=None, action=argparse.BooleanOptionalAction,
                help=f.metadata["help"],
            )
        else:
            parser.add_argument(flag(f.name), dest=f.name, default=None, help=f.metadata["help"])


def from_sources(args: Mapping[str, Any], env: Mapping[str, str]) -> Settings:
    """Flags over env vars over defaults; a value that does not parse names its setting."""
    values: dict[str, Any] = {}
    for f in fields(Settings):
        raw = args.get(f.name)
        source = flag(f.name)
        if isinstance(raw, bool):
            values[f.name] = raw
            continue
        if raw is None:
            raw, source = env.get(env_var(f.name)), env_var(f.name)
        if raw is None:
            continue
        try:
            values[f.name] = f.metadata["parse"](raw)
        except ValueError as exc:
            raise SettingsError(f"{source}={raw!r}: {exc}") from None
    return check(Settings(**values))


def check(settings: Settings) -> Settings:
    """Rules that involve more than one setting."""
    if settings.workers > 1 and settings.redis is None:
        raise SettingsError(
            "--workers > 1 needs --redis: each worker's in-memory store would hold its own rules"
        )
    if settings.kafka and not settings.consumer and settings.redis is None:
        raise SettingsError(
            "--no-consumer needs --redis: nothing would ever feed this proxy's in-memory rules"
        )
    if settings.kafka_security_protocol.startswith("SASL") and not settings.kafka_sasl_mechanism:
        raise SettingsError("--kafka-sasl-mechanism is required with a SASL protocol")
    return settings


KAFKA_SETTINGS = (
    "kafka",
    "topic",
    "kafka_security_protocol",
    "kafka_sasl_mechanism",
    "kafka_sasl_username",
    "kafka_sasl_password",
    "kafka_ssl_cafile",
)
"""The settings every Kafka-speaking command takes (`add_arguments(parser, names=...)`)."""


def kafka_options(settings: Settings) -> KafkaOptions:
    """The Kafka client options of these settings; SettingsError when they are incomplete."""
    from rules.kafka import KafkaOptions

    if not settings.kafka:
        raise SettingsError("--kafka (or DENYPROXY_KAFKA) is required")
    if settings.kafka_security_protocol.startswith("SASL") and not (
        settings.kafka_sasl_username and settings.kafka_sasl_password
    ):
        raise SettingsError(
            "--kafka-sasl-username and --kafka-sasl-password are required with a SASL protocol"
        )
    return KafkaOptions(
        bootstrap=settings.kafka,
        security_protocol=settings.kafka_security_protocol,
        sasl_mechanism=settings.kafka_sasl_mechanism,
        sasl_username=settings.kafka_sasl_username,
        sasl_password=settings.kafka_sasl_password,
        ssl_cafile=settings.kafka_ssl_cafile,
    )
