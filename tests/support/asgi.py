"""The one in-process ASGI driver of the tests: a scope as a server builds it, and a client.

A layer, the cache or a whole app is driven without sockets: :func:`http_scope` builds the
scope uvicorn would, :func:`drive` runs the app for one request and returns every message it
sent. The client behaves as aeros' server does: it hands over the body in one
``http.request`` message, and once the response is complete (a final body or a pathsend)
``receive()`` says the client has gone (Quart 0.23 waits for that before its call returns).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

__all__ = ["Message", "drive", "http_scope"]

Message = dict[str, Any]


def http_scope(
    path: str = "/",
    *,
    method: str = "GET",
    query: bytes = b"",
    headers: Sequence[tuple[bytes, bytes]] = ((b"host", b"testserver"),),
    client: tuple[str, int] = ("127.0.0.1", 50000),
) -> dict[str, Any]:
    """An HTTP/1.1 scope for ``method path?query`` with lower-case ``headers``."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query,
        "headers": list(headers),
        "server": ("127.0.0.1", 8000),
        "client": client,
        "state": {},
        "extensions": {},
    }


async def drive(
    app: Any, scope: dict[str, Any], *, body: bytes = b"", sent: list[Message] | None = None
) -> list[Message]:
    """Run ``app`` for one request with ``body``; every message it sent, in order.

    Messages are appended to ``sent`` when given, so a test can look at them while the app
    is still running.
    """
    messages: list[Message] = [] if sent is None else sent
    complete = asyncio.Event()
    body_given = False

    async def receive() -> Message:
        nonlocal body_given
        if not body_given:
            body_given = True
            return {"type": "http.request", "body": body, "more_body": False}
        await complete.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        messages.append(dict(message))
        kind = message["type"]
        if kind == "http.response.pathsend" or (
            kind == "http.response.body" and not message.get("more_body", False)
        ):
            complete.set()

    try:
        await app(scope, receive, send)
    finally:
        complete.set()
    return messages
