"""Answer 503 when a worker already has ``max_concurrent_requests`` requests in flight."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["ConcurrencyLimitMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_BODY = b"Service Unavailable: too many requests in flight, retry shortly\n"
_START: Message = {
    "type": "http.response.start",
    "status": 503,
    "headers": [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(_BODY)).encode()),
        (b"retry-after", b"1"),
        (b"connection", b"close"),
    ],
}


class ConcurrencyLimitMiddleware:
    """Count HTTP requests in flight and refuse those above ``limit`` with 503.

    uvicorn's own ``limit_concurrency`` counts open connections, the current one included, so
    ``limit_concurrency=1`` refuses every request and idle keep-alive connections use up the
    budget. This counts what the knob promises: requests being handled. One event loop per
    worker, so a plain int needs no lock.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            await send(dict(_START))
            await send({"type": "http.response.body", "body": _BODY})
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
