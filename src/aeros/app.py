"""WebServer: a Quart app that wires aeros' ASGI layers and owns its production server.

Wiring only: every feature lives in its own module; this file builds the layer stack once
(lazily, on the first ASGI call, so ``Compress(app)`` and ``app.config`` changes made after
construction still count) and hands the app to the server runner.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from quart import Quart

from aeros.cache_control import CacheControl
from aeros.compression import DEFAULT_COMPRESSION, Codec, check_codecs, resolve_codecs
from aeros.compression.layer import CompressionMiddleware
from aeros.errors import ConfigurationError
from aeros.fastpath import (
    HTTPConnection,
    LeanMap,
    LeanRequest,
    OrjsonProvider,
    WebsocketConnection,
)
from aeros.fastpath.dispatch import uses_lean_dispatch
from aeros.headers import check_header
from aeros.logging.config import LogConfig, configure_logging, log_banner, route_logger
from aeros.middleware.access_log import AccessLogMiddleware
from aeros.middleware.cors import CORS, CORSMiddleware
from aeros.middleware.headers import GlobalHeaders, HeadersMiddleware
from aeros.misc import note_sync_function
from aeros.response_cache.routes import ResponseCache
from aeros.run_options import (
    apply_run_options,
    check_run_call,
    check_run_options,
    inherited_run_options,
    run_with_reloader,
)
from aeros.server.config import Limits, ServerConfig, body_limit_from_app_config
from aeros.server.forkserver import ForkServer
from aeros.server.runner import Runner, fork_server_for
from aeros.server.threads import serving_in_this_thread
from aeros.server.uvicorn_backend import check_ssl
from aeros.types import ASGIApp, Headers, Receive, Scope, Send

__all__ = ["WebServer"]

F = TypeVar("F", bound=Callable[..., Any])


class WebServer(Quart):
    """A :class:`quart.Quart` app with a production server and response-side batteries.

    Everything Quart does keeps working; aeros adds layers in front of ``Quart.asgi_app``
    (access log, headers, CORS, response cache, compression) and ``run_server()``.

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
        max_concurrent_requests: above this many requests in flight, answer 503.
        backlog: listen backlog of the server socket.
        keep_alive_timeout: seconds an idle keep-alive connection stays open.
        graceful_timeout: seconds in-flight requests may take to finish on shutdown.
        ssl_certfile: PEM certificate; with ``ssl_keyfile`` serves HTTPS.
        ssl_keyfile: PEM private key.
        proxy_headers: honour ``X-Forwarded-For/Proto`` from ``forwarded_allow_ips``.
        forwarded_allow_ips: peers trusted for proxy headers (default ``127.0.0.1``).
        server: server backend; ``"uvicorn"`` (granian was measured and was not faster).
        worker_healthcheck_timeout: seconds a worker's event loop may go without a heartbeat
            before it is killed and replaced (workers > 1).
        freeze_gc: after start-up, ``gc.freeze()`` the objects alive then (the app's modules),
            so full garbage collections stop re-scanning them; on by default where the server
            owns its process (``run_server()``, workers), never in ``serve_in_thread()``.
        limits: request size and time limits (:class:`aeros.Limits`); its body and form
            sizes are also Quart's ``MAX_CONTENT_LENGTH``, ``MAX_FORM_MEMORY_SIZE`` and
            ``MAX_FORM_PARTS``, and a ``MAX_CONTENT_LENGTH`` set later is the server's limit
            too (docs/security.md).
        log_level: level of the aeros and server loggers (name or number).
        color: force coloured (True) or plain (False) console logs; None decides by
            ``NO_COLOR`` / ``FORCE_COLOR`` / whether stdout is a terminal.
        access_log: write one access-log line per request.
        access_log_format: ``default``, ``common``, ``combined`` or ``json``.
        access_log_file: also write the access log to this file.
        log_file: also write the server log to this file.
        **quart_kwargs: passed to :class:`quart.Quart` (``static_folder``, ...).
    """

    # the lean request path (aeros.fastpath): no per-request tasks, orjson for JSON
    asgi_http_class = HTTPConnection
    asgi_websocket_class = WebsocketConnection
    json_provider_class = OrjsonProvider
    request_class = LeanRequest
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
        max_concurrent_requests: int | None = None,
        backlog: int = 2048,
        keep_alive_timeout: float = 5.0,
        graceful_timeout: float = 30.0,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
        proxy_headers: bool = False,
        forwarded_allow_ips: str | Sequence[str] | None = None,
        server: str = "uvicorn",
        worker_healthcheck_timeout: float = 30.0,
        freeze_gc: bool = True,
        limits: Limits | None = None,
        log_level: str | int = "info",
        color: bool | None = None,
        access_log: bool = True,
        access_log_format: str = "default",
        access_log_file: str | None = None,
        log_file: str | None = None,
        **quart_kwargs: Any,
    ) -> None:
        super().__init__(import_name, **quart_kwargs)
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
            backlog=backlog,
            keep_alive_timeout=keep_alive_timeout,
            graceful_timeout=graceful_timeout,
            max_concurrent_requests=max_concurrent_requests,
            ssl_certfile=ssl_certfile,
            ssl_keyfile=ssl_keyfile,
            proxy_headers=proxy_headers,
            forwarded_allow_ips=forwarded_allow_ips,
            backend=server,
            worker_healthcheck_timeout=worker_healthcheck_timeout,
            freeze_gc=freeze_gc,
            limits=limits if limits is not None else Limits(),
        )
        self.use_limits(self.server_config.limits)
        check_ssl(self.server_config)  # a bad certificate or key fails here, not at start
        self.log_config = LogConfig(
            level=log_level,
            color=color,
            access_log=access_log,
            access_log_format=access_log_format,
            access_log_file=access_log_file,
            log_file=log_file,
        )
        if not isinstance(include_server_header, bool):
            raise ConfigurationError(
                f"WebServer(include_server_header={include_server_header!r}) must be True or False"
            )
        if global_headers is not None and not isinstance(global_headers, Mapping):
            raise ConfigurationError(
                f"WebServer(global_headers=...) must be a mapping of header name to value; "
                f"got {type(global_headers).__name__}"
            )
        headers: Headers = [
            check_header(name, value, where="WebServer(global_headers=...)")
            for name, value in (global_headers or {}).items()
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
        # checked now, so a typo fails here in one line rather than at the first request
        if compression is not None and compression is not DEFAULT_COMPRESSION:
            compression = check_codecs(compression)
        self._compression_arg = compression
        self.response_cache = ResponseCache(self, cache)
        if cache_control is not None:
            if not isinstance(cache_control, CacheControl):
                raise ConfigurationError(
                    "WebServer(cache_control=...) must be an aeros.CacheControl(...) or None; "
                    f"got {cache_control!r}"
                )
            cache_control.init_app(self)
        self._stack: ASGIApp | None = None
        self._runner: Runner | None = None
        self._runner_lock = threading.Lock()
        self._prepared_fork_server: ForkServer | None = None

    # ---- the layer stack ---------------------------------------------------------------

    async def asgi_app(self, scope: Scope, receive: Receive, send: Send) -> None:  # type: ignore[override]
        """Serve one ASGI connection through aeros' layers, then Quart.

        Users may still wrap it (``app.asgi_app = Middleware(app.asgi_app)``).
        """
        stack = self._stack
        if stack is None:
            stack = self._stack = self.build_stack()
        await stack(scope, receive, send)

    @property
    def codecs(self) -> tuple[Codec, ...]:
        """The compression codecs in use, in order of preference (empty: compression off)."""
        return resolve_codecs(self, self._compression_arg)

    def build_stack(self) -> ASGIApp:
        """Build the layers around ``Quart.asgi_app``; a layer with nothing to do is left out.

        Outermost first: access log, CORS, response cache, global headers, compression, Quart.
        The cache and CORS layers add the global headers to the answers they make themselves,
        so a cache hit does not pass through the headers layer.
        """
        uses_lean_dispatch(self)  # decided (and, when not, logged with the reason) here, once
        stack: ASGIApp = super().asgi_app  # type: ignore[assignment]
        codecs = self.codecs
        if codecs:
            stack = CompressionMiddleware(stack, codecs)
        pairs = self._response_headers
        if self._server_header and self._own_server:
            pairs = [*pairs, (b"server", b"aeros")]
        headers = GlobalHeaders(pairs)
        if headers:
            stack = HeadersMiddleware(stack, headers)
        self.response_cache.warn_without_store()  # every blueprint is registered by now
        stack = self.response_cache.wrap(stack, codecs, headers)
        if self.cors is not None:
            stack = CORSMiddleware(stack, self.cors, headers)
        if self.log_config.access_log:
            stack = AccessLogMiddleware(stack, self.log_config)
        return stack

    # ---- response cache ----------------------------------------------------------------

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

    def purge_cache(self, path: str | None = None, *, endpoint: str | None = None) -> int:
        """Drop the cached responses of one path (``"/items/1"``) or one endpoint (``"item"``).

        Returns how many entries were removed; ``await app.response_cache.purge(...)`` is the
        async form.
        """
        return self.response_cache.run_sync(self.response_cache.purge(path, endpoint=endpoint))

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

    # ---- the server --------------------------------------------------------------------

    def run_server(
        self,
        host: str | None = None,
        port: int | None = None,
        workers: int | None = None,
        *,
        sock: socket.socket | None = None,
        on_started: Callable[[str], None] | None = None,
    ) -> None:
        """Serve until stopped: Ctrl-C / SIGTERM (main thread) or :meth:`stop` (any thread).

        Args:
            host: overrides the constructor's host for this run.
            port: overrides the constructor's port for this run.
            workers: overrides the number of worker processes for this run.
            sock: an already bound listening socket to serve (host and port are then read
                from it); tests pass one bound to port 0.
            on_started: called with the base URL (``http://127.0.0.1:8000``) once serving.
        """
        inherited = inherited_run_options()
        if inherited is not None:  # a child of run(use_reloader=True): what run() was told
            apply_run_options(self, **inherited)
        config = self.server_config.replace(
            host=host,
            port=port,
            workers=workers,
            limits=body_limit_from_app_config(self.server_config.limits, self.config),
            answer_headers=self._answer_headers(),
        )
        self.response_cache.warn_without_store()  # here once, not again in each forked worker

        def started(base_url: str) -> None:
            log_banner(base_url, config.workers, self.response_cache.store, self.codecs)
            if on_started is not None:
                on_started(base_url)

        # Registered before anything slow, so a stop() from another thread is never lost.
        with self._runner_lock:
            if self._runner is not None:
                raise RuntimeError("this WebServer is already serving; call stop() first")
            if not self._own_server:  # rebuild the layers with `server: aeros` (if wanted)
                self._own_server = True
                self._stack = None
            prepared, self._prepared_fork_server = self._prepared_fork_server, None
            runner = self._runner = Runner(
                self,
                config,
                sock=sock,
                on_started=started,
                worker_init=self._start_worker_logging,
                fork_server=prepared,
            )
        try:
            # Workers are forked by a helper forked here, before the log listener thread
            # starts (or earlier, by AdvancedThread / serve_in_thread, before their thread).
            runner.prepare()
            listener = configure_logging(self.log_config)
            try:
                with serving_in_this_thread(self):  # AdvancedThread.stop() finds it there
                    runner.run()
            finally:
                listener.stop()
        finally:
            runner.close()
            with self._runner_lock:
                self._runner = None

    def use_limits(self, limits: Limits) -> None:
        """Serve with ``limits``: the server's and Quart's body and form limits at once.

        One body limit, not two: Quart's own checks read ``MAX_CONTENT_LENGTH``,
        ``MAX_FORM_MEMORY_SIZE`` and ``MAX_FORM_PARTS`` (docs/security.md).
        """
        self.server_config = self.server_config.replace(limits=limits)
        self.config["MAX_CONTENT_LENGTH"] = limits.max_body_size
        self.config["MAX_FORM_MEMORY_SIZE"] = limits.max_form_memory_size
        self.config["MAX_FORM_PARTS"] = limits.max_form_parts

    def _answer_headers(self) -> tuple[tuple[bytes, bytes], ...]:
        """The headers of the answers aeros' server makes itself (413, 408, 503, ...)."""
        server = ((b"server", b"aeros"),) if self._server_header else ()
        return (*self._response_headers, *server)

    def _start_worker_logging(self) -> Any:
        return configure_logging(self.log_config)

    def prepare_workers(self, workers: int | None = None) -> None:
        """Fork the helper that forks the worker processes now, for the next ``run_server()``.

        For a server started in a thread: call it before that thread starts, while the process
        still has only one thread (``AdvancedThread.start()`` and ``serve_in_thread()`` do).
        Forking in a process with threads can deadlock the child, and Python 3.12+ warns about
        it; aeros forks its workers only from this single-threaded helper. Without this call a
        ``run_server()`` in a thread forks the helper itself, and Python warns that the process
        has threads (yours). A no-op for one process.

        Args:
            workers: the worker count ``run_server()`` will use; default: the constructor's.
        """
        count = self.server_config.workers if workers is None else workers
        # the workers are forked from the helper's copy of this app: served by aeros' server
        with self._runner_lock:
            if not self._own_server:
                self._own_server = True
                self._stack = None
        helper = fork_server_for(self, count, self._start_worker_logging)
        with self._runner_lock:
            previous, self._prepared_fork_server = self._prepared_fork_server, helper
        if previous is not None:
            previous.close()

    def discard_prepared_workers(self) -> None:
        """Let a helper from :meth:`prepare_workers` go when ``run_server()`` will not run."""
        with self._runner_lock:
            previous, self._prepared_fork_server = self._prepared_fork_server, None
        if previous is not None:
            previous.close()

    def run(
        self,
        host: str | None = None,
        port: int | None = None,
        debug: bool | None = None,
        use_reloader: bool = False,
        loop: asyncio.AbstractEventLoop | None = None,
        ca_certs: str | None = None,
        certfile: str | None = None,
        keyfile: str | None = None,
        **kwargs: Any,
    ) -> None:
        """Serve with aeros' production server, taking :meth:`quart.Quart.run`'s arguments.

        ``quart run`` and code written for Quart call it this way; Quart's development
        server is not used.

        Args:
            host: overrides the constructor's host (Quart's default is not used: the app's is).
            port: overrides the constructor's port.
            debug: Quart's debug mode (tracebacks in error pages, indented JSON) and template
                auto-reload; None leaves it as the app has it (``QUART_DEBUG`` counts, as in
                Quart).
            use_reloader: restart the server when a source file changes (the ``aeros run
                --reload`` reloader; main thread only). Default False, unlike Quart's
                development server: ``run()`` is aeros' production entry point too.
            loop: not supported (aeros' server runs its own event loop); must be None.
            ca_certs: CA bundle for client certificates (with ``certfile``/``keyfile``).
            certfile: PEM certificate; with ``keyfile`` serves HTTPS.
            keyfile: PEM private key.
            **kwargs: aeros' :meth:`run_server` options: ``workers``, ``sock``, ``on_started``.
        """
        check_run_call(kwargs.keys(), loop, use_reloader)
        check_run_options(debug, ca_certs, certfile, keyfile)
        child = inherited_run_options() is not None  # already the reloader's child
        if use_reloader and not child:
            options = {
                "debug": debug,
                "ca_certs": ca_certs,
                "certfile": certfile,
                "keyfile": keyfile,
            }
            run_with_reloader(self, host, port, kwargs.get("workers"), options)
            return
        apply_run_options(self, debug, ca_certs, certfile, keyfile)
        self.run_server(host, port, **kwargs)

    def stop(self) -> bool:
        """Stop serving gracefully; safe from any thread, idempotent.

        Returns:
            True when a run (serving or still starting) was told to stop; False when this app
            is not running, in which case nothing happens.
        """
        with self._runner_lock:
            runner = self._runner
        if runner is None:
            return False
        runner.stop()
        return True

    @contextlib.contextmanager
    def serve_in_thread(
        self, *, host: str | None = None, port: int = 0, timeout: float = 10.0
    ) -> Iterator[str]:
        """Serve in a background thread for the ``with`` block; yields the base URL.

        Binds ``port`` (default 0: a free port the OS picks) before the thread starts, so there
        is no race for the port; waits until the server accepts, stops and joins on exit.
        """
        from aeros.server.threads import serve_in_thread

        with serve_in_thread(
            self, host=host or self.server_config.host, port=port, timeout=timeout
        ) as url:
            yield url
