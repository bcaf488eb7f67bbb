"""proxy/settings.py: flag over variable over default, and every bad value named on one line."""

from __future__ import annotations

import argparse
from dataclasses import fields

import pytest

from proxy import cli
from proxy.settings import (
    Settings,
    SettingsError,
    add_arguments,
    env_var,
    flag,
    from_sources,
    kafka_options,
)


def parse(argv: list[str], env: dict[str, str] | None = None) -> Settings:
    """What `denyproxy serve ARGV` would run with, given exactly `env` as its environment."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return from_sources(vars(parser.parse_args(argv)), env or {})


def test_defaults_without_flags_or_variables() -> None:
    assert parse([]) == Settings()
    assert Settings().store_timeout == 1.0 and Settings().phone_region == "US"


def test_variable_beats_default_and_flag_beats_variable() -> None:
    env = {"DENYPROXY_STORE_TIMEOUT": "2.5", "DENYPROXY_POLICY": "drop"}
    assert parse([], env).store_timeout == 2.5
    assert parse([], env).policy == "drop"
    assert parse(["--store-timeout", "0.25"], env).store_timeout == 0.25
    assert parse(["--policy", "strip"], env).policy == "strip"


def test_boolean_flag_beats_variable_both_ways() -> None:
    assert parse([], {"DENYPROXY_CONSUMER": "false"}).consumer is False
    assert parse(["--consumer"], {"DENYPROXY_CONSUMER": "false"}).consumer is True
    assert parse(["--no-consumer"], {"DENYPROXY_CONSUMER": "true"}).consumer is False


@pytest.mark.parametrize("text", ["1", "true", "TRUE", "yes", "on", " True "])
def test_true_spellings(text: str) -> None:
    assert parse([], {"DENYPROXY_VALIDATE_KEYS": text}).validate_keys is True


def test_every_setting_has_one_flag_and_one_variable() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    options = {o for action in parser._actions for o in action.option_strings}
    for f in fields(Settings):
        assert flag(f.name) in options
        assert env_var(f.name) == "DENYPROXY_" + f.name.upper()


def test_values_are_parsed_to_their_types() -> None:
    s = parse([], {
        "DENYPROXY_EXEMPT_PATHS": "/a, /b/c,,", "DENYPROXY_PHONE_REGION": "gb",
        "DENYPROXY_MAX_REQUEST_BODY": "1024", "DENYPROXY_UPSTREAM": "http://up.example:81/",
    })
    assert s.exempt_paths == ("/a", "/b/c")
    assert s.phone_region == "GB"
    assert s.max_request_body == 1024
    assert s.upstream == "http://up.example:81"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("STORE_TIMEOUT", "nan"),
        ("STORE_TIMEOUT", "NaN"),
        ("STORE_TIMEOUT", "inf"),
        ("UPSTREAM_TIMEOUT", "-inf"),
        ("CONNECT_TIMEOUT", "0"),
        ("SHUTDOWN_TIMEOUT", "-1"),
        ("RULE_WAIT_TIMEOUT", "soon"),
        ("MAX_REQUEST_BODY", "1.5"),
        ("MAX_FILTER_BODY", "0"),
        ("WORKERS", "0"),
        ("LISTEN", "8080"),
        ("ADMIN_LISTEN", "host:99999"),
        ("UPSTREAM", "https://api.openmart.ai/?x=1"),
        ("UPSTREAM", "api.openmart.ai"),
        ("POLICY", "Strip"),
        ("PHONE_REGION", "ZZ"),
        ("CONSUMER", "maybe"),
        ("EXEMPT_PATHS", "api/v1"),
        ("KAFKA_SECURITY_PROTOCOL", "TLS"),
        ("KAFKA_SASL_MECHANISM", "GSSAPI"),
        ("LOG_LEVEL", "trace"),
    ],
)
def test_a_bad_value_names_its_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError) as info:
        parse([], {f"DENYPROXY_{name}": value})
    assert str(info.value).startswith(f"DENYPROXY_{name}={value!r}: ")


def test_a_bad_flag_is_named_as_the_flag() -> None:
    with pytest.raises(SettingsError, match=r"^--store-timeout='nan': must be a finite number$"):
        parse(["--store-timeout", "nan"], {"DENYPROXY_STORE_TIMEOUT": "2"})


@pytest.mark.parametrize(
    ("argv", "env", "named"),
    [
        (["serve"], {"DENYPROXY_STORE_TIMEOUT": "nan"}, "DENYPROXY_STORE_TIMEOUT"),
        (["serve", "--upstream-timeout", "inf"], {}, "--upstream-timeout"),
        (["serve", "--workers", "2"], {}, "--workers > 1 needs --redis"),
        (["serve", "--kafka-security-protocol", "SASL_SSL"], {}, "--kafka-sasl-mechanism"),
    ],
)
def test_cli_exits_2_with_one_line(
    argv: list[str], env: dict[str, str], named: str,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("denyproxy: ") and named in err


def test_kafka_options_need_kafka_and_sasl_credentials() -> None:
    with pytest.raises(SettingsError, match="--kafka"):
        kafka_options(Settings())
    sasl = Settings(kafka="k:9092", kafka_security_protocol="SASL_SSL",
                    kafka_sasl_mechanism="PLAIN", kafka_sasl_username="u")
    with pytest.raises(SettingsError, match="--kafka-sasl-password"):
        kafka_options(sasl)
    options = kafka_options(sasl.with_(kafka_sasl_password="p"))
    assert (options.bootstrap, options.sasl_username, options.sasl_password) == ("k:9092", "u", "p")


def test_repr_hides_the_kafka_sasl_password() -> None:
    settings = Settings(kafka_sasl_username="svc", kafka_sasl_password="hunter2-sasl")

    shown = repr(settings)

    assert "hunter2-sasl" not in shown
    assert "kafka_sasl_password='***'" in shown
    assert "kafka_sasl_username='svc'" in shown


def test_repr_hides_the_password_of_the_redis_url_but_keeps_where_it_points() -> None:
    settings = Settings(redis="redis://default:s3cret-redis@redis.internal:6380/2")

    shown = repr(settings)

    assert "s3cret-redis" not in shown
    assert "redis='redis://default:***@redis.internal:6380/2'" in shown


def test_repr_hides_a_password_only_redis_url() -> None:
    shown = repr(Settings(redis="rediss://:only-pw@cache:6379"))

    assert "only-pw" not in shown
    assert "redis='rediss://:***@cache:6379'" in shown


def test_repr_shows_unset_secrets_as_none_and_urls_without_passwords_unchanged() -> None:
    shown = repr(Settings(redis="redis://cache:6379/0"))

    assert "kafka_sasl_password=None" in shown
    assert "redis='redis://cache:6379/0'" in shown
    assert shown.startswith("Settings(upstream='https://api.openmart.ai', ")


def test_str_and_format_hide_secrets_too() -> None:
    settings = Settings(kafka_sasl_password="hunter2-sasl", redis="redis://:pw-in-url@r:1")

    for text in (str(settings), f"{settings}", f"{settings!r}", repr([settings])):
        assert "hunter2-sasl" not in text
        assert "pw-in-url" not in text


async def test_the_store_cache_is_on_for_a_redis_store_unless_turned_off() -> None:
    from proxy.server import redis_store

    assert parse([]).store_cache is True
    assert parse([], {"DENYPROXY_STORE_CACHE": "false"}).store_cache is False
    assert parse(["--no-store-cache"], {"DENYPROXY_STORE_CACHE": "true"}).store_cache is False
    for argv, cached in ((["--redis", "redis://127.0.0.1:1"], True),
                         (["--redis", "redis://127.0.0.1:1", "--no-store-cache"], False)):
        store = redis_store(parse(argv))  # not connected: nothing is asked of that port
        assert (store.tracked is not None) is cached
        await store.aclose()
