"""Which errors the loop retries, and how they are named in logs."""

from __future__ import annotations

from aiokafka.errors import KafkaTimeoutError

from rules.store import StoreUnavailableError


class DeadLetterError(Exception):
    """A reject could not be dead-lettered (broker down, no permission): retry the batch."""


def transient(exc: Exception) -> bool:
    """A store or dead-letter topic that did not take a write, or a retriable Kafka error."""
    if isinstance(exc, (StoreUnavailableError, DeadLetterError)):
        return True
    return bool(getattr(exc, "retriable", False)) or isinstance(exc, KafkaTimeoutError)


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
