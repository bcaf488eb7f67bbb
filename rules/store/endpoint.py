"""Where and as whom the lookup's link (link.py) connects: read from redis-py's pool."""

from __future__ import annotations

import ssl
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection
from redis.credentials import CredentialProvider, UsernamePasswordCredentialProvider


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where and as whom the link connects: what redis-py's pool would use (one URL parse)."""

    host: str
    port: int
    path: str | None
    db: int
    credentials: CredentialProvider | None
    ssl: ssl.SSLContext | None
    connect_timeout: float | None
    timeout: float | None
    client_name: str | None = None

    @classmethod
    def of(cls, pool: aioredis.ConnectionPool) -> Endpoint:
        """Read from a connection the pool makes (not connected): host or unix path, database,
        credentials, the TLS context of a `rediss://` URL, and the timeouts."""
        # redis-py leaves make_connection unannotated; it returns pool.connection_class(...)
        conn: AbstractConnection = pool.make_connection()  # type: ignore[no-untyped-call]
        credentials = conn.credential_provider
        if credentials is None and (conn.username or conn.password):
            credentials = UsernamePasswordCredentialProvider(conn.username, conn.password)
        path = conn.path if isinstance(conn, aioredis.UnixDomainSocketConnection) else None
        tls = conn.ssl_context.get() if isinstance(conn, aioredis.SSLConnection) else None
        return cls(
            host=getattr(conn, "host", ""), port=getattr(conn, "port", 0), path=path,
            db=int(conn.db), credentials=credentials, ssl=tls,
            connect_timeout=conn.socket_connect_timeout, timeout=conn.socket_timeout,
            client_name=conn.client_name,
        )

    def describe(self) -> str:
        return self.path or f"{self.host}:{self.port}"
