"""The separate metrics port (``WebServer(metrics_port=...)``): a small threaded HTTP server in
the process that runs ``run_server()`` (the supervisor, with workers), so the public port never
exposes the metrics. With workers it reads the multiprocess directory; in one process, the
app's metrics as of their last flush (at most a second old).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from aeros.metrics.export import CONTENT_TYPE

__all__ = ["MetricsPort"]


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not logged (Prometheus scrapes every few seconds)."""


class MetricsPort:
    """Serve ``render()`` at ``path`` on ``host:port`` (0: a free port) in a daemon thread.

    Args:
        host: address to bind (the app's host).
        port: TCP port; 0 picks a free one (:attr:`port` tells which).
        path: the metrics path; any other path is 404.
        render: returns the text exposition; called in the server's thread.
    """

    def __init__(self, host: str, port: int, path: str, render: Callable[[], bytes]) -> None:
        def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            if environ.get("PATH_INFO") != path:
                start_response("404 Not Found", [("Content-Type", "text/plain")])
                return [b"Not Found\n"]
            body = render()
            start_response(
                "200 OK",
                [("Content-Type", CONTENT_TYPE.decode()), ("Content-Length", str(len(body)))],
            )
            return [body]

        self.server = make_server(
            host, port, app, server_class=_Server, handler_class=_QuietHandler
        )
        self.port: int = self.server.server_port
        self.host = host
        self._thread = threading.Thread(
            target=self.server.serve_forever, name="aeros-metrics", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """``http://host:port/path`` of the metrics."""
        shown = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{shown}:{self.port}"

    def close(self) -> None:
        """Stop serving and release the port."""
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)
