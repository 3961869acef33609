"""The supervisor's reaping: exited workers collected, replaced or retried; hung ones killed.

A worker that dies after it served is replaced at once; one that dies before it ever served is
a start failure, retried with a growing delay (:data:`~aeros.server.replacements.RETRY_DELAYS`),
and after :data:`START_FAILURE_LIMIT` in a row the supervisor gives up. A worker whose event
loop stops writing its heartbeat for ``worker_healthcheck_timeout`` seconds is killed (and then
reaped like any other). :class:`Reaping` is the :class:`~aeros.server.supervisor.Supervisor`'s
part that does it, on the supervisor's loop; the attributes are the supervisor's own.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import signal
import time
from collections.abc import Callable
from typing import Any, Protocol

from aeros.server import peers, signals
from aeros.server.config import ServerConfig
from aeros.server.forkserver import ForkServer
from aeros.server.handover import Handover
from aeros.server.replacements import RETRY_DELAYS, Replacements, WorkerState

__all__ = ["KILL_MARGIN", "START_FAILURE_LIMIT", "Reaping", "WorkerObserver", "describe_exit"]

logger = logging.getLogger("aeros.server")

START_FAILURE_LIMIT = 5
"""Workers in a row that die before serving after which the parent gives up."""
KILL_MARGIN = 5.0
"""Seconds past ``graceful_timeout`` a draining worker gets before SIGKILL."""


class WorkerObserver(Protocol):
    """Told of every worker the supervisor starts and every one that exits (the metrics)."""

    def worker_started(self, slot: int, pid: int) -> None:
        """A worker was forked into ``slot``."""

    def worker_exited(self, pid: int, exit_code: int) -> None:
        """A worker exited (``os.waitstatus_to_exitcode``: 0 a clean stop, < 0 a signal)."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover (a recycled pid of another user)
        return False
    return True


def describe_exit(code: int) -> str:
    """``exit status 1`` or ``killed by SIGKILL`` for an ``os.waitstatus_to_exitcode`` value."""
    if code < 0:
        return f"killed by {signals.signal_name(-code)}"
    return f"exit status {code}"


class Reaping(Replacements):
    """Collect exited workers and act on each exit; kill workers that stopped beating."""

    config: ServerConfig
    fork_server: ForkServer
    observer: WorkerObserver | None
    workers: int
    graceful_timeout: float
    healthcheck_timeout: float
    on_started: Callable[[], None] | None
    previous: Handover | None
    failed_reason: str | None
    relay: peers.PeerRelay
    _selector: selectors.BaseSelector
    _beats: Any
    _ready: Any
    _failures: int
    _announced: bool
    _previous_deadline: float

    @property
    def retire_bound(self) -> float:
        """Seconds a replaced worker (told :data:`~aeros.server.signals.RETIRE_SIGNAL`: no
        ``shutdown_delay``) may take to drain before it is killed."""
        return self.graceful_timeout + KILL_MARGIN

    @property
    def stop_bound(self) -> float:
        """Seconds a worker told SIGTERM (``shutdown_delay``, then its drain) may take before
        it is killed."""
        return self.config.shutdown_delay + self.retire_bound

    def _collect_exits(self, block: float = 0.0) -> dict[int, int]:
        """Exit codes (``os.waitstatus_to_exitcode``) of workers that exited, by pid."""
        reports = self.fork_server.exits(block)
        if reports is None:  # the helper is gone, and with it the exit statuses of its workers
            if self.failed_reason is None:
                self.failed_reason = "the helper process that forks the workers exited"
            return {
                worker.pid: -signal.SIGKILL
                for worker in self._slots
                if worker is not None and not _alive(worker.pid)
            }
        exits = {pid: os.waitstatus_to_exitcode(status) for pid, status in reports}
        if self.observer is not None:
            for pid, code in exits.items():
                self.observer.worker_exited(pid, code)
        return exits

    def _reap(self) -> None:
        exited = self._collect_exits()
        for slot, worker in enumerate(self._slots):
            if worker is None:
                continue
            if worker.pid not in exited:
                if self._ready[slot] and not worker.seen_ready:
                    worker.seen_ready = True
                    self._failures = 0
                    if worker.replaces is not None:
                        self._retire(worker.replaces)
                        worker.replaces = None
                continue
            self._slots[slot] = None
            self._forget_channel(slot)
            self._on_exit(slot, worker, describe_exit(exited[worker.pid]))
        ready = sum(
            1
            for slot, worker in enumerate(self._slots)
            if worker is not None and worker.draining_since is None and self._ready[slot]
        )
        if not self._announced and ready >= self.workers:
            self._announced = True
            if self.previous is not None:
                self.previous.retire()
                # SIGTERM, which every earlier aeros understands (the previous image may be
                # one): their drain includes shutdown_delay
                self._previous_deadline = time.monotonic() + self.stop_bound
            if self.on_started is not None:
                self.on_started()
        if self.previous is not None and self._announced:
            if self.previous.reap():
                self.previous = None
            elif time.monotonic() > self._previous_deadline:
                logger.warning("The previous code's workers did not drain in time; killing them")
                self.previous.kill()
                self._previous_deadline = float("inf")

    def _on_exit(self, slot: int, worker: WorkerState, how: str) -> None:
        if worker.draining_since is not None:
            logger.info("Worker %d [pid %d] replaced (%s): %s", slot, worker.pid, worker.why, how)
            return
        if worker.replaced_by is not None:  # its replacement, starting, takes its place
            worker.replaced_by.replaces = None
            logger.error("Worker %d [pid %d] died (%s) while being replaced", slot, worker.pid, how)
            return
        old = worker.replaces
        if old is not None:  # a replacement that failed: the old worker serves on
            old.replaced_by = None
        if self._ready[slot]:
            logger.error(
                "Worker %d [pid %d] died (%s); starting a replacement", slot, worker.pid, how
            )
            if old is None:
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
        delay = RETRY_DELAYS[min(self._failures, len(RETRY_DELAYS)) - 1]
        if old is not None:
            # a planned replacement: the worker it replaces serves on, so a failing start
            # (a database briefly down) never stops a serving server; tried again later
            self._retire_after = time.monotonic() + delay
            if old.why == "SIGHUP":
                self._restart_queue.insert(0, old)
            return
        if self._failures >= START_FAILURE_LIMIT:
            self.failed_reason = (
                f"workers keep failing at start ({self._failures} in a row, the last {how}); "
                "see the errors above"
            )
            return
        self._respawn_at[slot] = time.monotonic() + delay

    def _forget_channel(self, slot: int) -> None:
        for key in list(self._selector.get_map().values()):
            if key.data == slot:
                self._selector.unregister(key.fileobj)
        self.relay.remove(slot)

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
            if worker.draining_since is not None:  # no heartbeat needed: its drain is bounded
                self._kill_if_late(worker, now, self.retire_bound)
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
