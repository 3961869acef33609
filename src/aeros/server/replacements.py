"""Planned worker replacements: a worker that served its ``max_requests``, and each worker in
turn after SIGHUP, is replaced without lowering the capacity.

The replacement is started first, in a free slot of the fork helper (it has room for twice the
workers); the worker it replaces serves on and is told to drain (``RETIRE_SIGNAL``: it stops
accepting and finishes its requests in flight, with no ``shutdown_delay``) only once the
replacement accepts. SIGHUP replaces one worker at a time. :class:`Replacements` is the
:class:`~aeros.server.supervisor.Supervisor`'s part that does it, on the supervisor's loop.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from dataclasses import dataclass
from typing import Any

from aeros.server.signals import RETIRE_SIGNAL

__all__ = ["RETRY_DELAYS", "Replacements", "WorkerState", "slots_for"]

logger = logging.getLogger("aeros.server")

RETRY_DELAYS = (0.1, 0.2, 0.4, 0.8, 1.0)
"""Seconds before the next try after 1, 2, ... workers in a row failed to start."""


def slots_for(workers: int) -> int:
    """Processes the fork helper makes room for: each worker and its replacement at once."""
    return 2 * workers


@dataclass(slots=True, eq=False)  # compared by identity: the links would recurse
class WorkerState:
    """What the supervisor knows of one worker process."""

    pid: int
    killed: bool = False
    seen_ready: bool = False
    replaces: WorkerState | None = None
    """The worker this one takes over from, told to drain once this one accepts."""
    replaced_by: WorkerState | None = None
    """Its replacement, starting."""
    draining_since: float | None = None
    """When it was told to drain (replaced); it is no longer counted as serving."""
    why: str = ""
    """Why it is being replaced (logged)."""


class Replacements:
    """The supervisor's planned replacements (the attributes are the supervisor's own)."""

    _slots: list[WorkerState | None]
    _retiring: Any
    _respawn_at: dict[int, float]
    _restart_queue: list[WorkerState]
    _retire_after: float

    def _spawn(self, slot: int) -> WorkerState | None:
        raise NotImplementedError

    def handle_sighup(self) -> bool:
        """SIGHUP: replace every worker, one at a time, each after its replacement accepts.

        The replacements are forked by the same helper, from the app as it was loaded at
        start: fresh processes (memory, connections), not new code (that is SIGUSR2).
        """
        serving = [w for w in self._slots if w is not None and w.draining_since is None]
        queued = {id(w) for w in self._restart_queue}
        self._restart_queue.extend(w for w in serving if id(w) not in queued)
        logger.info("Received SIGHUP: replacing %d worker(s) one by one", len(serving))
        return False

    def _replace_due(self) -> None:
        """Start replacements for the workers that served their quota, and for the next one
        SIGHUP queued (one at a time); no more than the helper's slots allow."""
        if time.monotonic() < self._retire_after:
            return
        for slot, worker in enumerate(self._slots):
            if worker is not None and self._retiring[slot] and self._replaceable(worker):
                self._start_replacement(worker, "max_requests")
        while self._restart_queue:
            if any(w is not None and w.replaced_by for w in self._slots):
                return  # one by one: the previous one is not ready yet
            worker = self._restart_queue[0]
            if self._replaceable(worker) and not self._start_replacement(worker, "SIGHUP"):
                return  # no free slot: some worker is still draining
            self._restart_queue.pop(0)

    def _replaceable(self, worker: WorkerState) -> bool:
        return (
            worker in self._slots
            and worker.draining_since is None
            and worker.replaced_by is None
            and worker.seen_ready
            and not worker.killed
        )

    def _start_replacement(self, worker: WorkerState, why: str) -> bool:
        free = [slot for slot, w in enumerate(self._slots) if w is None]
        free = [slot for slot in free if slot not in self._respawn_at]
        if not free:
            return False
        slot = free[0]
        new = self._spawn(slot)
        if new is None:
            return False
        new.replaces, worker.replaced_by, worker.why = worker, new, why
        return True

    def _retire(self, worker: WorkerState) -> None:
        """``worker``'s replacement accepts: it drains now (SIGTERM), no longer counted."""
        worker.replaced_by = None
        if worker not in self._slots:
            return
        worker.draining_since = time.monotonic()
        logger.info("Worker [pid %d] replaced (%s): draining it", worker.pid, worker.why)
        with contextlib.suppress(ProcessLookupError):  # no shutdown_delay: the server stays up
            os.kill(worker.pid, RETIRE_SIGNAL)

    def _kill_if_late(self, worker: WorkerState, now: float, limit: float) -> None:
        """SIGKILL a replaced worker still draining ``limit`` seconds after it was told to."""
        if worker.draining_since is not None and now - worker.draining_since > limit:
            logger.warning("Worker [pid %d] did not drain in time; killing it", worker.pid)
            worker.killed = True
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.pid, signal.SIGKILL)
