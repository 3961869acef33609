"""Fork N workers serving one inherited socket; replace dead or hung ones; drain them on stop.

uvicorn's supervisor shape: signal handlers only enqueue, one loop in the parent dispatches
``handle_<event>()``, reaps exited workers and checks heartbeats. Workers are forked, so they
inherit the app object (no import string), by a single-threaded helper
(:class:`~aeros.server.forkserver.ForkServer`) that was forked before aeros started any thread:
the supervisor's own process has threads, and forking there could deadlock a worker (Python
3.12+ warns about exactly that). The listening socket is passed to each worker as a
descriptor. Each worker's event loop writes a timestamp into shared memory
(:class:`~aeros.server.worker.WorkerLink`);
a worker whose loop stops writing for ``worker_healthcheck_timeout`` seconds is blocked, and is
killed and replaced. Workers that die before they ever serve are start failures: they are
retried with a growing delay, and after
:data:`~aeros.server.reaping.START_FAILURE_LIMIT` in a row the parent gives up with exit
status :data:`EXIT_CRASH_LOOP` instead of respawning forever (:mod:`aeros.server.reaping`).

Planned replacements never lower the capacity: a worker that served its ``max_requests`` (it
raises a shared flag), or each worker in turn after SIGHUP, gets its replacement started first,
and is told to drain (SIGTERM: it stops accepting and finishes its requests in flight) only once
the replacement accepts (:mod:`aeros.server.replacements`); the helper has room for twice
``workers`` processes for that overlap.
SIGUSR2 hands the workers over to a fresh image of the server (:mod:`aeros.server.handover`);
workers still draining then are left to the fork helper, which kills them at their deadline.
SIGUSR1, a worker's "drain now", is only logged here: its default action would end the server.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import selectors
import signal
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

from aeros.server import peers, signals
from aeros.server.config import ServerConfig
from aeros.server.forkserver import ForkServer
from aeros.server.handover import Handover
from aeros.server.reaping import KILL_MARGIN, Reaping, WorkerObserver
from aeros.server.replacements import WorkerState, slots_for

__all__ = [
    "EXIT_CRASH_LOOP",
    "Supervisor",
    "WorkerObserver",
    "can_fork",
    "slots_for",
]

logger = logging.getLogger("aeros.server")

EXIT_CRASH_LOOP = 3
"""Exit status of the parent when workers keep failing at start (uvicorn's STARTUP_FAILURE)."""
_TICK = 0.1


def can_fork() -> bool:
    """Whether this platform can fork worker processes (POSIX; not Windows)."""
    return hasattr(os, "fork") and sys.platform != "win32"


class Supervisor(Reaping):
    """Run ``config.workers`` forked processes serving one socket until :meth:`stop` or a signal.

    Args:
        config: the run's configuration: ``workers``, ``graceful_timeout`` (each worker's drain,
            plus :data:`KILL_MARGIN`), ``worker_healthcheck_timeout`` (seconds without a
            heartbeat after which a worker is killed); sent to every new worker.
        sock: the bound, listening socket the workers serve.
        fork_server: the helper that forks the workers (its ``slots`` are
            :func:`slots_for` the workers); the supervisor closes it when it returns, or hands
            it over on SIGUSR2 (:attr:`handing_over`).
        on_started: called once in the parent when every worker accepts connections.
        handover: the workers of the previous image of this process (after a SIGUSR2
            re-exec), told to drain once this run's workers all accept.
        can_reexec: whether SIGUSR2 may re-execute the process: only when the server bound
            (or inherited) its socket itself; one passed in by the caller is bound again by
            the caller's code, which a re-exec would run again.
        observer: told of every worker started and exited (a :class:`WorkerObserver`).
    """

    def __init__(
        self,
        config: ServerConfig,
        *,
        sock: socket.socket,
        fork_server: ForkServer,
        on_started: Callable[[], None] | None = None,
        handover: Handover | None = None,
        can_reexec: bool = True,
        observer: WorkerObserver | None = None,
    ) -> None:
        self.config = config
        self.can_reexec = can_reexec
        self.observer = observer
        self.workers = config.workers
        self.sock = sock
        self.fork_server = fork_server
        self.graceful_timeout = config.graceful_timeout
        self.healthcheck_timeout = config.worker_healthcheck_timeout
        self.on_started = on_started
        self._events: queue.SimpleQueue[str] = queue.SimpleQueue()  # put() is reentrant
        # put() is followed by a byte on this pair, so the loop's select() wakes at once
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_w.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._publications: queue.SimpleQueue[tuple[peers.Message, Callable[[], None]]]
        self._publications = queue.SimpleQueue()
        self.relay = peers.PeerRelay()
        self._beats: Any = fork_server.beats
        self._ready: Any = fork_server.ready
        self._retiring: Any = fork_server.retiring
        self._slots: list[WorkerState | None] = [None] * slots_for(self.workers)
        self._restart_queue: list[WorkerState] = []  # SIGHUP: replaced one by one
        self._retire_after = 0.0  # a failed replacement delays the next one
        self.previous = handover
        self._previous_deadline = float("inf")
        self.handing_over: Handover | None = None
        """Set when SIGUSR2 ended the run: the workers left serving for the next image."""
        self._respawn_at: dict[int, float] = {}
        self._failures = 0
        self._announced = False
        self._force = False
        self.failed_reason: str | None = None

    # ---- control (any thread, signal handlers) ------------------------------------------

    def stop(self) -> None:
        """Drain every worker and return from :meth:`run`; safe from any thread, idempotent."""
        self._post("stop")

    def _on_signal(self, sig: int, frame: object) -> None:
        self._post(signals.signal_name(sig))  # only enqueue: the loop does the work

    def publish(self, message: peers.Message, done: Callable[[], None]) -> None:
        """Send ``message`` to every worker, then call ``done()``; safe from any thread."""
        self._publications.put((message, done))
        self._post("publish")

    def handle_publish(self) -> bool:
        """Relay the messages published in this process (``app.clear_cache()`` here)."""
        while True:
            try:
                message, done = self._publications.get_nowait()
            except queue.Empty:
                return False
            self.relay.broadcast(message, done)

    def _post(self, event: str) -> None:
        self._events.put(event)
        with contextlib.suppress(OSError):  # full (a wake-up is pending anyway) or closed
            self._wake_w.send(b"\0")

    # ---- the parent's loop ----------------------------------------------------------------

    def run(self) -> None:
        """Fork the workers and supervise them until stopped.

        Raises:
            SystemExit: with :data:`EXIT_CRASH_LOOP` when workers keep failing at start.
        """
        if self.fork_server.slots != slots_for(self.workers):
            raise ValueError(
                f"Supervisor(workers={self.workers}) needs a ForkServer with "
                f"{slots_for(self.workers)} slots; got {self.fork_server.slots}"
            )
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._selector.register(self.fork_server, selectors.EVENT_READ, "exits")
        watched = (*signals.SHUTDOWN_SIGNALS, *signals.RESTART_SIGNALS, *signals.IGNORED_SIGNALS)
        with signals.capture(watched, self._on_signal):
            try:
                for slot in range(self.workers):
                    self._spawn(slot)
                self._supervise()
            finally:
                try:
                    if self.handing_over is None:
                        self._drain()
                finally:
                    self.relay.close()
                    while not self._publications.empty():  # nobody is left to apply them
                        self._publications.get_nowait()[1]()
                    if self.handing_over is None:
                        self.fork_server.close()
                    self._selector.close()
                    self._wake_r.close()
                    self._wake_w.close()
        if self.failed_reason is not None:
            logger.critical("Stopping: %s", self.failed_reason)
            raise SystemExit(EXIT_CRASH_LOOP)

    def _supervise(self) -> None:
        while True:
            for key, _mask in self._selector.select(_TICK):
                if key.data == "wake":
                    with contextlib.suppress(BlockingIOError):
                        self._wake_r.recv(512)
                elif isinstance(key.data, int):
                    self.relay.on_readable(key.data)
            while True:
                try:
                    event = self._events.get_nowait()
                except queue.Empty:
                    break
                handler = getattr(self, f"handle_{event.lower()}", None)
                if handler is not None and handler():
                    return
            self._reap()
            if self.failed_reason is not None:
                return
            self._respawn_due()
            self._check_health()
            self._replace_due()

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

    def handle_sigusr1(self) -> bool:
        """SIGUSR1: ignored with a warning. It tells a *worker* to drain; gunicorn users send it
        to the main pid to reopen log files, which aeros does not do on a signal (each process
        opens its log files when it starts), and its default action would end this process."""
        logger.warning(signals.IGNORED_WARNING, "SIGUSR1")
        return False

    def handle_sigusr2(self) -> bool:
        """SIGUSR2: re-execute the server with the code now on disk; the workers serve on until
        the new image's workers accept (:mod:`aeros.server.handover`)."""
        if not self.can_reexec:
            logger.warning(
                "Ignoring SIGUSR2: the listening socket was passed in (run_server(sock=...)); "
                "a re-exec needs the server to bind it (use SIGHUP to replace the workers)"
            )
            return False
        if self.previous is not None:
            logger.warning(
                "Ignoring SIGUSR2: the previous code's workers are still serving or draining; "
                "send it again once they are gone"
            )
            return False
        pids = tuple(w.pid for w in self._slots if w is not None and w.draining_since is None)
        logger.info(
            "Received SIGUSR2: re-executing %s; its %d worker(s) serve until the new ones accept",
            " ".join(sys.orig_argv),
            len(pids),
        )
        # Replaced workers still draining are not the new image's to retire: the helper, their
        # parent, kills each one still there at the deadline this loop would have applied, and
        # bounds the others' drain (SIGTERM: with shutdown_delay) should this process die.
        now = time.monotonic()
        draining = {
            w.pid: max(0.0, w.draining_since + self.retire_bound - now)
            for w in self._slots
            if w is not None and w.draining_since is not None
        }
        if draining:
            logger.info(
                "%d replaced worker(s) still draining [pids %s]: killed if not gone by their "
                "deadline",
                len(draining),
                ", ".join(map(str, draining)),
            )
        helper = self.fork_server.hand_over(draining, self.stop_bound)
        self.handing_over = Handover(helper, pids)
        return True

    # ---- workers ----------------------------------------------------------------------------

    def _spawn(self, slot: int) -> WorkerState | None:
        self._beats[slot] = time.monotonic()  # the grace period starts at the fork
        self._ready[slot] = 0
        self._retiring[slot] = 0
        mine, theirs = peers.socket_pair()
        try:
            pid = self.fork_server.spawn(slot, self.config, self.sock, theirs)
        except OSError:
            mine.close()
            self.failed_reason = "the helper process that forks the workers exited"
            return None
        finally:
            theirs.close()  # the worker has its copy
        self.relay.add(slot, mine)
        self._selector.register(mine, selectors.EVENT_READ, slot)
        worker = self._slots[slot] = WorkerState(pid)
        logger.info("Started worker %d [pid %d]", slot, pid)
        if self.observer is not None:
            self.observer.worker_started(slot, pid)
        return worker

    def _events_say(self, wanted: str) -> bool:
        """Whether ``wanted`` is among the queued events (the others are dropped: draining)."""
        found = False
        while True:
            try:
                found = self._events.get_nowait() == wanted or found
            except queue.Empty:
                return found

    # ---- shutdown -----------------------------------------------------------------------------

    def _drain(self) -> None:
        self._respawn_at.clear()
        # Close the parent's copy first: once the workers close theirs, new connections are
        # refused at once instead of waiting in a backlog nobody accepts from.
        self.sock.close()
        live = {worker.pid for worker in self._slots if worker is not None}
        if self.previous is not None and not self._announced:  # stopped before taking over
            self.previous.retire()
        for pid in live:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_bound
        while live and time.monotonic() < deadline and not self._force:
            live.difference_update(self._collect_exits(block=0.05))
            if live and self._events_say("SIGINT"):
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
        kill_deadline = time.monotonic() + KILL_MARGIN
        while live and time.monotonic() < kill_deadline:
            live.difference_update(self._collect_exits(block=0.05))
        if self.previous is not None:
            wait_until = time.monotonic() + self.graceful_timeout + KILL_MARGIN
            while not (reaped := self.previous.reap()) and time.monotonic() < wait_until:
                time.sleep(0.05)
            if not reaped:  # the helper still waits for them: these pids are theirs
                self.previous.kill()
        for slot in range(len(self._slots)):
            self._forget_channel(slot)
        self._slots = [None] * len(self._slots)
        logger.info("All workers stopped")
