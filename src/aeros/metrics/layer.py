"""Metrics layers: count every request into the :class:`~aeros.metrics.tally.Tally`, serve the
scrape, and count the body bytes views produce.

:class:`MetricsMiddleware` sits just inside the health probe and outside the access log, so
everything the app or aeros answers is counted (503s of the concurrency limit, cache hits) and
probes and scrapes are not. Per request it notes the request in the tally
(:meth:`~aeros.metrics.tally.Tally.note`); ``prometheus_client`` is touched once a second
(:class:`~aeros.metrics.export.Exporter`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from aeros.asgi_entry import asgi3
from aeros.metrics.export import CONTENT_TYPE, Exporter
from aeros.metrics.tally import SETTLE_AT, UNMATCHED
from aeros.middleware.counting import unanswered_status, when_done
from aeros.middleware.headers import GlobalHeaders
from aeros.types import (
    CACHE_STATE,
    COALESCED,
    RATE_LIMIT_STATE,
    RESPONSE_DONE,
    ROUTE,
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
)

__all__ = ["AppBytesMiddleware", "MetricsMiddleware"]

_clock = time.perf_counter
logger = logging.getLogger("aeros.metrics")


class MetricsMiddleware:
    """Count requests by method, route template and status, their latency, the requests in
    flight and the cache results; answer GET/HEAD on ``path`` with the metrics.

    Args:
        app: the ASGI app to wrap.
        exporter: the app's :class:`Exporter` (its tally is filled here).
        path: where the metrics are served on this port; None: not here (``metrics_port``).
        route_of: the route template of a request the app did not route itself (a cache hit
            is answered in front of Quart); :data:`UNMATCHED` when none matches.
        headers: the app's global headers (security headers included), added to the scrape's
            answer like to every other.
    """

    def __init__(
        self,
        app: ASGIApp,
        exporter: Exporter,
        path: str | None,
        route_of: Callable[[Scope], str],
        headers: GlobalHeaders | None = None,
    ) -> None:
        self.app = app
        self.headers = headers if headers else None
        self.exporter = exporter
        self.tally = exporter.tally
        self.path = path
        self.route_of = route_of
        self._count = self.count  # bound once, not per request

    @asgi3
    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # a plain function: on aeros' server a request passes no coroutine of this layer
        if scope["type"] != "http":
            return self._other(scope, receive, send)
        if scope["path"] == self.path and scope["method"] in ("GET", "HEAD"):
            return self.scrape(scope, send)
        self.tally.started += 1  # in flight until counted (Tally.take)
        # [route template, start]: the route is filled in by whoever routes the request; the
        # list is shared by the copies of the scope that inner layers make
        scope[ROUTE] = [None, _clock()]
        done = scope.get(RESPONSE_DONE)
        if done is not None:  # when_done's first case, inline: aeros' server reports the end
            done.append((self._count, scope))
            return self.app(scope, receive, send)
        return when_done(self.app, scope, receive, send, self._count)

    async def _other(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A WebSocket (not counted) or the lifespan (the last counts flushed at the end)."""
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:  # the server is stopping: count the last requests before the worker ends
            self.exporter.flush()
            self.exporter.scheduled = False

    def count(self, scope: Scope, status: int, size: int) -> None:
        """Count one finished request (``status`` 0: none was sent, counted as
        :func:`~aeros.middleware.counting.unanswered_status` says: 500, or 499 when the
        client left first)."""
        box = scope[ROUTE]
        seconds = _clock() - box[1]
        tally = self.tally
        route = box[0]
        if CACHE_STATE not in scope and RATE_LIMIT_STATE not in scope:
            # a request with no cache or rate-limit result whose labels have a list of
            # latencies already: appended to it here, with no call of Tally.note. A list
            # exists only after a note, which scheduled the flush; and only for labels as
            # note makes them (a known method, a route, a status): a request routed nowhere
            # (route None) or not answered (status 0) finds none and goes to note.
            times = tally.pending.get((scope["method"], route, status))
            if times is not None:
                times.append(seconds)
                tally.wire_bytes += size
                if len(times) >= SETTLE_AT:
                    tally.settle()
                return
        self._note(scope, route, status, seconds, size)

    def _note(
        self, scope: Scope, route: str | None, status: int, seconds: float, size: int
    ) -> None:
        """Count a finished request with :meth:`Tally.note` (its labels worked out, its cache
        and rate-limit results), and make sure a flush is scheduled."""
        cache = scope.get(CACHE_STATE)
        limit = scope.get(RATE_LIMIT_STATE)
        if route is None:
            # answered in front of Quart (a hit, a rate limit's 429) or routed nowhere
            route = UNMATCHED
            if cache is not None or limit is not None:
                try:
                    route = self.route_of(scope)
                except Exception:  # counted all the same: the in-flight count relies on it
                    logger.exception("metrics: no route template for %r", scope.get("path"))
        if cache == "hit" and scope.get(COALESCED):
            cache = "coalesced"
        if not status:
            status = unanswered_status(scope)
        self.tally.note(scope["method"], route, status, seconds, cache, size, limit)
        if not self.exporter.scheduled:
            self.exporter.schedule()

    async def scrape(self, scope: Scope, send: Send) -> None:
        """Answer with the metrics of every worker (this one's counts flushed first)."""
        body = self.exporter.render()
        headers = [
            (b"content-type", CONTENT_TYPE),
            (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-store"),
        ]
        if self.headers is not None:
            headers = self.headers.apply(headers)
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        head = scope["method"] == "HEAD"
        await send(
            {"type": "http.response.body", "body": b"" if head else body, "more_body": False}
        )


class AppBytesMiddleware:
    """Count the response body bytes the app produced (innermost: before compression).

    Only when compression is off: the compression layer counts them otherwise (its
    ``counter``), with no layer of its own.
    """

    def __init__(self, app: ASGIApp, exporter: Exporter) -> None:
        self.app = app
        self.tally = exporter.tally

    @asgi3
    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # a plain function: the app's coroutine goes back as it is, with no coroutine of this
        # layer around it
        if scope["type"] != "http":
            return self.app(scope, receive, send)
        tally = self.tally

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.body":
                tally.app_bytes += len(message.get("body", b""))
            await send(message)

        return self.app(scope, receive, counting_send)
