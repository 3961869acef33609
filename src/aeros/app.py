"""WebServer: a Quart app that wires aeros' ASGI layers and owns its production server.

Wiring only: every feature lives in its own module. This file turns the constructor's options
into configs (:class:`~aeros.server.config.ServerConfig`, :class:`~aeros.logging.config.LogConfig`)
and states the layer stack as one ordered list (:meth:`WebServer.layers`), built once (lazily,
on the first ASGI call, so ``Compress(app)``, ``app.config`` changes and
:meth:`WebServer.add_middleware` calls made after construction still count), then hands the app
to the server runner.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar, Unpack

from quart import Quart

from aeros._validate import boolean
from aeros.asgi_entry import asgi3, direct
from aeros.cache_control import CacheControl
from aeros.compression import DEFAULT_COMPRESSION, Codec, check_codecs, resolve_codecs
from aeros.compression.layer import CompressionMiddleware
from aeros.errors import ConfigurationError
from aeros.fastpath import (
    HTTPConnection,
    LeanMap,
    LeanRequest,
    LeanResponse,
    OrjsonProvider,
    WebsocketConnection,
)
from aeros.fastpath.dispatch import uses_lean_dispatch
from aeros.headers import check_header
from aeros.logging.config import LogConfig
from aeros.logging.router import route_logger
from aeros.metrics.export import Exporter
from aeros.metrics.layer import AppBytesMiddleware, MetricsMiddleware
from aeros.metrics.routes import RouteResolver, recording_request_class
from aeros.middleware.access_log import AccessLogMiddleware
from aeros.middleware.concurrency_limit import ConcurrencyLimitMiddleware
from aeros.middleware.cors import CORS, CORSMiddleware
from aeros.middleware.headers import GlobalHeaders, HeadersMiddleware
from aeros.middleware.health import HealthMiddleware
from aeros.middleware.request_id import RequestIdMiddleware
from aeros.misc import note_sync_function
from aeros.observability import ObservabilityConfig
from aeros.options import WebServerOptions, pop_observability_options, split_options
from aeros.ratelimit.layer import rate_limit_layer
from aeros.ratelimit.policy import RateLimit
from aeros.ratelimit.routes import RouteLimits
from aeros.response_cache.routes import ResponseCache
from aeros.security.headers import SecurityHeaders
from aeros.server.config import QUART_LIMIT_KEYS, Limits, ServerConfig
from aeros.server.forkserver import ForkServer
from aeros.server.runner import Runner
from aeros.server.uvicorn_backend import check_ssl
from aeros.serving import Serving
from aeros.types import ASGIApp, Headers, Receive, Scope, Send

__all__ = ["Layer", "WebServer"]

F = TypeVar("F", bound=Callable[..., Any])


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


class WebServer(Serving, Quart):
    """A :class:`quart.Quart` app with a production server and response-side batteries.

    Everything Quart does keeps working; aeros adds layers in front of ``Quart.asgi_app``
    (:meth:`layers`) and ``run_server()``.

    Args:
        import_name: as for Quart, usually ``__name__``.
        host: address to bind. Default ``127.0.0.1``: a fresh service is reachable only from
            this machine until you choose otherwise (``0.0.0.0`` for every interface).
        port: TCP port. Default 8000: unprivileged, so no root is needed (80 needs it).
        worker_threads: number of worker processes serving one socket (alias ``workers``).
        cache: a store (``SimpleCache``, ``FilesystemCache``, ``RedisCache`` or any
            :class:`aeros.stores.base.Store`) behind ``@app.cache()``; None disables caching.
        compression: a codec (``Gzip()``, ``Br()``, ``Zstd()``), a sequence of them in order of
            preference, or None to turn compression off. Default: gzip level 2 for text-like
            bodies over 500 bytes, overridable through ``app.config["COMPRESS_*"]``.
        global_headers: headers added to every response (a view's own header wins).
        include_server_header: send ``server: aeros`` (no version) when served by aeros' own
            server (``run_server()``, ``run()``, ``aeros run``); False sends none. Under an
            external ASGI server (uvicorn, hypercorn) that server's own header is left alone.
        workers: alias of ``worker_threads``.
        cors: a :class:`aeros.CORS` policy, or None.
        cache_control: a default ``CacheControl`` for every route without its own.
        cache_status: add ``Cache-Status`` (RFC 9211) to the answers of cached routes, e.g.
            ``aeros; hit; ttl=23`` or ``aeros; fwd=uri-miss; stored``. Default False.
        limits: request size and time limits (:class:`aeros.Limits`); its body and form
            sizes are also Quart's ``MAX_CONTENT_LENGTH``, ``MAX_FORM_MEMORY_SIZE`` and
            ``MAX_FORM_PARTS``, and a ``MAX_CONTENT_LENGTH`` set later is the server's limit
            too (docs/security.md).
        rate_limit: an app-wide :class:`aeros.RateLimit` (``RateLimit("100/minute")``), also
            the storage and strategy of the routes' ``@rate_limit``; None: only those routes
            are limited, in each process's memory (docs/security.md).
        security_headers: a :class:`aeros.SecurityHeaders` preset added to the global headers
            (``global_headers`` and a view's own headers win over it), or None (default).
        **options: the server options (:class:`aeros.options.ServerOptions`:
            ``max_concurrent_requests``, ``backlog``, ``keep_alive_timeout``,
            ``graceful_timeout``, ``shutdown_delay``, ``ssl_certfile``, ``ssl_keyfile``,
            ``proxy_headers``, ``forwarded_allow_ips``, ``server``, ``worker_healthcheck_timeout``,
            ``freeze_gc``), the log options (:class:`aeros.options.LogOptions`:
            ``log_level``, ``color``, ``access_log``, ``access_log_format``,
            ``access_log_file``, ``log_file``), the observability options
            (:class:`aeros.observability.ObservabilityConfig`: ``request_id``,
            ``health_path``, ``metrics``, ``metrics_path``, ``metrics_port``), each documented
            with its default on its config field, and :class:`quart.Quart`'s own
            (``static_folder``, ...).
    """

    # the lean request path (aeros.fastpath): no per-request tasks, orjson for JSON
    asgi_http_class = HTTPConnection
    asgi_websocket_class = WebsocketConnection
    json_provider_class = OrjsonProvider
    request_class = LeanRequest
    response_class = LeanResponse
    url_map_class = LeanMap

    def __init__(
        self,
        import_name: str,
        host: str = "127.0.0.1",
        port: int = 8000,
        worker_threads: int | None = None,
        cache: Any = None,
        compression: Any = DEFAULT_COMPRESSION,
        global_headers: Mapping[str, str] | None = None,
        include_server_header: bool = True,
        *,
        workers: int | None = None,
        cors: CORS | None = None,
        cache_control: CacheControl | None = None,
        limits: Limits | None = None,
        rate_limit: RateLimit | None = None,
        security_headers: SecurityHeaders | None = None,
        cache_status: bool = False,
        **options: Unpack[WebServerOptions],
    ) -> None:
        observability = pop_observability_options(options)  # type: ignore[arg-type]
        server_options, log_options, quart_options = split_options(options)
        super().__init__(import_name, **quart_options)
        if worker_threads is not None and workers is not None and worker_threads != workers:
            raise ConfigurationError(
                f"WebServer(worker_threads={worker_threads!r}, workers={workers!r}): these are "
                "aliases; pass one of them"
            )
        n_workers = workers if workers is not None else worker_threads
        self.server_config = ServerConfig(
            host=host,
            port=port,
            workers=1 if n_workers is None else n_workers,
            limits=limits if limits is not None else Limits(),
            **server_options,
        )
        self.use_limits(self.server_config.limits)
        check_ssl(self.server_config)  # a bad certificate or key fails here, not at start
        self.log_config = LogConfig(**log_options)
        self.observability = ObservabilityConfig(**observability)
        self.metrics_exporter = Exporter() if self.observability.metrics else None
        self._prepared_metrics_dir: Any = None
        boolean("WebServer", "include_server_header", include_server_header)
        if global_headers is not None and not isinstance(global_headers, Mapping):
            raise ConfigurationError(
                f"WebServer(global_headers=...) must be a mapping of header name to value; "
                f"got {type(global_headers).__name__}"
            )
        headers: Headers = [
            check_header(name, value, where="WebServer(global_headers=...)")
            for name, value in (global_headers or {}).items()
        ]
        self._https_headers: Headers = []
        if security_headers is not None:
            if not isinstance(security_headers, SecurityHeaders):
                raise ConfigurationError(
                    "WebServer(security_headers=...) must be an aeros.SecurityHeaders(...) or "
                    f"None; got {security_headers!r}"
                )
            given = {name for name, _ in headers}  # global_headers override the preset
            headers += [pair for pair in security_headers.pairs() if pair[0] not in given]
            self._https_headers = [
                pair for pair in security_headers.https_pairs() if pair[0] not in given
            ]
        # `server: aeros` only on aeros' own server (run_server sets _own_server): under an
        # external uvicorn/hypercorn that server sends its own, and two would go out.
        self._server_header = include_server_header and all(n != b"server" for n, _ in headers)
        self._own_server = False
        self._response_headers = headers
        if cors is not None and not isinstance(cors, CORS):
            raise ConfigurationError(
                f"WebServer(cors=...) must be an aeros.CORS(...) policy or None; got {cors!r}"
            )
        self.cors = cors
        if rate_limit is not None and not isinstance(rate_limit, RateLimit):
            raise ConfigurationError(
                f"WebServer(rate_limit=...) must be an aeros.RateLimit(...) or None; got "
                f"{rate_limit!r}"
            )
        self.rate_limits = RouteLimits(self, rate_limit)
        # checked now, so a typo fails here in one line rather than at the first request
        if compression is not None and compression is not DEFAULT_COMPRESSION:
            compression = check_codecs(compression)
        self._compression_arg = compression
        self.response_cache = ResponseCache(
            self, cache, cache_status=boolean("WebServer", "cache_status", cache_status)
        )
        if cache_control is not None:
            if not isinstance(cache_control, CacheControl):
                raise ConfigurationError(
                    "WebServer(cache_control=...) must be an aeros.CacheControl(...) or None; "
                    f"got {cache_control!r}"
                )
            cache_control.init_app(self)
        self._user_layers: list[Layer] = []
        self._sealed = False  # the stack was built or serving started: add_middleware refuses
        self._stack: ASGIApp | None = None
        self._runner: Runner | None = None
        self._runner_lock = threading.Lock()
        self._prepared_fork_server: ForkServer | None = None

    # ---- the layer stack ---------------------------------------------------------------

    async def asgi_app(self, scope: Scope, receive: Receive, send: Send) -> None:  # type: ignore[override]
        """Serve one ASGI connection through aeros' layers, then Quart.

        Users may still wrap it (``app.asgi_app = Middleware(app.asgi_app)``).
        """
        await self._layered()(scope, receive, send)

    def server_entry(self) -> Any:
        """What aeros' server calls for each connection: straight into the layer stack,
        without the coroutines of Quart's ``__call__`` and of :meth:`asgi_app`; the app itself
        when a subclass overrides either."""
        if type(self).__call__ is not Quart.__call__ or type(self).asgi_app is not (
            WebServer.asgi_app
        ):
            return self
        return self._enter

    @asgi3
    def _enter(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if "asgi_app" in self.__dict__:  # app.asgi_app = Middleware(app.asgi_app): theirs
            return self.asgi_app(scope, receive, send)
        return (self._stack or self._layered())(scope, receive, send)

    def _layered(self) -> ASGIApp:
        """The layer stack's entry, built on first use (:meth:`build_stack`)."""
        stack = self._stack
        if stack is None:
            stack = self._stack = direct(self.build_stack())
        return stack

    @property
    def codecs(self) -> tuple[Codec, ...]:
        """The compression codecs in use, in order of preference (empty: compression off)."""
        return resolve_codecs(self, self._compression_arg)

    def layers(self) -> list[Layer]:
        """The layer stack around ``Quart.asgi_app``, outermost first (DESIGN.md's order).

        request id, health probe, metrics, access log, HTTPS-only headers (HSTS), concurrency
        limit, rate limit, CORS, user middleware (:meth:`add_middleware`), response cache,
        global headers, compression, the metrics' byte count; then Quart. A layer with nothing
        to do is left out. The cache, CORS and the concurrency limit add the global headers to
        the answers they make themselves, so a cache hit does not pass through the headers
        layer.
        """
        codecs = self.codecs
        headers = GlobalHeaders(self._header_pairs(own_server=self._own_server))
        limit = self.server_config.max_concurrent_requests
        observe = self.observability
        request_id = observe.request_id_header
        exporter = self.metrics_exporter
        metrics_path = observe.metrics_path if observe.metrics_port is None else None
        stack = [
            Layer(RequestIdMiddleware, request_id, self.server_config.forwarded_allow_ips)
            if request_id is not None
            else None,
            Layer(HealthMiddleware, observe.health_path, headers)
            if observe.health_path is not None
            else None,
            Layer(MetricsMiddleware, exporter, metrics_path, RouteResolver(self))
            if exporter is not None
            else None,
            Layer(AccessLogMiddleware, self.log_config) if self.log_config.access_log else None,
            # outermost but the log, so every answer gets HSTS, the layers' own included
            Layer(HeadersMiddleware, self._https_headers, https_only=True)
            if self._https_headers
            else None,
            Layer(ConcurrencyLimitMiddleware, limit, headers) if limit is not None else None,
            Layer(rate_limit_layer, self.rate_limits, headers)
            if self.rate_limits.active()  # asked when the stack is built: every view is there
            else None,
            Layer(CORSMiddleware, self.cors, headers) if self.cors is not None else None,
            *reversed(self._user_layers),  # the last one added is the outermost (Starlette)
            Layer(self.response_cache.wrap, codecs, headers),  # no store: no layer
            Layer(HeadersMiddleware, headers) if headers else None,
            # the metrics' count of the app's body bytes: compression's, or a layer of its own
            Layer(CompressionMiddleware, codecs, exporter.tally if exporter else None)
            if codecs
            else None,
            Layer(AppBytesMiddleware, exporter) if exporter is not None and not codecs else None,
        ]
        return [layer for layer in stack if layer is not None]

    def build_stack(self) -> ASGIApp:
        """Wrap ``Quart.asgi_app`` in :meth:`layers`, innermost first; the outermost layer."""
        lean = uses_lean_dispatch(self)  # decided (and, when not, logged with the reason) once
        self.response_cache.warn_without_store()  # every blueprint is registered by now
        self._sealed = True
        if self.metrics_exporter is not None and not lean:
            # the metrics label requests with their route: the lean dispatch writes it itself,
            # Quart's own through the request class
            self.request_class = recording_request_class(self.request_class)
        stack: ASGIApp = super().asgi_app  # type: ignore[assignment]
        for layer in reversed(self.layers()):
            stack = layer.wrap(direct(stack))
        return stack

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

    # ---- response cache ----------------------------------------------------------------

    def use_limits(self, limits: Limits) -> None:
        """Serve with ``limits``: the server's and Quart's body and form limits at once.

        One body limit, not two: Quart's own checks read ``MAX_CONTENT_LENGTH``,
        ``MAX_FORM_MEMORY_SIZE`` and ``MAX_FORM_PARTS`` (docs/security.md).
        """
        self.server_config = self.server_config.replace(limits=limits)
        for name, key in QUART_LIMIT_KEYS.items():
            self.config[key] = getattr(limits, name)

    def cache(self, timeout: float | None = None, **options: Any) -> Callable[[F], F]:
        """Cache the view's responses server-side: :func:`aeros.cached`, same options.

        ``@cached(...)`` needs no app object, for blueprints in their own modules and app
        factories.
        """
        return self.response_cache.decorator(timeout=timeout, **options)

    def clear_cache(self) -> None:
        """Drop every cached response (in every worker and instance sharing the store).

        Callable from sync code and from inside a running loop (it then blocks on a helper
        thread); in async code ``await app.response_cache.clear()`` does not block.
        """
        self.response_cache.clear_sync()

    def purge_cache(
        self, path: str | None = None, *, endpoint: str | None = None, tag: str | None = None
    ) -> int:
        """Drop the cached responses of one path (``"/items/1"``), one endpoint (``"item"``)
        or one tag (``"items"``, given by ``@app.cache(tags=...)``).

        Returns how many entries were removed; ``await app.response_cache.purge(...)`` is the
        async form.
        """
        return self.response_cache.run_sync(
            self.response_cache.purge(path, endpoint=endpoint, tag=tag)
        )

    # ---- logging ----------------------------------------------------------------------

    @property
    def logger(self) -> logging.Logger:
        """Quart's app logger (named after the app), routed to aeros' handlers while serving."""
        return route_logger(self.name)

    def ensure_async(self, func: Any) -> Any:
        """As Quart's: sync functions run in a thread pool; aeros logs that once per function."""
        note_sync_function(func)
        return super().ensure_async(func)

    ensure_async.__aeros_keeps_quart__ = True  # type: ignore[attr-defined]
    # (the lean dispatch may inline Quart's ensure_async: this override only adds a log line)
