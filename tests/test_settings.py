"""proxy/settings.py: what a Settings shows of itself (issue #10: no password in any repr)."""

from __future__ import annotations

from proxy.settings import Settings


def test_repr_hides_the_kafka_sasl_password():
    settings = Settings(kafka_sasl_username="svc", kafka_sasl_password="hunter2-sasl")

    shown = repr(settings)

    assert "hunter2-sasl" not in shown
    assert "kafka_sasl_password='***'" in shown
    assert "kafka_sasl_username='svc'" in shown


def test_repr_hides_the_password_of_the_redis_url_but_keeps_where_it_points():
    settings = Settings(redis="redis://default:s3cret-redis@redis.internal:6380/2")

    shown = repr(settings)

    assert "s3cret-redis" not in shown
    assert "redis='redis://default:***@redis.internal:6380/2'" in shown


def test_repr_hides_a_password_only_redis_url():
    shown = repr(Settings(redis="rediss://:only-pw@cache:6379"))

    assert "only-pw" not in shown
    assert "redis='rediss://:***@cache:6379'" in shown


def test_repr_shows_unset_secrets_as_none_and_urls_without_passwords_unchanged():
    shown = repr(Settings(redis="redis://cache:6379/0"))

    assert "kafka_sasl_password=None" in shown
    assert "redis='redis://cache:6379/0'" in shown
    assert shown.startswith("Settings(upstream='https://api.openmart.ai', ")


def test_str_and_format_hide_secrets_too():
    settings = Settings(kafka_sasl_password="hunter2-sasl", redis="redis://:pw-in-url@r:1")

    for text in (str(settings), f"{settings}", f"{settings!r}", repr([settings])):
        assert "hunter2-sasl" not in text
        assert "pw-in-url" not in text
