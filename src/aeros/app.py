"""WebServer: a Quart app that wires aeros' ASGI layers and owns its production server.

Wiring only: every feature lives in its own module. This file turns the constructor's options
into configs (:class:`~aeros.server.config.ServerConfig`, :class:`~aeros.logging.config.LogConfig`)
and the objects the layers use; the layer stack (one ordered list, :meth:`WebServer.layers`)
is :mod:`aeros.stack`'s, the serving methods are :mod:`aeros.serving`'s.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, Unpack

from aeros._validate import boolean
from aeros.cache_control import CacheControl
from aeros.compression import DEFAULT_COMPRESSION, Codec, check_codecs, resolve_codecs
from aeros.errors import ConfigurationError
from aeros.fastpath import (
    HTTPConnection,
    LeanMap,
    LeanRequest,
    LeanResponse,
    OrjsonProvider,
    WebsocketConnection,
)
from aeros.headers import check_header
from aeros.logging.config import LogConfig
from aeros.logging.router import route_logger
from aeros.metrics.export import Exporter
from aeros.middleware.cors import CORS
from aeros.misc import note_sync_function
from aeros.observability import ObservabilityConfig
from aeros.options import WebServerOptions, pop_observability_options, split_options
from aeros.ratelimit.policy import RateLimit
from aeros.ratelimit.routes import RouteLimits
from aeros.response_cache.routes import ResponseCache
from aeros.security.headers import SecurityHeaders
from aeros.server.config import QUART_LIMIT_KEYS, Limits, ServerConfig
from aeros.server.forkserver import ForkServer
from aeros.server.runner import Runner
from aeros.server.uvicorn_backend import check_ssl
from aeros.stack import Layer, LayerStack
from aeros.types import ASGIApp, Headers

__all__ = ["Layer", "WebServer"]

F = TypeVar("F", bound=Callable[..., Any])


class WebServer(LayerStack):
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
        self._server_stack: ASGIApp = self._enter  # until the stack past the metrics is built
        self._stack_lock = threading.RLock()
        self._runner: Runner | None = None
        self._runner_lock = threading.Lock()
        self._prepared_fork_server: ForkServer | None = None

    @property
    def codecs(self) -> tuple[Codec, ...]:
        """The compression codecs in use, in order of preference (empty: compression off)."""
        return resolve_codecs(self, self._compression_arg)

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
