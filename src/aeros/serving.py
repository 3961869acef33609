"""How a WebServer is served by aeros' own server: ``run_server()``, ``run()``, ``stop()``.

:class:`Serving` is a base class of :class:`aeros.WebServer` (Flask keeps its serving methods
apart from the app's wiring the same way): it hands the app, its
:class:`~aeros.server.config.ServerConfig` and its :class:`~aeros.logging.config.LogConfig` to
the server runner (single process, forked workers, or a thread) and installs logging while
serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

from flask.config import Config

from aeros.compression import Codec
from aeros.logging.config import LogConfig, configure_logging, log_banner
from aeros.metrics import exporter_render
from aeros.metrics.export import Exporter
from aeros.metrics.multiproc import MultiprocDir
from aeros.metrics.port import MetricsPort
from aeros.metrics.workers import WorkerMetrics
from aeros.observability import ObservabilityConfig
from aeros.response_cache.routes import ResponseCache
from aeros.run_options import (
    apply_run_options,
    check_run_call,
    check_run_options,
    inherited_run_options,
    run_with_reloader,
)
from aeros.server.config import ServerConfig, body_limit_from_app_config
from aeros.server.forkserver import ForkServer
from aeros.server.runner import Runner, fork_server_for
from aeros.server.supervisor import can_fork
from aeros.server.threads import serving_in_this_thread
from aeros.types import Headers

__all__ = ["Serving"]


class Serving:
    """The serving methods of :class:`aeros.WebServer`; the attributes below are set there."""

    config: Config
    server_config: ServerConfig
    log_config: LogConfig
    response_cache: ResponseCache
    _server_header: bool
    _own_server: bool
    _response_headers: Headers
    _https_headers: Headers
    _sealed: bool
    _stack: Any
    _server_stack: Any
    _enter: Any  # LayerStack's
    _runner: Runner | None
    _runner_lock: threading.Lock
    _prepared_fork_server: ForkServer | None
    observability: ObservabilityConfig
    metrics_exporter: Exporter | None
    _prepared_metrics_dir: MultiprocDir | None

    @property
    def codecs(self) -> tuple[Codec, ...]:
        """The compression codecs in use (WebServer's property), named in the banner."""
        raise NotImplementedError

    def run_server(
        self,
        host: str | None = None,
        port: int | None = None,
        workers: int | None = None,
        *,
        sock: socket.socket | None = None,
        on_started: Callable[[str], None] | None = None,
        max_requests: int | None = None,
        max_requests_jitter: int | None = None,
    ) -> None:
        """Serve until stopped: Ctrl-C / SIGTERM (main thread) or :meth:`stop` (any thread).

        With workers, SIGHUP replaces them one by one and SIGUSR2 re-executes the server with
        the code now on disk, neither dropping a request (README, "Restarts and deploys").

        Args:
            host: overrides the constructor's host for this run.
            port: overrides the constructor's port for this run.
            workers: overrides the number of worker processes for this run.
            sock: an already bound listening socket to serve (host and port are then read
                from it); tests pass one bound to port 0.
            on_started: called with the base URL (``http://127.0.0.1:8000``) once serving.
            max_requests: overrides the constructor's ``max_requests`` (requests after which
                a worker is replaced; 0: never) for this run.
            max_requests_jitter: overrides the constructor's ``max_requests_jitter``.
        """
        inherited = inherited_run_options()
        if inherited is not None:  # a child of run(use_reloader=True): what run() was told
            apply_run_options(self, **inherited)
        answer_headers, https_answer_headers = self._answer_headers()
        config = self.server_config.replace(
            host=host,
            port=port,
            workers=workers,
            max_requests=max_requests,
            max_requests_jitter=max_requests_jitter,
            limits=body_limit_from_app_config(self.server_config.limits, self.config),
            answer_headers=answer_headers,
            https_answer_headers=https_answer_headers,
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
            self._seal_for_own_server()
            prepared, self._prepared_fork_server = self._prepared_fork_server, None
            metrics_dir = self._metrics_dir_for(config.workers)  # before any worker is forked
            runner = self._runner = Runner(
                self,
                config,
                sock=sock,
                on_started=started,
                worker_init=self._start_worker_logging,
                fork_server=prepared,
                worker_observer=(
                    WorkerMetrics(metrics_dir, config.workers) if metrics_dir is not None else None
                ),
            )
        metrics_port: MetricsPort | None = None
        try:
            # Workers are forked by a helper forked here, before the log listener thread
            # starts (or earlier, by AdvancedThread / serve_in_thread, before their thread).
            runner.prepare()
            listener = configure_logging(self.log_config)
            try:
                metrics_port = self._open_metrics_port(config.host)  # a thread: after the fork
                with serving_in_this_thread(self):  # AdvancedThread.stop() finds it there
                    runner.run()
            finally:
                listener.stop()
            runner.reexec_if_requested()  # SIGUSR2: the logs are written; never returns then
        finally:
            if metrics_port is not None:
                metrics_port.close()
            self.metrics_url = None
            runner.close()
            if metrics_dir is not None:
                metrics_dir.close()
            with self._runner_lock:
                self._runner = None

    metrics_url: str | None = None
    """While serving with ``metrics_port``: the metrics' URL (``http://127.0.0.1:9100/metrics``),
    so a port of 0 can be found."""

    def _metrics_dir_for(self, workers: int) -> MultiprocDir | None:
        """The multiprocess directory of this run (one made by :meth:`prepare_workers`, or a new
        one); None in one process or without metrics. The caller holds ``_runner_lock``."""
        prepared, self._prepared_metrics_dir = self._prepared_metrics_dir, None
        if self.metrics_exporter is None or workers <= 1 or not can_fork():
            if prepared is not None:
                prepared.close()
            return None
        return prepared if prepared is not None else MultiprocDir()

    def _open_metrics_port(self, host: str) -> MetricsPort | None:
        observe = self.observability
        if self.metrics_exporter is None or observe.metrics_port is None:
            return None
        port = MetricsPort(
            host, observe.metrics_port, observe.metrics_path, exporter_render(self.metrics_exporter)
        )
        self.metrics_url = port.url + observe.metrics_path
        logging.getLogger("aeros").info("metrics on %s", self.metrics_url)
        return port

    def _seal_for_own_server(self) -> None:
        """From now on aeros' own server serves this app (the caller holds ``_runner_lock``).

        No more ``add_middleware`` (the workers and the stack see the layers added until now),
        and the stack is rebuilt once with ``server: aeros`` (if wanted).
        """
        self._sealed = True
        if not self._own_server:
            self._own_server = True
            self._stack = None
            self._server_stack = self._enter

    def _header_pairs(self, *, own_server: bool) -> Headers:
        """The global headers, with ``server: aeros`` when wanted and ``own_server`` serves.

        Under an external uvicorn/hypercorn that server sends its own Server header.
        """
        if self._server_header and own_server:
            return [*self._response_headers, (b"server", b"aeros")]
        return self._response_headers

    def _answer_headers(
        self,
    ) -> tuple[tuple[tuple[bytes, bytes], ...], tuple[tuple[bytes, bytes], ...]]:
        """The headers of the answers aeros' server makes itself (413, 408, 503, ...), and
        those its 500 adds for a request a trusted proxy says came over HTTPS.

        HSTS (``_https_headers``) is among the first when the server itself serves HTTPS
        (every request it answers came over TLS), else the second.
        """
        pairs = tuple(self._header_pairs(own_server=True))  # only aeros' server makes them
        https = tuple(self._https_headers)
        if self.server_config.ssl_certfile is not None:
            return (*pairs, *https), ()
        return pairs, https

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
            self._seal_for_own_server()
            metrics_dir = self._metrics_dir_for(count)  # the workers must inherit it
            self._prepared_metrics_dir = metrics_dir
        helper = fork_server_for(self, count, self._start_worker_logging)
        with self._runner_lock:
            previous, self._prepared_fork_server = self._prepared_fork_server, helper
        if previous is not None:
            previous.close()

    def discard_prepared_workers(self) -> None:
        """Let a helper from :meth:`prepare_workers` go when ``run_server()`` will not run."""
        with self._runner_lock:
            previous, self._prepared_fork_server = self._prepared_fork_server, None
            metrics_dir, self._prepared_metrics_dir = self._prepared_metrics_dir, None
        if previous is not None:
            previous.close()
        if metrics_dir is not None:
            metrics_dir.close()

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
