"""Access-log layer: one record per HTTP request (and WebSocket) on ``aeros.access``.

The outermost layer, so it is on every request's path: it only counts bytes, reads the clock
twice and hands the raw fields to the logging queue. Escaping and formatting happen later in
the listener thread (:mod:`aeros.logging`), never on the event loop.

A request that ends with no response sent is logged as 500 (the app failed) or, on aeros'
server, which answers a failed app with its own 500 and reports it, as 499 (nginx's "client
closed request"): nothing could be sent because the client went away first.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable

from aeros.asgi_entry import asgi3
from aeros.logging.access import ACCESS_LOGGER, SERVER_ANSWER, log_access
from aeros.logging.config import LogConfig
from aeros.logging.context import current_request_id
from aeros.logging.formatters import AccessEntry
from aeros.middleware.counting import unanswered_status, when_done
from aeros.types import (
    CACHE_STATE,
    RATE_LIMIT_STATE,
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
)

__all__ = ["AccessLogMiddleware"]

_INFO = logging.INFO
_START = "aeros.access_log.start"  # scope key: when the request reached the layer


class AccessLogMiddleware:
    """Log client, method, path, status, bytes sent, duration and cache state per request.

    Args:
        app: the ASGI app to wrap.
        config: the :class:`aeros.logging.config.LogConfig`; its format decides whether the
            User-Agent and Referer headers are looked up (``combined`` and ``json`` only).
    """

    def __init__(self, app: ASGIApp, config: LogConfig) -> None:
        self.app = app
        self.logger = logging.getLogger(ACCESS_LOGGER)
        self.with_headers = config.access_log_format in ("combined", "json")
        self._finish = self.finish  # bound once, not per request

    @asgi3
    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        """Serve one ASGI connection; HTTP requests and WebSockets are logged when they end."""
        if scope["type"] != "http" or not self.logger.isEnabledFor(_INFO):
            if scope["type"] == "websocket" and self.logger.isEnabledFor(_INFO):
                return self.websocket(scope, receive, send)
            return self.app(scope, receive, send)
        # a plain function: on aeros' server a request passes no coroutine of this layer
        scope[_START] = time.perf_counter()
        return when_done(self.app, scope, receive, send, self._finish)

    def finish(self, scope: Scope, status: int, size: int) -> None:
        """Log one finished HTTP request from what was sent (``status`` 0: none, logged as
        :func:`unanswered_status` says: 500, or 499 when the client left first)."""
        # A HEAD answer carries no body on the wire, whatever body the app produced. aeros'
        # server may have answered in the app's place (a body over the limit): that shows.
        answer = scope.get(SERVER_ANSWER)
        if answer is not None:
            status, size = answer
        else:
            if scope["method"] == "HEAD":
                size = 0
            if not status:
                status = unanswered_status(scope)
        self.log(scope, status, size, (time.perf_counter() - scope[_START]) * 1000)

    async def websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one WebSocket; its line comes when it closes: 101 once accepted, else the
        status of the denial (403 when the app closes before accepting, as servers answer).
        Bytes are the payloads sent; the duration is the connection's lifetime."""
        start = time.perf_counter()
        status = 403
        size = 0

        async def counting_send(message: Message) -> None:
            nonlocal status, size
            kind = message["type"]
            if kind == "websocket.send":
                size += len(message.get("bytes") or b"") + len(
                    (message.get("text") or "").encode("utf-8", "surrogatepass")
                )
            elif kind == "websocket.accept":
                status = 101
            elif kind == "websocket.http.response.start":
                status = message["status"]
            elif kind == "websocket.http.response.body":
                size += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            self.log(scope, status, size, (time.perf_counter() - start) * 1000)

    def log(self, scope: Scope, status: int, size: int, duration_ms: float) -> None:
        """Hand one request's raw fields to the ``aeros.access`` logger."""
        referer = user_agent = None
        if self.with_headers:
            for name, value in scope["headers"]:
                if name == b"user-agent":
                    user_agent = value
                elif name == b"referer":
                    referer = value
        entry = AccessEntry(
            scope.get("client"),
            scope.get("method", "GET"),  # a WebSocket scope has none: its handshake is a GET
            scope.get("raw_path") or scope["path"],
            scope.get("query_string", b""),
            scope.get("http_version", "1.1"),
            status,
            size,
            duration_ms,
            scope.get(CACHE_STATE),
            referer,
            user_agent,
            current_request_id(),  # set by the request-id layer outside, when it is on
            scope.get(RATE_LIMIT_STATE),
        )
        log_access(entry)
