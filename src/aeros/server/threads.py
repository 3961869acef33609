"""Serve in a background thread: the ``serve_in_thread`` context manager and ``AdvancedThread``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Protocol

from aeros.awaiting import where_tasks_wait
from aeros.errors import ConfigurationError
from aeros.server.config import check_host
from aeros.server.reaping import KILL_MARGIN
from aeros.server.runner import bind_socket

__all__ = ["AdvancedThread", "serve_in_thread", "serving_in_this_thread"]

logger = logging.getLogger("aeros.server")

_STOP_MARGIN = 2 * KILL_MARGIN
"""Seconds past the drain (``shutdown_delay`` + ``graceful_timeout``) that ``serve_in_thread``
waits for its server to stop: workers late to drain get KILL_MARGIN, then are killed and get
KILL_MARGIN again to be reaped (the supervisor's bound)."""


@contextlib.contextmanager
def serve_in_thread(app: Any, *, host: str, port: int, timeout: float) -> Iterator[str]:
    """Serve ``app`` in a thread for the ``with`` block; yields the base URL.

    The socket is bound here, before the thread starts, so port 0 has no race. On exit the server
    is stopped and drained, the thread joined and the socket closed: nothing is left behind.
    Stopping waits as long as the server's drain may take (``shutdown_delay`` +
    ``graceful_timeout``, plus a margin), not ``timeout``, which bounds the start only.

    Raises:
        ConfigurationError: ``host`` is not an IP address or a host name.
        RuntimeError: the server did not start within ``timeout`` seconds, or its thread died
            (the thread's exception is chained), or it did not stop within its drain bound.
            An exception raised in the ``with`` block is never replaced by the last one: a
            server that does not stop is then logged, and the block's exception propagates.
    """
    check_host("serve_in_thread", host)
    config = getattr(app, "server_config", None)
    stop_bound = _stop_bound(config, timeout)
    # the workers' helper first (before the thread), and before the socket: it keeps no copy
    _prepare_workers(app)
    try:
        sock = bind_socket(host, port, getattr(config, "backlog", 2048))
    except BaseException:
        _discard_prepared_workers(app)
        raise
    started = threading.Event()
    urls: list[str] = []
    errors: list[BaseException] = []
    loops: list[asyncio.AbstractEventLoop] = []

    def on_started(url: str) -> None:
        with contextlib.suppress(RuntimeError):  # called on the server's loop: kept, to say
            loops.append(asyncio.get_running_loop())  # where it waits if it does not stop
        urls.append(url)
        started.set()

    def target() -> None:
        try:
            app.run_server(sock=sock, on_started=on_started)
        except BaseException as exc:  # reported to the caller below, not to threading's hook
            errors.append(exc)

    thread = threading.Thread(target=target, name="aeros-server", daemon=True)
    failed = False
    try:
        thread.start()
        deadline = time.monotonic() + timeout
        while not started.wait(0.02):
            if not thread.is_alive() or time.monotonic() > deadline:
                cause = errors[0] if errors else None
                raise RuntimeError(
                    f"the server did not start within {timeout} s"
                    if thread.is_alive()
                    else f"the server thread ended before it served: {cause!r}"
                ) from cause
        yield urls[0]
    except BaseException:
        failed = True
        raise
    finally:
        app.stop()
        thread.join(stop_bound)
        sock.close()
        _discard_prepared_workers(app)
        if thread.is_alive():
            problem = f"the server thread did not stop within {stop_bound:g} s"
            if loops:
                problem += f"; its tasks wait in: {where_tasks_wait(loops[0])}"
            if not failed:
                raise RuntimeError(problem)
            # the exception on its way out is the one the caller needs to see
            logger.error("serve_in_thread: %s (it keeps stopping in the background)", problem)


def _stop_bound(config: Any, timeout: float) -> float:
    """Seconds to wait for a stopped server's thread: its drain plus a margin, at least
    ``timeout``."""
    drain = getattr(config, "shutdown_delay", 0.0) + getattr(config, "graceful_timeout", 30.0)
    return max(timeout, drain + _STOP_MARGIN)


def _prepare_workers(app: Any, *args: Any, **kwargs: Any) -> None:
    """Have ``app`` fork its workers' helper now, before the server's thread exists.

    A WebServer forks its workers from a helper process that must be forked while the process
    has a single thread (see :mod:`aeros.server.forkserver`); in a thread ``run_server()`` is
    too late for that. Any other app is left alone.
    """
    prepare = getattr(app, "prepare_workers", None)
    if callable(prepare):
        prepare(*args, **kwargs)


def _discard_prepared_workers(app: Any) -> None:
    discard = getattr(app, "discard_prepared_workers", None)
    if callable(discard):
        discard()


class _Stoppable(Protocol):
    def stop(self) -> object: ...


# Servers running now, by the thread that runs them: AdvancedThread.stop() finds the server
# its target started however the target reached it (app.run_server, a lambda, a function).
_serving: dict[int, list[_Stoppable]] = {}
_serving_lock = threading.Lock()


@contextlib.contextmanager
def serving_in_this_thread(server: _Stoppable) -> Iterator[None]:
    """Register ``server`` as running in the calling thread for the ``with`` block.

    ``WebServer.run_server`` wraps its run in it. When the thread is an
    :class:`AdvancedThread` whose :meth:`~AdvancedThread.stop` came first, the server is
    stopped at once (it then returns without serving).
    """
    thread = threading.current_thread()
    ident = threading.get_ident()
    with _serving_lock:
        _serving.setdefault(ident, []).append(server)
        stop_now = isinstance(thread, AdvancedThread) and thread.stop_requested
    if stop_now:
        server.stop()
    try:
        yield
    finally:
        with _serving_lock:
            servers = _serving.get(ident, [])
            if server in servers:
                servers.remove(server)
            if not servers:
                _serving.pop(ident, None)


class AdvancedThread(threading.Thread):
    """A thread running a server whose :meth:`stop` shuts that server down gracefully.

    The target is any callable that runs a :class:`aeros.WebServer` in this thread:
    ``AdvancedThread(target=app.run_server)``, ``AdvancedThread(target=lambda:
    app.run_server(port=9000))`` or a function that builds the app and serves it. ``stop()``
    stops the servers running in this thread (no exception is injected into it) and waits
    until the thread has ended, so the same app can be served again right after. A ``stop()``
    made before the server accepts, or even before the thread starts, still stops it.
    """

    def __init__(
        self,
        group: None = None,
        target: Callable[..., object] | None = None,
        name: str | None = None,
        args: Iterable[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        daemon: bool | None = None,
    ) -> None:
        if target is not None and not callable(target):
            raise ConfigurationError(
                f"AdvancedThread(target={target!r}) must be a callable that runs a WebServer, "
                "such as app.run_server"
            )
        super().__init__(group, target, name, args, kwargs, daemon=daemon)
        # a bound method of an object with stop() (a WebServer, or a server of the user's own)
        owner_stop = getattr(getattr(target, "__self__", None), "stop", None)
        self._owner_stop: Callable[[], object] | None = owner_stop if callable(owner_stop) else None
        self._owner = getattr(target, "__self__", None)
        workers = dict(kwargs or {}).get("workers")
        positional = tuple(args)
        if workers is None and len(positional) >= 3:  # run_server(host, port, workers)
            workers = positional[2]
        self._workers = (
            workers if isinstance(workers, int) and not isinstance(workers, bool) else None
        )
        # app.run_server / app.run: its workers' helper can be forked in start(), before the
        # thread exists (any other target forks it in the thread, and Python 3.12+ warns)
        self._serves = getattr(target, "__name__", None) in ("run_server", "run")
        self.stop_requested = False
        """True once :meth:`stop` was called; a server starting in this thread then stops."""

    def start(self) -> None:
        """Start the thread; a WebServer target first forks its workers' helper, from here."""
        if self._serves:
            _prepare_workers(self._owner, self._workers)
        super().start()

    def run(self) -> None:
        """Run the target unless :meth:`stop` came first."""
        try:
            with _serving_lock:
                if self.stop_requested:
                    return
            super().run()
        finally:
            _discard_prepared_workers(self._owner)

    def stop(self, timeout: float | None = None) -> None:
        """Stop the server this thread runs, gracefully, and wait until the thread has ended.

        Idempotent and safe from any thread. In-flight requests get the server's
        ``graceful_timeout`` to finish. Called from the thread itself, it only asks.

        Args:
            timeout: seconds to wait for the server to stop and the thread to end; None (the
                default) waits as long as the drain takes.

        Raises:
            TimeoutError: the thread was still running after ``timeout`` seconds (the server
                keeps stopping; call ``stop()`` or ``join()`` again to wait more).
        """
        with _serving_lock:
            self.stop_requested = True
            servers = list(_serving.get(self.ident, ())) if self.ident is not None else []
        for server in servers:
            server.stop()
        if self._owner_stop is not None and not servers:
            self._owner_stop()  # a server of the user's own: its stop() is all we know
        if self is threading.current_thread() or not self._started.is_set():  # type: ignore[attr-defined]
            return
        self.join(timeout)
        if self.is_alive():
            raise TimeoutError(
                f"AdvancedThread.stop(timeout={timeout!r}): {self.name} is still running "
                f"after {timeout} s (the server is draining); call stop() or join() again "
                "to wait longer"
            )
