"""Which errors the loop retries, and how they are named in logs."""

from __future__ import annotations

from aiokafka.errors import KafkaTimeoutError

from rules.store import StoreUnavailableError


def transient(exc: Exception) -> bool:
    """A store that did not answer, or a Kafka error the client marks retriable."""
    if isinstance(exc, StoreUnavailableError):
        return True
    return bool(getattr(exc, "retriable", False)) or isinstance(exc, KafkaTimeoutError)


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
