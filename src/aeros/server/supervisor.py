"""Fork N workers serving one inherited socket; replace dead or hung ones; drain them on stop.

uvicorn's supervisor shape: signal handlers only enqueue, one loop in the parent dispatches
``handle_<event>()``, reaps exited workers and checks heartbeats. Workers are ``os.fork()``-ed, so
they inherit the app object and the listening socket (no import string, no re-binding). Each
worker's event loop writes a timestamp into shared memory (:class:`WorkerLink`); a worker whose
loop stops writing for ``worker_healthcheck_timeout`` seconds is blocked, and is killed and
replaced. Workers that die before they ever serve are start failures: they are retried with a
growing delay, and after :data:`START_FAILURE_LIMIT` in a row the parent gives up with exit
status :data:`EXIT_CRASH_LOOP` instead of respawning forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import signal
import socket
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.sharedctypes import RawArray
from typing import TYPE_CHECKING, Any, NoReturn

from aeros.server import signals

if TYPE_CHECKING:
    from aeros.server.uvicorn_backend import AerosServer

__all__ = ["EXIT_CRASH_LOOP", "START_FAILURE_LIMIT", "Supervisor", "WorkerLink", "can_fork"]

logger = logging.getLogger("aeros.server")

START_FAILURE_LIMIT = 5
"""Workers in a row that die before serving after which the parent gives up."""
EXIT_CRASH_LOOP = 3
"""Exit status of the parent when workers keep failing at start (uvicorn's STARTUP_FAILURE)."""
KILL_MARGIN = 5.0
"""Seconds past ``graceful_timeout`` a draining worker gets before SIGKILL."""
_TICK = 0.1
_RETRY_DELAYS = (0.1, 0.2, 0.4, 0.8, 1.0)


def can_fork() -> bool:
    """Whether this platform can fork worker processes (POSIX; not Windows)."""
    return hasattr(os, "fork") and sys.platform != "win32"


def describe_exit(code: int) -> str:
    """``exit status 1`` or ``killed by SIGKILL`` for an ``os.waitstatus_to_exitcode`` value."""
    if code < 0:
        return f"killed by {signals.signal_name(-code)}"
    return f"exit status {code}"


class WorkerLink:
    """A worker's side of the health check: heartbeats and the "serving" flag, in shared memory."""

    def __init__(self, beats: Any, ready: Any, slot: int, parent_pid: int, interval: float) -> None:
        self._beats = beats
        self._ready = ready
        self.slot = slot
        self.parent_pid = parent_pid
        self.interval = interval

    def beat(self) -> None:
        """Record that this worker's event loop is running now."""
        self._beats[self.slot] = time.monotonic()

    def mark_ready(self) -> None:
        """Record that this worker accepts connections (its start succeeded)."""
        self.beat()
        self._ready[self.slot] = 1

    async def run(self, server: AerosServer) -> None:
        """Beat every ``interval`` seconds; stop the worker if the supervisor is gone."""
        while True:
            self.beat()
            if os.getppid() != self.parent_pid:
                # Orphaned (the parent was SIGKILLed): drain instead of serving unsupervised.
                server.request_stop("the supervisor exited")
            await asyncio.sleep(self.interval)


@dataclass(slots=True)
class _Worker:
    pid: int
    killed: bool = False
    seen_ready: bool = False


class Supervisor:
    """Run ``workers`` forked processes serving one socket until :meth:`stop` or a signal.

    Args:
        workers: number of worker processes.
        sock: the bound, listening socket the workers inherit.
        run_worker: called in each forked worker with its :class:`WorkerLink`; serves until
            stopped and returns the worker's exit status.
        graceful_timeout: seconds each worker gets to drain on stop (plus :data:`KILL_MARGIN`).
        healthcheck_timeout: seconds without a heartbeat after which a worker is killed.
        on_started: called once in the parent when every worker accepts connections.
    """

    def __init__(
        self,
        *,
        workers: int,
        sock: socket.socket,
        run_worker: Callable[[WorkerLink], int],
        graceful_timeout: float,
        healthcheck_timeout: float,
        on_started: Callable[[], None] | None = None,
    ) -> None:
        self.workers = workers
        self.sock = sock
        self.run_worker = run_worker
        self.graceful_timeout = graceful_timeout
        self.healthcheck_timeout = healthcheck_timeout
        self.on_started = on_started
        self._events: queue.SimpleQueue[str] = queue.SimpleQueue()  # put() is reentrant
        self._beats: Any = RawArray("d", workers)
        self._ready: Any = RawArray("b", workers)
        self._slots: list[_Worker | None] = [None] * workers
        self._respawn_at: dict[int, float] = {}
        self._failures = 0
        self._announced = False
        self._force = False
        self.failed_reason: str | None = None

    # ---- control (any thread, signal handlers) ------------------------------------------

    def stop(self) -> None:
        """Drain every worker and return from :meth:`run`; safe from any thread, idempotent."""
        self._events.put("stop")

    def _on_signal(self, sig: int, frame: object) -> None:
        self._events.put(signals.signal_name(sig))  # only enqueue: the loop does the work

    # ---- the parent's loop ----------------------------------------------------------------

    def run(self) -> None:
        """Fork the workers and supervise them until stopped.

        Raises:
            SystemExit: with :data:`EXIT_CRASH_LOOP` when workers keep failing at start.
        """
        handled = (*signals.SHUTDOWN_SIGNALS, signal.SIGCHLD)
        with signals.capture(handled, self._on_signal):
            try:
                for slot in range(self.workers):
                    self._spawn(slot)
                self._supervise()
            finally:
                self._drain()
        if self.failed_reason is not None:
            logger.critical("Stopping: %s", self.failed_reason)
            raise SystemExit(EXIT_CRASH_LOOP)

    def _supervise(self) -> None:
        while True:
            try:
                event = self._events.get(timeout=_TICK)
            except queue.Empty:
                event = "tick"
            handler = getattr(self, f"handle_{event.lower()}", None)
            if handler is not None and handler():
                return
            self._reap()
            if self.failed_reason is not None:
                return
            self._respawn_due()
            self._check_health()

    def handle_stop(self) -> bool:
        """``app.stop()``: drain."""
        logger.info("Stopping %d worker(s) (stop() called)", self.workers)
        return True

    def handle_sigterm(self) -> bool:
        """SIGTERM: drain."""
        logger.info("Received SIGTERM: stopping %d worker(s) gracefully", self.workers)
        return True

    def handle_sigint(self) -> bool:
        """SIGINT (Ctrl-C): drain; a second one during the drain kills the workers."""
        logger.info("Received SIGINT: stopping %d worker(s) gracefully", self.workers)
        return True

    def handle_sigbreak(self) -> bool:  # pragma: no cover (Windows has no fork)
        """SIGBREAK: drain."""
        return True

    # ---- workers ----------------------------------------------------------------------------

    def _spawn(self, slot: int) -> None:
        self._beats[slot] = time.monotonic()  # the grace period starts at the fork
        self._ready[slot] = 0
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()  # or buffered output would be written twice
        with warnings.catch_warnings():
            # Python 3.12+ warns that forking a threaded process may deadlock the child; the
            # worker touches only its own fresh state and re-creates logging first.
            warnings.filterwarnings("ignore", message=".*fork", category=DeprecationWarning)
            pid = os.fork()
        if pid == 0:
            self._child(slot)
        self._slots[slot] = _Worker(pid)
        logger.info("Started worker %d [pid %d]", slot, pid)

    def _child(self, slot: int) -> NoReturn:
        code = 1
        try:
            # Drop the parent's handlers: until uvicorn installs its own, a signal ends the
            # worker outright (nothing is in flight yet), instead of landing in the parent's
            # queue copy where nobody reads it.
            for sig in (*signals.SHUTDOWN_SIGNALS, signal.SIGCHLD):
                signal.signal(sig, signal.SIG_DFL)
            link = WorkerLink(
                self._beats,
                self._ready,
                slot,
                os.getppid(),
                interval=min(1.0, self.healthcheck_timeout / 4),
            )
            code = self.run_worker(link)
        except BaseException:
            with contextlib.suppress(BaseException):
                logger.exception("Worker %d [pid %d] crashed", slot, os.getpid())
        finally:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(BaseException):
                    stream.flush()
            os._exit(code)  # never return into the parent's stack (its finally blocks, atexit)

    def _reap(self) -> None:
        for slot, worker in enumerate(self._slots):
            if worker is None:
                continue
            try:
                pid, status = os.waitpid(worker.pid, os.WNOHANG)
            except ChildProcessError:  # reaped by someone else: its status is lost
                pid, status = worker.pid, 0
            if pid == 0:
                if self._ready[slot] and not worker.seen_ready:
                    worker.seen_ready = True
                    self._failures = 0
                continue
            self._slots[slot] = None
            self._on_exit(slot, worker, describe_exit(os.waitstatus_to_exitcode(status)))
        if not self._announced and all(
            worker is not None and self._ready[slot] for slot, worker in enumerate(self._slots)
        ):
            self._announced = True
            if self.on_started is not None:
                self.on_started()

    def _on_exit(self, slot: int, worker: _Worker, how: str) -> None:
        if self._ready[slot]:
            logger.error(
                "Worker %d [pid %d] died (%s); starting a replacement", slot, worker.pid, how
            )
            self._spawn(slot)
            return
        self._failures += 1
        logger.error(
            "Worker %d [pid %d] exited before it started serving (%s); "
            "%d start failure(s) in a row",
            slot,
            worker.pid,
            how,
            self._failures,
        )
        if self._failures >= START_FAILURE_LIMIT:
            self.failed_reason = (
                f"workers keep failing at start ({self._failures} in a row, the last {how}); "
                "see the errors above"
            )
            return
        delay = _RETRY_DELAYS[min(self._failures, len(_RETRY_DELAYS)) - 1]
        self._respawn_at[slot] = time.monotonic() + delay

    def _respawn_due(self) -> None:
        now = time.monotonic()
        for slot, when in list(self._respawn_at.items()):
            if when <= now:
                del self._respawn_at[slot]
                self._spawn(slot)

    def _check_health(self) -> None:
        now = time.monotonic()
        for slot, worker in enumerate(self._slots):
            if worker is None or worker.killed:
                continue
            silent = now - self._beats[slot]
            if silent > self.healthcheck_timeout:
                logger.error(
                    "Worker %d [pid %d] sent no heartbeat for %.1fs (event loop blocked?); "
                    "killing it",
                    slot,
                    worker.pid,
                    silent,
                )
                worker.killed = True
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.pid, signal.SIGKILL)

    # ---- shutdown -----------------------------------------------------------------------------

    def _drain(self) -> None:
        self._respawn_at.clear()
        # Close the parent's copy first: once the workers close theirs, new connections are
        # refused at once instead of waiting in a backlog nobody accepts from.
        self.sock.close()
        live = {worker.pid for worker in self._slots if worker is not None}
        for pid in live:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.graceful_timeout + KILL_MARGIN
        while live and time.monotonic() < deadline and not self._force:
            for pid in list(live):
                with contextlib.suppress(ChildProcessError):
                    if os.waitpid(pid, os.WNOHANG)[0] == 0:
                        continue
                live.discard(pid)
            if live:
                with contextlib.suppress(queue.Empty):
                    if self._events.get(timeout=0.05) == "SIGINT":
                        logger.warning("Second SIGINT: killing %d worker(s) now", len(live))
                        self._force = True
        for pid in live:
            if not self._force:
                logger.warning(
                    "Worker [pid %d] did not stop within %gs; killing it",
                    pid,
                    self.graceful_timeout + KILL_MARGIN,
                )
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        self._slots = [None] * self.workers
        logger.info("All workers stopped")
