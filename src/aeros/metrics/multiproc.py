"""The multiprocess directory: how one worker's scrape shows the counts of every worker.

``prometheus_client``'s multiprocess mode keeps each process's values in memory-mapped files
in ``PROMETHEUS_MULTIPROC_DIR``; a scrape reads them all. aeros creates the directory (unless
the environment names one already, which it then uses and leaves alone), sets the variable and
switches ``prometheus_client`` to multiprocess values *before* the workers are forked, removes
a dead worker's live gauges (``mark_process_dead``) and deletes the directory when the server
stops. A SIGUSR2 re-exec passes both the directory and its ownership (:data:`OWNED_ENV`) to
the new image, which keeps counting in it and deletes it when it stops.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

from prometheus_client import multiprocess, values

__all__ = ["ENV", "OWNED_ENV", "MultiprocDir"]

ENV = "PROMETHEUS_MULTIPROC_DIR"
"""The environment variable ``prometheus_client`` reads (and forked workers inherit)."""
OWNED_ENV = "AEROS_METRICS_DIR"
"""Set to the directory's path when aeros made it: a re-executed server (SIGUSR2) inherits the
environment, and so the duty to delete it."""


class MultiprocDir:
    """``PROMETHEUS_MULTIPROC_DIR`` for one run of the server; :meth:`close` undoes it all."""

    def __init__(self) -> None:
        given = os.environ.get(ENV)
        self.owned = not given or os.environ.get(OWNED_ENV) == given
        self.path = given or tempfile.mkdtemp(prefix="aeros-metrics-")
        os.environ[ENV] = self.path
        if self.owned:
            os.environ[OWNED_ENV] = self.path
        # prometheus_client picks its value class when imported: metrics created from now on
        # (the app's, and yours, in every worker) write to the directory
        self._previous: Any = values.ValueClass
        if not getattr(values.ValueClass, "_multiprocess", False):
            values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]

    def mark_dead(self, pid: int) -> None:
        """Drop the live gauges (requests in flight) of a process that exited."""
        multiprocess.mark_process_dead(pid, self.path)  # type: ignore[no-untyped-call]

    def close(self) -> None:
        """Restore the value class and the environment; delete the directory if aeros made it."""
        values.ValueClass = self._previous
        if self.owned:
            for name in (ENV, OWNED_ENV):
                if os.environ.get(name) == self.path:
                    del os.environ[name]
            shutil.rmtree(self.path, ignore_errors=True)
