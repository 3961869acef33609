"""Worker starts, deaths and replacements, counted in the supervisor's process.

The supervisor tells a :class:`WorkerMetrics` (its ``observer``) about every worker it forks
and every one that exits; the counts go to the multiprocess directory like the workers' own, so
any worker's scrape shows them. An exit also drops the worker's live gauges there.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from aeros.metrics.multiproc import MultiprocDir

__all__ = ["WorkerMetrics"]


class WorkerMetrics:
    """Count worker starts, deaths (an exit that was not a clean stop) and replacements.

    Args:
        directory: the run's multiprocess directory (made before the workers are forked).
        workers: how many workers the server keeps serving: every start after the first
            ``workers`` replaces one (a crash respawn, a ``max_requests`` recycle, a SIGHUP),
            whichever slot of the fork helper it takes.
    """

    def __init__(self, directory: MultiprocDir, workers: int) -> None:
        self.directory = directory
        self.workers = workers
        registry = CollectorRegistry(auto_describe=False)
        self.starts = Counter("aeros_worker_starts", "Worker processes started.", registry=registry)
        self.deaths = Counter(
            "aeros_worker_deaths",
            "Worker processes that exited other than by a clean stop (crashed, killed).",
            registry=registry,
        )
        self.replacements = Counter(
            "aeros_worker_replacements",
            "Workers started in place of one that exited.",
            registry=registry,
        )
        self._started = 0

    def worker_started(self, slot: int, pid: int) -> None:
        """A worker was forked into ``slot``."""
        self.starts.inc()
        self._started += 1
        if self._started > self.workers:
            self.replacements.inc()

    def worker_exited(self, pid: int, exit_code: int) -> None:
        """A worker exited with ``exit_code`` (``os.waitstatus_to_exitcode``: < 0 a signal)."""
        self.directory.mark_dead(pid)
        if exit_code != 0:
            self.deaths.inc()
