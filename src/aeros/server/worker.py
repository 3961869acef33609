"""A forked worker's side: its body (one :class:`AerosServer` on the inherited socket) and its
heartbeat link with the supervisor.

The fork helper (:mod:`aeros.server.forkserver`) runs :func:`worker_main` in each new worker.
The worker serves the app with the run's :class:`~aeros.server.config.ServerConfig` (sent with
every spawn request), beats into shared memory so the supervisor sees its event loop is alive
(:class:`WorkerLink`), and joins the supervisor's peer channel (:mod:`aeros.server.peers`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import time
from collections.abc import Callable, Coroutine
from typing import Any

from aeros.server import peers
from aeros.server.config import ServerConfig
from aeros.server.forkserver import WorkerStart
from aeros.server.uvicorn_backend import AerosServer, StartupFailed

__all__ = ["EXIT_STARTUP_FAILED", "QUOTA_CHECK_INTERVAL", "WorkerLink", "quota", "worker_main"]

logger = logging.getLogger("aeros.server")

EXIT_STARTUP_FAILED = 3
"""Exit status of a worker whose app failed its lifespan startup."""
QUOTA_CHECK_INTERVAL = 0.1
"""Seconds between two looks at a worker's request count (``max_requests``): the count is the
one uvicorn keeps anyway, so the requests themselves pay nothing for it."""


class WorkerLink:
    """A worker's side of the health check: heartbeats and the "serving" flag, in shared memory."""

    def __init__(
        self,
        beats: Any,
        ready: Any,
        slot: int,
        parent_pid: int,
        interval: float,
        retiring: Any = None,
    ) -> None:
        self._beats = beats
        self._ready = ready
        self._retiring = retiring
        self.slot = slot
        self.parent_pid = parent_pid
        self.interval = interval

    @classmethod
    def for_worker(cls, start: WorkerStart, healthcheck_timeout: float) -> WorkerLink:
        """The link of the worker ``start`` describes, beating often enough for the timeout."""
        return cls(
            start.beats,
            start.ready,
            start.slot,
            start.helper_pid,
            interval=min(1.0, healthcheck_timeout / 4),
            retiring=start.retiring,
        )

    def beat(self) -> None:
        """Record that this worker's event loop is running now."""
        self._beats[self.slot] = time.monotonic()

    def mark_ready(self) -> None:
        """Record that this worker accepts connections (its start succeeded)."""
        self.beat()
        self._ready[self.slot] = 1

    def request_retirement(self) -> None:
        """Ask the supervisor for a replacement: this worker served its ``max_requests``. It
        serves on until the replacement is ready and the supervisor tells it to drain."""
        if self._retiring is not None:
            self._retiring[self.slot] = 1

    async def run(self, server: AerosServer) -> None:
        """Beat every ``interval`` seconds; stop the worker if the supervisor is gone."""
        while True:
            self.beat()
            if os.getppid() != self.parent_pid:
                # Orphaned (the fork helper exited with the supervisor, which was SIGKILLed):
                # drain instead of serving unsupervised.
                server.request_stop("the supervisor exited")
            await asyncio.sleep(self.interval)


def quota(max_requests: int, jitter: int) -> int:
    """This worker's request quota: ``max_requests`` plus 0 to ``jitter``; 0: no quota."""
    if max_requests <= 0:
        return 0
    return max_requests + secrets.randbelow(jitter + 1)


def quota_watch(link: WorkerLink, limit: int) -> Callable[[AerosServer], Coroutine[Any, Any, None]]:
    """A server companion asking for a replacement once the worker served ``limit`` requests."""

    async def watch(server: AerosServer) -> None:
        # polled: an event set per request would cost every request what this costs 10x a second
        while server.server_state.total_requests < limit:  # noqa: ASYNC110
            await asyncio.sleep(QUOTA_CHECK_INTERVAL)
        logger.info(
            "Worker %d [pid %d] served %d requests (max_requests): asking for a replacement",
            link.slot,
            os.getpid(),
            server.server_state.total_requests,
        )
        link.request_retirement()

    return watch


def worker_main(app: Any, start: WorkerStart, worker_init: Callable[[], Any] | None) -> int:
    """Serve ``app`` in this forked worker until it is told to stop; the exit status.

    Args:
        app: the ASGI app (the helper's copy of it).
        start: what the helper gave this worker; ``start.settings`` is the ServerConfig.
        worker_init: called first (sets up the worker's logging); an object it returns with a
            ``stop()`` is stopped when the worker ends.
    """
    config: ServerConfig = start.settings
    link = WorkerLink.for_worker(start, config.worker_healthcheck_timeout)
    channel = peers.WorkerPeers(start.channel)
    peers.attach(app, channel)
    resources = None
    try:
        resources = worker_init() if worker_init is not None else None
        companions: list[Callable[[AerosServer], Coroutine[Any, Any, None]]]
        companions = [link.run, channel.run]
        limit = quota(config.max_requests, config.max_requests_jitter)
        if limit:  # off: no watcher at all
            companions.append(quota_watch(link, limit))
        server = AerosServer(
            app,
            config,
            on_started=link.mark_ready,
            companions=tuple(companions),
            replaceable=True,
        )
        try:
            server.run(sockets=[start.sock])
        except StartupFailed as exc:
            logger.error("Worker %d: %s", link.slot, exc)
            return EXIT_STARTUP_FAILED
        return 0
    except BaseException:
        logger.exception("Worker %d [pid %d] crashed", link.slot, os.getpid())
        return 1
    finally:
        stop = getattr(resources, "stop", None)
        if callable(stop):
            stop()
