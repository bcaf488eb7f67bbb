"""Issue #17: every configuration that could never apply rules is refused at start-up, with
one line naming the fix (proxy/settings.py:check and proxy/server.py:refuse_at_start)."""

from __future__ import annotations

import pytest

from proxy import cli, server
from proxy.settings import Settings, SettingsError, check


@pytest.mark.parametrize(
    ("settings", "command", "fix"),
    [
        (Settings(workers=2), "serve", "--workers > 1 needs --redis"),
        (Settings(kafka="k:9092", consumer=False), "serve", "--no-consumer needs --redis"),
        (Settings(kafka="k:9092"), "consume", "consume needs --kafka and --redis"),
        (Settings(redis="redis://r:6379"), "consume", "consume needs --kafka and --redis"),
        (Settings(max_rule_staleness=30.0), "serve", "--max-rule-staleness needs --kafka"),
        (Settings(redis_cluster=True), "serve", "--redis-cluster needs --redis"),
    ],
)
def test_a_configuration_that_never_applies_rules_is_one_line_naming_the_fix(
    settings: Settings, command: str, fix: str
) -> None:
    def start() -> None:
        server.refuse_at_start(check(settings), command)

    with pytest.raises(SettingsError) as refused:
        start()
    assert str(refused.value).startswith(fix) and "\n" not in str(refused.value)


@pytest.mark.parametrize(
    ("settings", "command"),
    [
        (Settings(), "serve"),
        (Settings(kafka="k:9092"), "serve"),
        (Settings(kafka="k:9092", redis="redis://r:6379", consumer=False), "serve"),
        (Settings(kafka="k:9092", redis="redis://r:6379"), "consume"),
        (Settings(redis="redis://r:6379", max_rule_staleness=30.0), "serve"),
        (Settings(kafka="k:9092", max_rule_staleness=30.0), "serve"),
    ],
)
def test_configurations_that_apply_rules_start(settings: Settings, command: str) -> None:
    server.refuse_at_start(check(settings), command)


async def test_serve_refuses_before_it_opens_anything() -> None:
    async def never() -> None:
        raise AssertionError("serve started")

    with pytest.raises(SettingsError, match="--max-rule-staleness needs"):
        await server.serve(Settings(max_rule_staleness=5.0, admin_listen="127.0.0.1:0"), never)


def test_the_cli_prints_it_on_one_line_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["serve", "--redis-cluster", "--log-level", "error"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        "denyproxy: --redis-cluster needs --redis: the rules would stay in this process"
    ]
