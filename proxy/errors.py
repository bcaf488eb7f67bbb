"""Errors are values with an HTTP status and a `detail`; the edge maps them once."""

from __future__ import annotations


class ProxyError(Exception):
    status = 500

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class BadRequestError(ProxyError):
    status = 400


class UnauthorizedError(ProxyError):
    status = 401


class NotFoundError(ProxyError):
    status = 404


class PayloadTooLargeError(ProxyError):
    status = 413


class UpstreamUnavailableError(ProxyError):
    """The upstream could not be reached or broke off."""

    status = 502


class UpstreamBodyError(ProxyError):
    """The upstream's body cannot be filtered (not JSON, too large, bad encoding): fail closed."""

    status = 502


class StoreError(ProxyError):
    """The rule store cannot answer: fail closed."""

    status = 503


class PublishError(ProxyError):
    """Kafka did not take a rule change: nothing was accepted."""

    status = 503


class UpstreamTimeoutError(ProxyError):
    status = 504


class OutputRefusedError(ProxyError):
    """The verified output still holds a denied identifier: never sent."""

    status = 502
