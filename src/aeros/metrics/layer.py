"""Metrics layers: count every request into the :class:`~aeros.metrics.tally.Tally`, serve the
scrape, and count the body bytes views produce.

:class:`MetricsMiddleware` sits just inside the health probe and outside the access log, so
everything the app or aeros answers is counted (503s of the concurrency limit, cache hits) and
probes and scrapes are not. On aeros' own server the server counts each request, from before
the app runs to its end (:class:`~aeros.metrics.meter.Meter`, in its request cycle), and
enters the layers with this one left out (``WebServer._enter_counted``): what still reaches
the layer there is the scrape's path and the lifespan (a request of another method on that
path, which the server counts for this app, is passed on), and the requests of an app whose
``asgi_app`` was replaced on the instance, which it counts. On any other server the layer
counts with the same meter.
``prometheus_client`` is touched once a second (:class:`~aeros.metrics.export.Exporter`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aeros.asgi_entry import asgi3
from aeros.metrics.export import CONTENT_TYPE, Exporter
from aeros.metrics.meter import Meter
from aeros.middleware.counting import uncounted, when_done
from aeros.middleware.headers import GlobalHeaders
from aeros.types import ROUTE, ASGIApp, Message, Receive, Scope, Send

__all__ = ["AppBytesMiddleware", "MetricsMiddleware"]


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
        self.path = path
        self.meter = Meter(exporter, route_of)
        self.tally = exporter.tally
        self._count = self.meter.count  # bound once, not per request

    @asgi3
    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # a plain function: a request it passes on goes through no coroutine of this layer
        if scope["type"] != "http":
            return self._other(scope, receive, send)
        if scope["path"] == self.path and scope["method"] in ("GET", "HEAD"):
            uncounted(scope)  # aeros' server started its count: a scrape is not counted
            return self.scrape(scope, send)
        box = scope.get(ROUTE)
        if box is not None and box[2] is self.tally:  # aeros' server counts it for this app
            return self.app(scope, receive, send)
        self.meter.start(scope)
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
