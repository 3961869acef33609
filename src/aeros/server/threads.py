"""Serve in a background thread: the ``serve_in_thread`` context manager and ``AdvancedThread``."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from aeros.server.runner import bind_socket

__all__ = ["AdvancedThread", "serve_in_thread"]

_STOP_RETRY_SECONDS = 10.0
"""How long AdvancedThread.stop() retries while its target has not reached a server yet."""


@contextlib.contextmanager
def serve_in_thread(app: Any, *, host: str, port: int, timeout: float) -> Iterator[str]:
    """Serve ``app`` in a thread for the ``with`` block; yields the base URL.

    The socket is bound here, before the thread starts, so port 0 has no race. On exit the server
    is stopped and drained, the thread joined and the socket closed: nothing is left behind.

    Raises:
        RuntimeError: the server did not start within ``timeout`` seconds, or its thread died
            (the thread's exception is chained).
    """
    config = getattr(app, "server_config", None)
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

    def on_started(url: str) -> None:
        urls.append(url)
        started.set()

    def target() -> None:
        try:
            app.run_server(sock=sock, on_started=on_started)
        except BaseException as exc:  # reported to the caller below, not to threading's hook
            errors.append(exc)

    thread = threading.Thread(target=target, name="aeros-server", daemon=True)
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
    finally:
        app.stop()
        thread.join(timeout)
        sock.close()
        _discard_prepared_workers(app)
        if thread.is_alive():
            raise RuntimeError(f"the server thread did not stop within {timeout} s")


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


class AdvancedThread(threading.Thread):
    """A thread running a server whose :meth:`stop` shuts that server down gracefully.

    ``AdvancedThread(target=app.run_server)``: ``stop()`` calls ``app.stop()`` (the owner of the
    bound-method target); no exception is injected into the thread. A ``stop()`` made before the
    server accepts, or even before the thread starts, still stops it.
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
        super().__init__(group, target, name, args, kwargs, daemon=daemon)
        owner = getattr(target, "__self__", None)
        stop = getattr(owner, "stop", None)
        if not callable(stop):
            raise TypeError(
                f"AdvancedThread(target={target!r}) needs a bound method of an object with "
                "stop(), such as app.run_server"
            )
        self._stop_owner: Callable[[], object] = stop
        self._owner = owner
        workers = dict(kwargs or {}).get("workers")
        positional = tuple(args)
        if workers is None and len(positional) >= 3:  # run_server(host, port, workers)
            workers = positional[2]
        self._workers = (
            workers if isinstance(workers, int) and not isinstance(workers, bool) else None
        )
        self._serves = getattr(target, "__name__", None) in ("run_server", "run")
        self._state_lock = threading.Lock()
        self._stop_requested = False
        self._target_entered = False

    def start(self) -> None:
        """Start the thread; a WebServer target first forks its workers' helper, from here."""
        if self._serves:
            _prepare_workers(self._owner, self._workers)
        super().start()

    def run(self) -> None:
        """Run the target unless :meth:`stop` came first."""
        try:
            with self._state_lock:
                if self._stop_requested:
                    return
                self._target_entered = True
            super().run()
        finally:
            _discard_prepared_workers(self._owner)

    def stop(self) -> None:
        """Stop the server this thread runs, gracefully; idempotent, safe from any thread.

        Returns once the stop is delivered; ``join()`` waits for the drain to finish.
        """
        with self._state_lock:
            self._stop_requested = True
            entered = self._target_entered
        if not entered:
            return
        # The target may not have registered its server yet; WebServer.stop() says whether it
        # reached one (False: not yet), so retry until it does or the target has returned.
        deadline = time.monotonic() + _STOP_RETRY_SECONDS
        while self._stop_owner() is False and self.is_alive() and time.monotonic() < deadline:
            time.sleep(0.005)
