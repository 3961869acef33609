"""The layer stack: aeros' ASGI layers around Quart, stated as one ordered list, and the way in.

:class:`LayerStack` is the part of :class:`aeros.WebServer` that says which layers wrap
``Quart.asgi_app`` and in what order (:meth:`~LayerStack.layers`, DESIGN.md's order), builds
them once, on first use (so ``Compress(app)``, ``app.config`` changes and
:meth:`~LayerStack.add_middleware` calls made after construction still count), and gives
aeros' server its way in (:meth:`~LayerStack.server_entry`). When aeros' server counts the
metrics itself, the layers outside the metrics layer are made a second time, around the layers
inside it, for a way in that passes the metrics layer by. ``WebServer.__init__`` sets the
attributes it reads.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from typing import Any

from quart import Quart

from aeros.asgi_entry import asgi3, direct
from aeros.compression.layer import CompressionMiddleware
from aeros.errors import ConfigurationError
from aeros.fastpath import HTTPConnection
from aeros.fastpath.dispatch import uses_lean_dispatch
from aeros.metrics.layer import AppBytesMiddleware, MetricsMiddleware
from aeros.metrics.meter import Meter
from aeros.metrics.routes import RouteResolver, recording_request_class
from aeros.middleware.access_log import AccessLogMiddleware
from aeros.middleware.concurrency_limit import ConcurrencyLimitMiddleware
from aeros.middleware.cors import CORS, CORSMiddleware
from aeros.middleware.counting import uncounted
from aeros.middleware.headers import GlobalHeaders, HeadersMiddleware
from aeros.middleware.health import HealthMiddleware
from aeros.middleware.request_id import RequestIdMiddleware
from aeros.ratelimit.layer import rate_limit_layer
from aeros.ratelimit.routes import RouteLimits
from aeros.serving import Serving
from aeros.types import GIVEN_REQUEST_ID, HEAD_NOTES, HEADER_LINES, ASGIApp, Receive, Scope, Send

__all__ = ["HeadNotesDropped", "Layer", "LayerStack"]


class Layer:
    """One entry of the layer stack: ``factory(app, *args, **options)`` wraps the app inside.

    Starlette's ``Middleware(cls, *args, **kwargs)``: the stack is a list of these, outermost
    first, wrapped in reverse once.
    """

    __slots__ = ("args", "factory", "options")

    def __init__(self, factory: Callable[..., ASGIApp], /, *args: Any, **options: Any) -> None:
        self.factory = factory
        self.args = args
        self.options = options

    def wrap(self, app: ASGIApp) -> ASGIApp:
        """The layer around ``app``."""
        return self.factory(app, *self.args, **self.options)

    def __repr__(self) -> str:
        return f"Layer({getattr(self.factory, '__qualname__', self.factory)})"


def _wrapped(layers: list[Layer], app: ASGIApp) -> ASGIApp:
    """``app`` wrapped in ``layers`` (outermost first), innermost first; the outermost layer."""
    for layer in reversed(layers):
        app = layer.wrap(direct(app))
    return app


class HeadNotesDropped:
    """In front of the user's layers (:meth:`LayerStack.add_middleware`): they may change the
    header fields in place, so the layers inside them scan the fields instead of reading what
    the server noted (:data:`~aeros.types.HEAD_NOTES`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    @asgi3
    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        scope.pop(HEAD_NOTES, None)
        return self.app(scope, receive, send)


class LayerStack(Serving, Quart):
    """The layer stack of :class:`aeros.WebServer`; the attributes below are set there."""

    rate_limits: RouteLimits
    cors: CORS | None
    _user_layers: list[Layer]
    _stack: ASGIApp | None
    _stack_lock: threading.RLock  # held while the stacks are built
    _server_stack: ASGIApp  # the stack past the metrics layer (_enter_counted), or _enter
    _scrape_path: str | None = None  # where the metrics layer answers the scrape (None: not here)

    async def asgi_app(self, scope: Scope, receive: Receive, send: Send) -> None:  # type: ignore[override]
        """Serve one ASGI connection through aeros' layers, then Quart.

        Users may still wrap it (``app.asgi_app = Middleware(app.asgi_app)``).
        """
        # not straight from aeros' server (that is _enter): whatever came before may have
        # changed the headers, so the layers read them, not the server's notes
        scope.pop(GIVEN_REQUEST_ID, None)
        scope.pop(HEAD_NOTES, None)
        await self._layered()(scope, receive, send)

    def server_entry(self, *, counted: bool = False) -> Any:
        """What aeros' server calls for each connection: straight into the layer stack,
        without the coroutines of Quart's ``__call__`` and of :meth:`asgi_app`; the app itself
        when a subclass overrides either. ``counted``: the server counts the metrics with
        :meth:`server_meter`'s meter, so its requests pass the metrics layer by
        (:meth:`_enter_counted`)."""
        if type(self).__call__ is not Quart.__call__ or type(self).asgi_app is not (
            LayerStack.asgi_app
        ):
            return self
        if counted and self.metrics_exporter is not None:
            return self._enter_counted
        return self._enter

    def server_meter(self) -> Meter | None:
        """What aeros' server counts each request with when the metrics are on (its cycle
        starts and ends each count; its requests then pass the metrics layer by:
        ``server_entry(counted=True)``); None when off."""
        exporter = self.metrics_exporter
        if exporter is None or self.server_entry() is self:
            # off, or a subclass's own __call__ or asgi_app runs first (it may copy the
            # scope the count is read from): the metrics layer counts
            return None
        return Meter(exporter, self._route_resolver())

    def _route_resolver(self) -> RouteResolver:
        """The metrics' route template of requests answered in front of Quart (one per app)."""
        resolver = self.__dict__.get("_aeros_route_resolver")
        if resolver is None:
            resolver = self.__dict__["_aeros_route_resolver"] = RouteResolver(self)
        return resolver

    @asgi3
    def _enter(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if "asgi_app" in self.__dict__:  # app.asgi_app = Middleware(app.asgi_app): theirs
            # the metrics layer counts what reaches it (the server's count, started before
            # the wrapper, would read the scope the wrapper and the layers did not write)
            uncounted(scope)
            # without HEADER_LINES: aeros' layers then add their headers to the response start,
            # where the wrapper sees them (the server would write them after it)
            scope = {key: value for key, value in scope.items() if key != HEADER_LINES}
            return self.asgi_app(scope, receive, send)
        return (self._stack or self._layered())(scope, receive, send)

    @asgi3
    def _enter_counted(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # aeros' server counts each request (server_meter), so the metrics layer would only
        # pass it on: a request enters the same layers with that one left out, one frame and
        # its checks fewer. The layer's own work goes through it: the scrape's path, and a
        # scope with no path (the lifespan: the layer flushes the counts at its end; with
        # the metrics on their own port, _scrape_path is None and matches only that).
        scrape = self._scrape_path
        if scope.get("path", scrape) == scrape or "asgi_app" in self.__dict__:
            return self._enter(scope, receive, send)  # (a replaced asgi_app: _enter's way)
        return self._server_stack(scope, receive, send)  # _enter until the stack is built

    def _layered(self) -> ASGIApp:
        """The layer stack's entry, built on first use (:meth:`build_stack`), and the one
        aeros' server enters when it counts the metrics itself (:meth:`_enter_counted`; where
        a subclass builds its own stack or layers, that is the same one)."""
        stack = self._stack
        if stack is not None:
            return stack
        with self._stack_lock:  # one build, both stacks from it, whichever thread comes first
            stack = self._stack
            if stack is not None:
                return stack
            built: ASGIApp
            passed: ASGIApp | None = None
            if type(self).build_stack is LayerStack.build_stack and (
                type(self).layers is LayerStack.layers
            ):
                built, passed = self._build_stacks(past_metrics=True)
            else:
                # a subclass's own build_stack, or layers (outside the metrics layer, one
                # with state of its own would have it twice): the one stack, as it builds it
                built = self.build_stack()
            self._scrape_path = self.observability.public_metrics_path
            self._server_stack = self._enter if passed is None else direct(passed)
            entry: ASGIApp = direct(built)
            self._stack = entry
            return entry

    def _headers_seen_by_none(self) -> bool:
        """Whether no layer outside the global headers' reads the response's headers, so
        aeros' server may write them (``HeadersMiddleware(server_lines=...)``): no user
        middleware, no CORS (it merges ``Vary``), no ``asgi_app`` or ``__call__`` of a
        subclass (an ``asgi_app`` replaced on the instance gets a scope without
        ``HEADER_LINES``: :meth:`_enter`)."""
        return (
            not self._user_layers
            and self.cors is None
            and type(self).asgi_app is LayerStack.asgi_app
            and type(self).__call__ is Quart.__call__
        )

    def layers(self) -> list[Layer]:
        """The layer stack around ``Quart.asgi_app``, outermost first (DESIGN.md's order).

        request id, HTTPS-only headers (HSTS), health probe, metrics, access log, concurrency
        limit, rate limit, CORS, user middleware (:meth:`add_middleware`, with
        :class:`HeadNotesDropped` in front of it), response cache, global headers, compression,
        the metrics' byte count; then Quart. A layer with nothing to do is left out. The cache,
        CORS and the concurrency limit add the global headers to the answers they make
        themselves, so a cache hit does not pass through the headers layer.
        """
        codecs = self.codecs
        headers = GlobalHeaders(self._header_pairs(own_server=self._own_server))
        limit = self.server_config.max_concurrent_requests
        observe = self.observability
        request_id = observe.request_id_header
        exporter = self.metrics_exporter
        stack = [
            Layer(RequestIdMiddleware, request_id, self.server_config.forwarded_allow_ips)
            if request_id is not None
            else None,
            # outside every layer that answers, so every answer gets HSTS: probes, scrapes,
            # cache hits and the layers' own refusals included
            Layer(HeadersMiddleware, self._https_headers, https_only=True)
            if self._https_headers
            else None,
            Layer(HealthMiddleware, observe.health_path, headers)
            if observe.health_path is not None
            else None,
            Layer(
                MetricsMiddleware,
                exporter,
                observe.public_metrics_path,
                self._route_resolver(),
                headers,
            )
            if exporter is not None
            else None,
            Layer(AccessLogMiddleware, self.log_config) if self.log_config.access_log else None,
            Layer(ConcurrencyLimitMiddleware, limit, headers) if limit is not None else None,
            Layer(rate_limit_layer, self.rate_limits, headers)
            if self.rate_limits.active()  # asked when the stack is built: every view is there
            else None,
            Layer(CORSMiddleware, self.cors, headers) if self.cors is not None else None,
            # the user's layers may change the header fields: the layers inside them scan
            Layer(HeadNotesDropped) if self._user_layers else None,
            *reversed(self._user_layers),  # the last one added is the outermost (Starlette)
            Layer(self.response_cache.wrap, codecs, headers),  # no store: no layer
            Layer(HeadersMiddleware, headers, server_lines=self._headers_seen_by_none())
            if headers
            else None,
            # the metrics' count of the app's body bytes: compression's, or a layer of its own
            Layer(
                CompressionMiddleware,
                codecs,
                exporter.tally if exporter else None,
                # aeros' lean connection encodes whole bodies itself: no send wrapper
                lean=getattr(self.asgi_http_class, "READS_COMPRESSION", False) is True,
            )
            if codecs
            else None,
            Layer(AppBytesMiddleware, exporter) if exporter is not None and not codecs else None,
        ]
        return [layer for layer in stack if layer is not None]

    def build_stack(self) -> ASGIApp:
        """Wrap ``Quart.asgi_app`` in :meth:`layers`, innermost first; the outermost layer."""
        return self._build_stacks(past_metrics=False)[0]

    def _build_stacks(self, *, past_metrics: bool) -> tuple[ASGIApp, ASGIApp | None]:
        """:meth:`build_stack`'s outermost layer and, with ``past_metrics``, that of the same
        layers with aeros' metrics layer left out (None when there is none). The layers
        inside it are made once; those outside it (aeros' request id, HTTPS-only headers and
        health probe, which hold no state of their own) once for each stack."""
        lean = uses_lean_dispatch(self)  # decided (and, when not, logged with the reason) once
        self.response_cache.warn_without_store()  # every blueprint is registered by now
        self._sealed = True
        if self.metrics_exporter is not None and not lean:
            # the metrics label requests with their route: the lean dispatch writes it itself,
            # Quart's own through the request class
            self.request_class = recording_request_class(self.request_class)
        layers = self.layers()
        exporter = self.metrics_exporter
        at = None  # where aeros' own metrics layer is (a user's sits inside it, if any)
        if past_metrics and exporter is not None:
            at = next(
                (
                    index
                    for index, layer in enumerate(layers)
                    if layer.factory is MetricsMiddleware and layer.args[0] is exporter
                ),
                None,
            )
        if at is None:
            return _wrapped(layers, self._quart_entry()), None
        inside = _wrapped(layers[at + 1 :], self._quart_entry())
        return _wrapped(layers[: at + 1], inside), _wrapped(layers[:at], inside)

    def _quart_entry(self) -> ASGIApp:
        """The stack's innermost app: ``Quart.asgi_app``. Where it is Quart's own and the
        app's ``asgi_http_class`` (read per request, as Quart reads it) is aeros' own, an HTTP
        request skips its coroutine, which only makes the connection and awaits it: the
        connection's coroutine is returned as it is (one coroutine fewer a request). Any
        other connection class goes through Quart's, which returns None whatever the
        class's ``__call__`` returns and raises its errors when awaited."""
        quarts: ASGIApp = super().asgi_app  # type: ignore[assignment]
        if getattr(quarts, "__func__", None) is not Quart.asgi_app:
            return quarts  # a class between this one and Quart has its own

        @asgi3
        def http_first(scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
            connection_class: Any = self.asgi_http_class
            if scope["type"] == "http" and connection_class is HTTPConnection:
                # its constructor only stores the app and the scope; its __call__ returns None
                return connection_class(self, scope)(receive, send)  # type: ignore[no-any-return]
            return quarts(scope, receive, send)

        return http_first

    def add_middleware(
        self, factory: Callable[..., ASGIApp], /, *args: Any, **options: Any
    ) -> None:
        """Add a pure-ASGI layer, built as ``factory(app, *args, **options)``.

        It sits inside the access log, the concurrency limit and CORS, and outside the
        response cache: it sees every request the app answers, cache hits included, but not
        the CORS preflights CORS answers, and its calls are in the access log. Each call wraps
        the layers added before (the last one added runs first), as in Starlette.

        Raises:
            ConfigurationError: ``factory`` is not callable.
            RuntimeError: the stack is already built (the app served a request) or serving
                started; add middleware before that.
        """
        if not callable(factory):
            raise ConfigurationError(
                f"WebServer.add_middleware({factory!r}) needs a middleware class or factory "
                "called as factory(app, *args, **options)"
            )
        if self._sealed:
            raise RuntimeError(
                f"WebServer.add_middleware({getattr(factory, '__name__', factory)}) after the "
                "layer stack was built (a request was served or run_server() started); add "
                "middleware before serving"
            )
        self._user_layers.append(Layer(factory, *args, **options))
