"""Serve the app ``aeros run`` found: a WebServer with its own server, any other ASGI app here.

A :class:`aeros.WebServer` has ``run_server()``; :func:`serve_asgi` is the same server for every
other app (a plain Quart or Starlette app, a bare callable): the access log and a tolerant
lifespan in front, the given server and log configuration, workers and signals handled by
:class:`aeros.server.runner.Runner`. :func:`serve_app` applies the command line's options over
either and serves.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from aeros.logging.config import LogConfig, configure_logging, log_banner
from aeros.middleware.access_log import AccessLogMiddleware
from aeros.middleware.concurrency_limit import ConcurrencyLimitMiddleware
from aeros.middleware.lifespan import OptionalLifespanMiddleware
from aeros.server.config import QUART_LIMIT_KEYS, ServerConfig
from aeros.server.runner import Runner

__all__ = ["serve_app", "serve_asgi"]


def serve_asgi(app: Any, config: ServerConfig, logs: LogConfig) -> None:
    """Serve ``app`` until SIGINT/SIGTERM; returns after a graceful drain.

    Args:
        app: any ASGI app; one that refuses the lifespan protocol is served without it.
        config: host, port, workers, TLS, limits... (``ServerConfig()`` for the defaults).
        logs: the log configuration; with ``access_log`` on, one line per request.
    """
    asgi: Any = OptionalLifespanMiddleware(app)
    if config.max_concurrent_requests is not None:  # as in a WebServer: inside the access log
        asgi = ConcurrencyLimitMiddleware(asgi, config.max_concurrent_requests)
    if logs.access_log:
        asgi = AccessLogMiddleware(asgi, logs)
    runner = Runner(
        asgi,
        config,
        on_started=lambda url: log_banner(url, config.workers, None, ()),
        worker_init=lambda: configure_logging(logs),
    )
    handle = configure_logging(logs)
    try:
        runner.run()
    finally:
        handle.stop()
    runner.reexec_if_requested()  # SIGUSR2: the logs are written; never returns then


def serve_app(app: Any, options: Mapping[str, Any], log_options: Mapping[str, Any]) -> None:
    """Serve ``app`` with ``options`` over its own configuration; returns after the drain.

    An app that carries aeros' configuration (a WebServer: ``server_config``, ``log_config``
    and ``run_server()``) keeps what it was built with where no option is given; any other
    ASGI app starts from the defaults.

    Args:
        app: the app to serve.
        options: :class:`ServerConfig` and :class:`~aeros.server.config.Limits` fields by name
            (None: not given).
        log_options: :class:`LogConfig` fields by name (None: not given).
    """
    logs = {name: value for name, value in log_options.items() if value is not None}
    if isinstance(getattr(app, "server_config", None), ServerConfig) and isinstance(
        getattr(app, "log_config", None), LogConfig
    ):
        app.server_config = app.server_config.with_options(options)
        app.log_config = dataclasses.replace(app.log_config, **logs)
        for name, key in QUART_LIMIT_KEYS.items():
            if options.get(name) is not None:  # later than the app's own: it wins, as in Quart
                app.config[key] = options[name]
        # the run's own overrides, as run_server() takes them (its config holds them too)
        app.run_server(
            host=options.get("host"), port=options.get("port"), workers=options.get("workers")
        )
        return
    serve_asgi(app, ServerConfig().with_options(options), dataclasses.replace(LogConfig(), **logs))
