"""Concurrency-limit layer: answer 503 when a worker already has ``limit`` requests in flight."""

from __future__ import annotations

from collections.abc import Iterable

from aeros._validate import integer
from aeros.middleware.headers import GlobalHeaders
from aeros.types import ASGIApp, Receive, Scope, Send

__all__ = ["ConcurrencyLimitMiddleware"]

_BODY = b"Service Unavailable: too many requests in flight, retry shortly\n"
_HEADERS = (
    (b"content-type", b"text/plain; charset=utf-8"),
    (b"content-length", str(len(_BODY)).encode()),
    (b"retry-after", b"1"),
    (b"connection", b"close"),
)


class ConcurrencyLimitMiddleware:
    """Count HTTP requests in flight and refuse those above ``limit`` with 503.

    uvicorn's own ``limit_concurrency`` counts open connections, the current one included, so
    ``limit_concurrency=1`` refuses every request and idle keep-alive connections use up the
    budget. This counts what the knob promises: requests being handled. One event loop per
    worker, so a plain int needs no lock.

    Its place in the stack is just inside the access log (which then logs the 503s) and
    outside everything else, so a refusal costs no CORS, cache or app work. The 503 gets the
    global headers here, as the headers layer is further in::

        stack = ConcurrencyLimitMiddleware(stack, limit, global_headers)
        stack = AccessLogMiddleware(stack, log_config)

    Args:
        app: the ASGI app to guard.
        limit: requests in flight above which the answer is 503 (an int >= 1).
        headers: the app's global headers for the 503 (a :class:`GlobalHeaders`, or encoded
            ``(name, value)`` pairs); the 503's own framing headers win over them.

    Raises:
        ConfigurationError: ``limit`` is not an int >= 1.
    """

    def __init__(
        self,
        app: ASGIApp,
        limit: int,
        headers: GlobalHeaders | Iterable[tuple[bytes, bytes]] = (),
    ) -> None:
        self.app = app
        self.limit = integer("ConcurrencyLimitMiddleware", "limit", limit, minimum=1)
        self.in_flight = 0
        if not isinstance(headers, GlobalHeaders):
            headers = GlobalHeaders((name.lower(), value) for name, value in headers)
        self.headers = headers.apply(_HEADERS)  # built once: the 503 never changes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            await self.refuse(send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1

    async def refuse(self, send: Send) -> None:
        """Answer 503 with ``Retry-After: 1`` (the access-log layer outside logs it)."""
        await send({"type": "http.response.start", "status": 503, "headers": self.headers})
        await send({"type": "http.response.body", "body": _BODY, "more_body": False})
