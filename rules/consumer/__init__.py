"""The rule consumer: Kafka events into a rule store, as a chain of small steps."""

from __future__ import annotations

from rules.consumer.loop import RuleConsumer
from rules.consumer.readiness import Readiness
from rules.consumer.tuning import ConsumerTuning

__all__ = ["ConsumerTuning", "Readiness", "RuleConsumer"]
