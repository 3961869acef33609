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
    """

    def __init__(self, directory: MultiprocDir) -> None:
        self.directory = directory
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
        self._used_slots: set[int] = set()

    def worker_started(self, slot: int, pid: int) -> None:
        """A worker was forked into ``slot``."""
        self.starts.inc()
        if slot in self._used_slots:
            self.replacements.inc()
        self._used_slots.add(slot)

    def worker_exited(self, pid: int, exit_code: int) -> None:
        """A worker exited with ``exit_code`` (``os.waitstatus_to_exitcode``: < 0 a signal)."""
        self.directory.mark_dead(pid)
        if exit_code != 0:
            self.deaths.inc()
