"""The aiohttp pass-through a user would hand-roll: one ClientSession, read body, return it.

    python bench/passthrough.py --upstream http://127.0.0.1:8081 --listen 127.0.0.1:8080

No filtering, no limits, no metrics, no logs: the floor of any aiohttp-based proxy.
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host",
        "content-encoding"}


def make_app(upstream: str) -> web.Application:
    app = web.Application()

    async def session_ctx(app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0), auto_decompress=False
        ) as session:
            app["session"] = session
            yield

    async def forward(request: web.Request) -> web.Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        body = await request.read() if request.body_exists else None
        async with app["session"].request(
            request.method, upstream + request.path_qs, headers=headers, data=body,
            allow_redirects=False,
        ) as resp:
            payload = await resp.read()
            out = {k: v for k, v in resp.headers.items() if k.lower() not in _HOP}
            if "Content-Encoding" in resp.headers:
                out["Content-Encoding"] = resp.headers["Content-Encoding"]
            return web.Response(status=resp.status, body=payload, headers=out)

    app.cleanup_ctx.append(session_ctx)
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--listen", default="127.0.0.1:8080")
    args = parser.parse_args()
    host, _, port = args.listen.rpartition(":")
    web.run_app(make_app(args.upstream.rstrip("/")), host=host, port=int(port),
                access_log=None, print=None)


if __name__ == "__main__":
    main()
