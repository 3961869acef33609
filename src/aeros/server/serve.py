"""Serve any ASGI app (a plain Quart or Starlette app, a bare callable) with aeros' server.

A :class:`aeros.WebServer` has ``run_server()``; this is the same server for every other app,
as ``aeros run`` uses it: the access log and a tolerant lifespan in front, the given server and
log configuration, workers and signals handled by :class:`aeros.server.runner.Runner`.
"""

from __future__ import annotations

from typing import Any

from aeros.logging.config import LogConfig, configure_logging, log_banner
from aeros.middleware.access_log import AccessLogMiddleware
from aeros.middleware.lifespan import OptionalLifespanMiddleware
from aeros.server.config import ServerConfig
from aeros.server.runner import Runner

__all__ = ["serve_asgi"]


def serve_asgi(app: Any, config: ServerConfig, logs: LogConfig) -> None:
    """Serve ``app`` until SIGINT/SIGTERM; returns after a graceful drain.

    Args:
        app: any ASGI app; one that refuses the lifespan protocol is served without it.
        config: host, port, workers, TLS, limits... (``ServerConfig()`` for the defaults).
        logs: the log configuration; with ``access_log`` on, one line per request.
    """
    asgi: Any = OptionalLifespanMiddleware(app)
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
