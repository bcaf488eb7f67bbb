"""Opening a socket to the upstream, its failures as the client's errors (a 502 each)."""

from __future__ import annotations

import asyncio
import ssl

from proxy.tls import certificate_problem
from proxy.upstream_response import ConnectFailed, TlsFailed


async def opened(
    loop: asyncio.AbstractEventLoop, protocol: asyncio.Protocol, host: str, port: int,
    context: ssl.SSLContext | None, seconds: float,
) -> None:
    """`protocol` connected to host:port (TLS with `context`) within `seconds` (connect)."""
    try:
        async with asyncio.timeout(seconds):
            await loop.create_connection(
                lambda: protocol, host, port, ssl=context,
                server_hostname=host if context is not None else None,
            )
    except ssl.SSLCertVerificationError as exc:
        raise TlsFailed(certificate_problem(exc)) from exc
    except ssl.SSLError as exc:
        raise TlsFailed() from exc
    except OSError as exc:  # refused, unreachable, no such name
        raise ConnectFailed() from exc
