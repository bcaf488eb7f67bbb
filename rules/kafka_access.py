"""Kafka authentication and ACL checks that fail with one line naming what is missing.

aiokafka hides a rejected SASL login behind "Unable to bootstrap" (and logs the cause at its
own level), and a missing ACL surfaces as a bare error code, or as a retry loop deep inside a
consumer. So before a publisher or a consumer starts, one connection is opened to check the
credentials, and the topics and group the role needs are described: a broker answers
TOPIC/GROUP_AUTHORIZATION_FAILED there when the principal has no ACL on them at all (READ and
WRITE imply DESCRIBE). What slips through (DESCRIBE but not WRITE) is named by `explained`.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.conn import create_conn
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    KafkaError,
    SaslAuthenticationFailed,
    TopicAuthorizationFailedError,
)

from rules.changelog import changelog_topic
from rules.kafka import KafkaOptions, dead_letter_topic, ensure_topic

AUTHORIZATION_ERRORS = (
    TopicAuthorizationFailedError,
    GroupAuthorizationFailedError,
    ClusterAuthorizationFailedError,
)


class KafkaAccessError(KafkaError):  # type: ignore[misc]  # aiokafka is untyped
    """Credentials rejected or an ACL missing: the message is the whole story, on one line."""

    retriable = False

    def __str__(self) -> str:  # KafkaError prefixes its class name; the line is for operators
        return str(self.args[0]) if self.args else "kafka: access refused"


@dataclass(frozen=True, slots=True)
class Need:
    """One permission a role needs: e.g. WRITE on topic denyproxy.rules."""

    operation: str
    kind: str  # "topic" or "group"
    name: str


def principal(options: KafkaOptions) -> str:
    """The principal the broker sees, as ACLs name it (SASL users only; else the listener's)."""
    if options.security_protocol.startswith("SASL") and options.sasl_username:
        return f"User:{options.sasl_username}"
    return f"this client's principal ({options.security_protocol})"


def denied(options: KafkaOptions, need: Need) -> KafkaAccessError:
    return KafkaAccessError(
        f"kafka: not authorised to {need.operation} {need.kind} {need.name} — "
        f"ACL missing for {principal(options)}"
    )


def publisher_needs(topic: str) -> list[Need]:
    return [Need("WRITE", "topic", topic)]


def consumer_needs(topic: str, group: str | None, *, dead_letters: bool = True) -> list[Need]:
    needs = [Need("READ", "topic", topic)]
    needs += [Need("WRITE", "topic", dead_letter_topic(topic))] if dead_letters else []
    return needs + ([Need("READ", "group", group)] if group else [])


def changelog_needs(topic: str) -> list[Need]:
    """A consumer with `--changelog`: READ (a restore) and WRITE (every slice). Checked only
    once the changelog exists: describing a missing topic lets a broker with
    `auto.create.topics.enable` create it, not compacted."""
    logged = changelog_topic(topic)
    return [Need("READ", "topic", logged), Need("WRITE", "topic", logged)]


async def authenticate(options: KafkaOptions) -> None:
    """Open one connection to a bootstrap server: a rejected login or an untrusted certificate
    raise KafkaAccessError; an unreachable broker is left to the client's own error."""
    kwargs = _conn_kwargs(options)
    for host, port in _addresses(options.bootstrap):
        try:
            conn = await create_conn(host, port, request_timeout_ms=10_000, **kwargs)
        except SaslAuthenticationFailed:
            raise KafkaAccessError(
                f"kafka: authentication failed for user {options.sasl_username} "
                f"(SASL {options.sasl_mechanism})"
            ) from None
        except ssl.SSLCertVerificationError as exc:
            raise KafkaAccessError(
                f"kafka: TLS certificate of {host}:{port} not trusted ({exc.verify_message}); "
                "check --kafka-ssl-cafile"
            ) from None
        except (OSError, KafkaError):
            continue
        conn.close()
        return


async def check_access(options: KafkaOptions, needs: Sequence[Need]) -> None:
    """Log in, then describe each topic and group needed; the first refusal is raised."""
    await authenticate(options)
    admin = AIOKafkaAdminClient(client_id="denyproxy-access", **options.client_kwargs())
    await admin.start()
    try:
        for need in needs:
            await _check(admin, options, need)
    finally:
        await admin.close()


async def _check(admin: AIOKafkaAdminClient, options: KafkaOptions, need: Need) -> None:
    if need.kind == "group":
        try:
            await admin.find_coordinator(need.name)
        except GroupAuthorizationFailedError:
            raise denied(options, need) from None
        except KafkaError:  # e.g. no coordinator yet on a new cluster: the consumer retries
            pass
        return
    (described,) = await admin.describe_topics([need.name])
    if described["error_code"] == TopicAuthorizationFailedError.errno:
        raise denied(options, need)


async def prepare_publishing(options: KafkaOptions, topic: str) -> None:
    """What a publisher does before its first event: check access, create the topic if it is
    missing (the dead-letter topic is the consumer's business, not the publisher's)."""
    await check_access(options, publisher_needs(topic))
    await ensure_topic(options, topic, dead_letters=False)


@contextmanager
def explained(options: KafkaOptions, need: Need) -> Iterator[None]:
    """Turn an authorisation error raised inside into the one-line KafkaAccessError."""
    try:
        yield
    except AUTHORIZATION_ERRORS:
        raise denied(options, need) from None


def _conn_kwargs(options: KafkaOptions) -> dict[str, Any]:
    kwargs = options.client_kwargs()
    del kwargs["bootstrap_servers"]
    return kwargs


def _addresses(bootstrap: str) -> list[tuple[str, int]]:
    pairs = []
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        pairs.append((host.strip("[]") or "localhost", int(port or 9092)))
    return pairs
