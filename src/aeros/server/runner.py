"""Run an ASGI app with uvicorn in this process (minimal; the server helper extends it)."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable
from typing import Any

import uvicorn

from aeros.server.config import ServerConfig

__all__ = ["Runner", "bind_socket"]


def bind_socket(host: str, port: int, backlog: int) -> socket.socket:
    """Bind and listen on ``host:port`` (IPv6 when the host has a colon)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def base_url(sock: socket.socket, ssl: bool) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"{'https' if ssl else 'http'}://{shown}:{port}"


class Runner:
    """Serve ``app`` until :meth:`stop` or a signal (main thread only)."""

    def __init__(
        self,
        app: Any,
        config: ServerConfig,
        *,
        sock: socket.socket | None = None,
        on_started: Callable[[str], None] | None = None,
        worker_init: Callable[[], Any] | None = None,
    ) -> None:
        self.app = app
        self.config = config
        self.sock = sock
        self.on_started = on_started
        self.worker_init = worker_init
        self._server: uvicorn.Server | None = None
        self._stop_requested = threading.Event()

    def run(self) -> None:
        cfg = self.config
        owns_socket = self.sock is None
        sock = self.sock or bind_socket(cfg.host, cfg.port, cfg.backlog)
        try:
            uv = uvicorn.Config(
                self.app,
                lifespan="on",
                log_config=None,
                access_log=False,
                server_header=False,
                backlog=cfg.backlog,
                timeout_keep_alive=int(cfg.keep_alive_timeout),
                timeout_graceful_shutdown=int(cfg.graceful_timeout),
                limit_concurrency=cfg.max_concurrent_requests,
                ssl_certfile=cfg.ssl_certfile,
                ssl_keyfile=cfg.ssl_keyfile,
                proxy_headers=cfg.proxy_headers,
                forwarded_allow_ips=list(cfg.forwarded_allow_ips or ()),
            )
            server = uvicorn.Server(uv)
            self._server = server
            if self._stop_requested.is_set():
                return
            url = base_url(sock, cfg.ssl_certfile is not None)

            async def serve() -> None:
                task = asyncio.ensure_future(server.serve(sockets=[sock]))
                while not server.started and not task.done():  # noqa: ASYNC110 (uvicorn has no event)
                    await asyncio.sleep(0.01)
                if server.started and self.on_started is not None:
                    self.on_started(url)
                await task

            asyncio.run(serve())
        finally:
            self._server = None
            if owns_socket:
                sock.close()

    def stop(self) -> None:
        self._stop_requested.set()
        server = self._server
        if server is not None:
            server.should_exit = True
