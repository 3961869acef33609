"""Run an ASGI app: choose one in-process server or N forked workers under a supervisor.

The whole start-up reads downward: :class:`Runner` binds the socket and picks the shape; one
process builds an :class:`~aeros.server.uvicorn_backend.AerosServer` from the app and its
config, workers go through :class:`~aeros.server.supervisor.Supervisor` and the fork helper
(:mod:`aeros.server.forkserver`) to :func:`aeros.server.worker.worker_main`, which builds the
same server in each worker. Serving in a thread is the caller's choice
(:mod:`aeros.server.threads`): the runner then serves in that thread.
"""

from __future__ import annotations

import errno
import logging
import socket
import threading
from collections.abc import Callable
from functools import partial
from typing import Any

from aeros.server import peers, signals
from aeros.server.config import ServerConfig
from aeros.server.forkserver import ForkServer
from aeros.server.handover import Handover, inherited_socket, reexec
from aeros.server.supervisor import Supervisor, WorkerObserver, can_fork, slots_for
from aeros.server.uvicorn_backend import AerosServer, check_ssl
from aeros.server.worker import worker_main

__all__ = ["Runner", "base_url", "bind_socket", "fork_server_for"]

logger = logging.getLogger("aeros.server")


def bind_socket(host: str, port: int, backlog: int) -> socket.socket:
    """Bind and listen on ``host:port`` (IPv6 when the host has a colon).

    Raises:
        OSError: the address cannot be bound (in use, not this machine's, a host name that
            does not resolve); the same subclass and ``errno`` as the system's error, with a
            message naming ``host:port`` and what to do.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise _bind_error(exc, host, port) from exc
    sock.set_inheritable(True)
    return sock


def _bind_error(exc: OSError, host: str, port: int) -> OSError:
    """``exc`` again (same class and errno, so callers catching it still do) with a message
    that names the address and, for the usual causes, what to do."""
    shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    reason = exc.strerror or str(exc)
    advice = None
    if isinstance(exc, socket.gaierror):
        advice = f"{host!r} does not resolve to an IPv4 address (a host name is bound as IPv4)"
    elif exc.errno == errno.EADDRINUSE:
        advice = "another process listens there: stop it, or choose another port (0: any free)"
    elif exc.errno == errno.EACCES and 0 < port < 1024:
        advice = "ports below 1024 need privileges: choose a port of 1024 or more"
    elif exc.errno == errno.EADDRNOTAVAIL:
        advice = (
            "this machine has no such address: use one of its own, 127.0.0.1 (this machine "
            "only) or 0.0.0.0 (every interface)"
        )
    message = f"cannot listen on {shown}: {reason}" + (f"; {advice}" if advice else "")
    if exc.errno is None:
        return type(exc)(message)
    return type(exc)(exc.errno, message)


def base_url(sock: socket.socket, ssl: bool) -> str:
    """``http://127.0.0.1:8000`` for a socket bound there (``https`` when ``ssl``)."""
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"{'https' if ssl else 'http'}://{shown}:{port}"


def fork_server_for(
    app: Any, workers: int, worker_init: Callable[[], Any] | None = None
) -> ForkServer | None:
    """Fork the helper that will fork ``workers`` workers serving ``app``; None for one process.

    Call it while the process has no thread but the calling one (see
    :mod:`aeros.server.forkserver`): every worker is a copy of the process as it is now.
    """
    if workers <= 1 or not can_fork():
        return None
    return ForkServer(slots_for(workers), partial(worker_main, app, worker_init=worker_init))


class Runner:
    """Serve ``app`` until :meth:`stop` (any thread) or SIGINT/SIGTERM (main thread only).

    Args:
        app: the ASGI app (a WebServer; forked workers inherit it, no import string needed).
        config: the server configuration.
        sock: an already bound listening socket; None binds ``config.host:config.port``.
        on_started: called once with the base URL when the server (every worker) accepts.
        worker_init: called first thing in each forked worker (sets up its logging); an
            object it returns with a ``stop()`` is stopped when the worker ends.
        fork_server: a helper already forked for this app by :func:`fork_server_for` (before
            the caller's thread started); used when its slots match the workers of this run,
            closed otherwise. The runner owns it from here on.
        worker_observer: told of every worker started and exited (the metrics count them).
    """

    def __init__(
        self,
        app: Any,
        config: ServerConfig,
        *,
        sock: socket.socket | None = None,
        on_started: Callable[[str], None] | None = None,
        worker_init: Callable[[], Any] | None = None,
        fork_server: ForkServer | None = None,
        worker_observer: WorkerObserver | None = None,
    ) -> None:
        self.app = app
        self.worker_observer = worker_observer
        self.config = config
        self.sock = sock
        self.on_started = on_started
        self.worker_init = worker_init
        self.fork_server = fork_server
        self._lock = threading.Lock()
        self._stop_requested = False
        self._active: AerosServer | Supervisor | None = None
        self._reexec: tuple[socket.socket, Handover] | None = None

    def prepare(self) -> None:
        """Fork the workers' helper now, unless one is ready; a no-op for one process.

        Call it before anything starts a thread (the log listener): see
        :mod:`aeros.server.forkserver`.
        """
        workers = self.config.workers
        if self.fork_server is not None and self.fork_server.slots != slots_for(workers):
            self.close()
        if self.fork_server is None:
            self.fork_server = fork_server_for(self.app, workers, self.worker_init)

    def close(self) -> None:
        """Let the workers' helper go (the run closes it too); idempotent."""
        if self.fork_server is not None:
            self.fork_server.close()
            self.fork_server = None

    def run(self) -> None:
        """Serve until stopped; returns after a graceful drain.

        Raises:
            ConfigurationError: the TLS certificate or key cannot be loaded.
            StartupFailed: the app's lifespan startup failed (single process).
            SystemExit: workers keep failing at start (exit status 3).
        """
        cfg = self.config
        check_ssl(cfg)
        forked = cfg.workers > 1 and can_fork()
        if cfg.workers > 1 and not forked:
            logger.warning(
                "workers=%d needs os.fork(), which this platform lacks; serving with ONE "
                "process instead (run several instances behind a load balancer to scale)",
                cfg.workers,
            )
        owns_socket = self.sock is None
        sock = self.sock
        handover = None
        if sock is None and threading.current_thread() is threading.main_thread():
            # a re-exec of this process (SIGUSR2), or systemd socket activation: bind nothing
            sock = inherited_socket()
            handover = Handover.from_env()
            if sock is not None:
                logger.info("Serving the inherited listening socket (LISTEN_FDS)")
        sock = sock or bind_socket(cfg.host, cfg.port, cfg.backlog)
        url = base_url(sock, cfg.ssl_certfile is not None)
        try:
            if forked:
                self._run_workers(sock, url, handover)
            else:
                self._run_single(sock, url, handover)
        finally:
            with self._lock:
                self._active = None
            if owns_socket and self._reexec is None:
                sock.close()
            self.close()

    def reexec_if_requested(self) -> None:
        """After :meth:`run` returned on SIGUSR2: replace this process with a fresh run of its
        command line (:func:`aeros.server.handover.reexec`); never returns then. Call it once
        the logs are flushed; a no-op otherwise."""
        if self._reexec is None:
            return
        sock, handover = self._reexec
        try:
            reexec(sock, handover)
        except OSError as exc:
            handover.retire()  # the logs are closed: the exit status and stderr tell
            raise SystemExit(
                f"aeros: cannot re-execute the server ({exc}); workers drained"
            ) from exc

    def stop(self) -> None:
        """Stop gracefully; safe from any thread, idempotent, and effective before the start."""
        with self._lock:
            self._stop_requested = True
            active = self._active
        if active is not None:
            active.stop()

    def _announce(self, url: str) -> Callable[[], None]:
        def started() -> None:
            if self.on_started is not None:
                self.on_started(url)

        return started

    def _activate(self, server: AerosServer | Supervisor) -> bool:
        """Make ``server`` the one :meth:`stop` stops; False when a stop came first."""
        with self._lock:
            if self._stop_requested:
                return False
            self._active = server
            return True

    def _run_single(self, sock: socket.socket, url: str, handover: Handover | None) -> None:
        announce = self._announce(url)
        if self.config.max_requests:
            logger.warning(
                "max_requests=%d is ignored with one process (workers=1): nobody could take "
                "over while it restarts; use workers >= 2",
                self.config.max_requests,
            )

        def started() -> None:
            if handover is not None:  # the previous image's workers: this process takes over
                handover.retire()
            announce()

        server = AerosServer(self.app, self.config, on_started=started)
        if not self._activate(server):
            return
        # One process has nobody to hand over to or overlap with: the restart signals are
        # refused (their default action would end the process, dropping its requests), and
        # SIGUSR1 (a worker's "drain now", gunicorn's "reopen logs") is ignored as the
        # supervisor ignores it.
        refused = (*signals.RESTART_SIGNALS, *signals.IGNORED_SIGNALS)
        with signals.capture(refused, partial(_refuse_restart, server)):
            server.run(sockets=[sock])
        if handover is not None:
            handover.reap()

    def _run_workers(self, sock: socket.socket, url: str, handover: Handover | None) -> None:
        self.prepare()  # normally done already, before the caller started its threads
        if self.fork_server is None:  # pragma: no cover (run() checked can_fork())
            raise RuntimeError("no fork helper for workers > 1")
        supervisor = Supervisor(
            self.config,
            sock=sock,
            fork_server=self.fork_server,
            on_started=self._announce(url),
            handover=handover,
            can_reexec=self.sock is None,
            observer=self.worker_observer,
        )
        if not self._activate(supervisor):
            return
        # app.clear_cache() and friends called in this process reach every worker
        channel = peers.SupervisorPeers(supervisor.publish)
        peers.attach(self.app, channel)
        try:
            supervisor.run()
        finally:
            peers.detach(self.app, channel)
        if supervisor.handing_over is not None:
            self._reexec = (sock, supervisor.handing_over)


def _refuse_restart(server: AerosServer, sig: int, frame: object) -> None:
    def warn() -> None:
        if sig in signals.IGNORED_SIGNALS:
            logger.warning(signals.IGNORED_WARNING, signals.signal_name(sig))
            return
        logger.warning(
            "Ignoring %s: restarting without dropping requests needs workers >= 2 (one "
            "process has nobody to take over); stop and start it instead",
            signals.signal_name(sig),
        )

    # logged from the loop: a signal handler may interrupt a log call holding its queue's lock
    loop = server._loop  # set while serving: the handler is installed only then
    if loop is not None:
        loop.call_soon_threadsafe(warn)
