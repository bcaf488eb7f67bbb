"""Configuration in one place: a frozen dataclass, filled from flags and DENYPROXY_* env vars.

Every field is one flag (`--admin-listen`) and one variable (`DENYPROXY_ADMIN_LISTEN`); a flag
wins over the variable, the variable over the default. Nothing else reads the environment.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import Field, dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from proxy.tls import readable_ca_file
from rules.model import DEFAULT_REGION

if TYPE_CHECKING:
    from rules.kafka import KafkaOptions

MiB = 1024 * 1024


class SettingsError(ValueError):
    """A bad setting; the message names it. The CLI prints it on one line and exits 2."""


def _address(value: str) -> str:
    _host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError("expected HOST:PORT")
    return value


def _upstream(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("expected an http(s) URL")
    if parts.query or parts.fragment:
        raise ValueError("must not carry a query or fragment")
    return value.rstrip("/")


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _positive(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(value: str) -> Any:
        number = kind(value)
        if not math.isfinite(number):  # float("nan") <= 0 is False: nan/inf would slip through
            raise ValueError("must be a finite number")
        if number <= 0:
            raise ValueError("must be positive")
        return number

    return parse


def _choice(*options: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if value not in options:
            raise ValueError(f"expected one of {', '.join(options)}")
        return value

    return parse


def _workers(value: str) -> int:
    return os.cpu_count() or 1 if value == "auto" else _positive(int)(value)


def _region(value: str) -> str:
    import phonenumbers

    region = value.upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError("unknown phone region")
    return region


def _paths(value: str) -> tuple[str, ...]:
    paths = tuple(p.strip() for p in value.split(",") if p.strip())
    if not all(p.startswith("/") for p in paths):
        raise ValueError("paths must start with /")
    return paths


DEFAULT_BINARY_TYPES: tuple[str, ...] = (
    "image/*", "audio/*", "video/*", "font/*", "application/octet-stream", "application/pdf",
    "application/zip", "application/gzip", "application/x-gzip", "application/x-tar",
    "application/x-7z-compressed", "application/x-bzip2", "application/x-xz", "application/zstd",
    "application/vnd.rar", "application/x-rar-compressed",
)
"""Streamed untouched, never filtered (proxy/media.py): types that are clearly not text."""


def _media_types(value: str) -> tuple[str, ...]:
    """A comma list of `type/subtype` or `type/*`, lowercased."""
    entries = tuple(e.strip().lower() for e in value.split(",") if e.strip())
    for entry in entries:
        top, slash, sub = entry.partition("/")
        if not slash or not top or not sub or top == "*" or ("*" in sub and sub != "*"):
            raise ValueError(f"{entry!r} is not type/subtype or type/*")
    return entries


def _optional(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    return lambda value: parse(value) if value else None


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
    upstream: str = _setting("https://api.openmart.ai", _upstream, "upstream base URL")
    upstream_ca_file: str | None = _setting(
        None,
        _optional(readable_ca_file),
        "CA bundle (PEM) trusted for an https upstream instead of the system's (always verified)",
    )
    listen: str = _setting("127.0.0.1:8080", _address, "proxy listener HOST:PORT")
    admin_listen: str = _setting(
        "127.0.0.1:9901", _address, "admin listener (/healthz /readyz /metrics)"
    )
    redis: str | None = _setting(None, _optional(str), "Redis URL; unset = in-memory store")
    redis_cluster: bool = _setting(False, _bool, "the Redis URL names a Redis Cluster node")
    kafka: str | None = _setting(None, _optional(str), "Kafka bootstrap servers; unset = none")
    topic: str = _setting("denyproxy.rules", str, "Kafka topic of rule events")
    group: str = _setting("denyproxy", str, "Kafka consumer group")
    consumer: bool = _setting(True, _bool, "serve: run the rule consumer in-process with --kafka")
    policy: str = _setting("strip", _choice("strip", "drop"), "strip values or drop records")
    phone_region: str = _setting(
        DEFAULT_REGION, _region, "region for phones without a country code"
    )
    workers: int = _setting(1, _workers, "worker processes (a number or auto)")
    connect_timeout: float = _setting(10.0, _positive(float), "upstream connect timeout, s")
    upstream_timeout: float = _setting(120.0, _positive(float), "upstream total timeout, s")
    store_timeout: float = _setting(1.0, _positive(float), "rule store timeout, s")
    max_request_body: int = _setting(16 * MiB, _positive(int), "request body limit, bytes")
    max_filter_body: int = _setting(32 * MiB, _positive(int), "decoded filtered-body limit, bytes")
    exempt_paths: tuple[str, ...] = _setting(
        (), _paths, "comma-separated path prefixes forwarded unfiltered (trusted routes only)"
    )
    binary_types: tuple[str, ...] = _setting(
        DEFAULT_BINARY_TYPES, _media_types,
        "comma-separated media types (type/sub or type/*) streamed unfiltered as binary",
    )
    shutdown_timeout: float = _setting(30.0, _positive(float), "drain time on SIGTERM, s")
    max_rule_staleness: float | None = _setting(
        None, _optional(_positive(float)), "fail closed once the rule consumer stalled this long, s"
    )
    rule_wait_timeout: float = _setting(5.0, _positive(float), "deny-rules API wait, s")
    forward_deny_rules: bool = _setting(False, _bool, "also send deny-rule calls upstream")
    validate_keys: bool = _setting(False, _bool, "check API keys upstream before rule calls")
    init_store: bool = _setting(
        False, _bool, "serve --redis without Kafka: mark a brand-new, empty Redis initialised"
    )
    max_rules_per_key: int = _setting(1_000_000, _positive(int), "rules one API key may hold")
    rule_writes_per_minute: int = _setting(
        100, _positive(int), "deny-rules API writes per API key per minute"
    )
    kafka_security_protocol: str = _setting(
        "PLAINTEXT",
        _choice("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"),
        "Kafka security protocol",
    )
    kafka_sasl_mechanism: str | None = _setting(
        None,
        _optional(_choice("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")),
        "Kafka SASL mechanism",
    )
    kafka_sasl_username: str | None = _setting(None, _optional(str), "Kafka SASL user")
    kafka_sasl_password: str | None = _setting(
        None, _optional(str), "Kafka SASL password", secret=True
    )
    kafka_ssl_cafile: str | None = _setting(None, _optional(str), "CA file for Kafka TLS")
    log_level: str = _setting(
        "info", _choice("debug", "info", "warning", "error"), "log level"
    )
    log_format: str = _setting("auto", _choice("auto", "json", "text"), "log format")

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
        if f.metadata["parse"] is _bool:  # --consumer / --no-consumer
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
