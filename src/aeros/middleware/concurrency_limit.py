"""Answer 503 when a worker already has ``max_concurrent_requests`` requests in flight."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from aeros.logging.access import ACCESS_LOGGER, log_access
from aeros.logging.formatters import AccessEntry

__all__ = ["ConcurrencyLimitMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_BODY = b"Service Unavailable: too many requests in flight, retry shortly\n"
_HEADERS = (
    (b"content-type", b"text/plain; charset=utf-8"),
    (b"content-length", str(len(_BODY)).encode()),
    (b"retry-after", b"1"),
    (b"connection", b"close"),
)
_OWN = frozenset(name for name, _ in _HEADERS)

_access_logger = logging.getLogger(ACCESS_LOGGER)


class ConcurrencyLimitMiddleware:
    """Count HTTP requests in flight and refuse those above ``limit`` with 503.

    uvicorn's own ``limit_concurrency`` counts open connections, the current one included, so
    ``limit_concurrency=1`` refuses every request and idle keep-alive connections use up the
    budget. This counts what the knob promises: requests being handled. One event loop per
    worker, so a plain int needs no lock.

    It wraps the whole app, outside the app's own layers, so the 503 carries ``headers`` (the
    app's global headers and ``server``) and gets its access-log line here.

    Args:
        app: the ASGI app to guard.
        limit: requests in flight above which the answer is 503.
        headers: extra ``(name, value)`` headers for the 503 (a header it sets itself wins).
    """

    def __init__(
        self, app: ASGIApp, limit: int, headers: Iterable[tuple[bytes, bytes]] = ()
    ) -> None:
        self.app = app
        self.limit = limit
        self.in_flight = 0
        extra = [(name.lower(), value) for name, value in headers if name.lower() not in _OWN]
        self.headers = [*_HEADERS, *extra]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            await self.refuse(scope, send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1

    async def refuse(self, scope: Scope, send: Send) -> None:
        """Answer 503 with ``Retry-After: 1`` and log the request."""
        start = time.perf_counter()
        await send({"type": "http.response.start", "status": 503, "headers": self.headers})
        await send({"type": "http.response.body", "body": _BODY})
        if _access_logger.isEnabledFor(logging.INFO):
            log_access(
                AccessEntry(
                    scope.get("client"),
                    scope["method"],
                    scope.get("raw_path") or scope["path"],
                    scope.get("query_string", b""),
                    scope.get("http_version", "1.1"),
                    503,
                    0 if scope["method"] == "HEAD" else len(_BODY),
                    (time.perf_counter() - start) * 1000,
                    None,
                )
            )
