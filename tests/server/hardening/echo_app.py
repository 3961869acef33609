"""The app the hardening tests attack: echoes what it was given and records every path."""

from __future__ import annotations

import asyncio
from typing import Any

from quart import request, websocket

from aeros import Limits, WebServer

# Small limits so each boundary is cheap to reach; the timeouts are short so deadlines are fast.
TEST_LIMITS = Limits(
    max_request_line=1024,
    max_header_size=2048,
    max_header_count=20,
    max_body_size=4096,
    header_timeout=0.6,
    body_timeout=0.6,
)


def make_app(limits: Limits | None = TEST_LIMITS, **options: Any) -> WebServer:
    """A WebServer with echo routes; ``app.seen`` lists the paths its views were called for."""
    app = WebServer(__name__, access_log=False, compression=None, limits=limits, **options)
    seen: list[str] = []
    app.seen = seen  # type: ignore[attr-defined]

    @app.before_request
    async def record() -> None:
        seen.append(request.path)

    @app.route("/", methods=["GET", "POST", "OPTIONS"])
    async def index() -> str:
        return "ok"

    @app.route("/echo", methods=["POST", "PUT"])
    async def echo() -> bytes:
        return await request.get_data()

    @app.route("/noread", methods=["POST"])
    async def noread() -> str:
        return "did not read"

    @app.route("/seq/<int:n>")
    async def seq(n: int) -> str:
        return str(n)

    @app.route("/sleep/<float:seconds>")
    async def sleep(seconds: float) -> str:
        await asyncio.sleep(seconds)
        return "slept"

    @app.route("/headers", methods=["POST"])
    async def headers() -> dict[str, Any]:
        body = await request.get_data()
        return {"names": [name.lower() for name, _ in request.headers.items()], "body": len(body)}

    @app.route("/info")
    async def info() -> dict[str, Any]:
        return {
            "host": request.host,
            "url": request.url,
            "remote_addr": request.remote_addr,
            "scheme": request.scheme,
        }

    @app.websocket("/ws")
    async def ws() -> None:
        while True:
            await websocket.send(await websocket.receive())

    return app
