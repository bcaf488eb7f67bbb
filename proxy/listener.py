"""The proxy listener: the front on the socket (proxy/front.py), aiohttp's server behind it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiohttp import web

from proxy.app import FORWARDER, front_serve, own_prefixes
from proxy.front import Front
from proxy.settings import Settings

FRONT_MAX_BODY = 1024 * 1024
"""A larger request body streams to the upstream through aiohttp's server instead."""


@dataclass(slots=True)
class ProxyListener:
    """The proxy listener: the front on the socket, aiohttp's server behind it."""

    runner: web.AppRunner
    front: Front
    server: asyncio.Server
    shutdown_timeout: float

    async def cleanup(self) -> None:
        """No new connections; the front's requests and aiohttp's finish in the same bounded
        window (one after the other would add the two), then the application's resources
        close."""
        self.server.close()
        behind = self.runner.server
        assert behind is not None  # set up by `start_proxy`
        behind.pre_shutdown()  # aiohttp's idle connections close now, as its cleanup does
        await asyncio.gather(self.front.shutdown(self.shutdown_timeout),
                             behind.shutdown(self.shutdown_timeout))
        await self.runner.cleanup()  # its connections are gone: the application's cleanup


async def start_proxy(app: web.Application, address: str, settings: Settings) -> ProxyListener:
    runner = web.AppRunner(
        app, handle_signals=False, access_log=None, shutdown_timeout=settings.shutdown_timeout
    )
    await runner.setup()
    assert runner.server is not None
    front = Front(front_serve(app[FORWARDER]), runner.server, own_prefixes(app),
                  min(settings.max_request_body, FRONT_MAX_BODY))
    host, port = split(address)
    server = await asyncio.get_running_loop().create_server(
        front, host, port, backlog=128, reuse_port=settings.workers > 1 or None
    )
    return ProxyListener(runner, front, server, settings.shutdown_timeout)


def split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)
