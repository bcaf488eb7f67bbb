"""Deny rules: the rule model, the one normaliser, the stores and the Kafka events."""
