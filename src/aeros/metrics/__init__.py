"""Prometheus metrics: ``WebServer(metrics=True)``.

In request order: :mod:`~aeros.metrics.tally` (the per-process counts the hot path updates:
plain ints, no locks, no files), :mod:`~aeros.metrics.layer` (the ASGI layer that fills the
tally and serves ``/metrics``), :mod:`~aeros.metrics.routes` (the route template of each
request: the one Quart-aware module), :mod:`~aeros.metrics.export` (``prometheus_client``'s
metrics, filled from the tally every second and before each scrape, and the text exposition),
:mod:`~aeros.metrics.multiproc` (the multiprocess directory that lets one worker's scrape show
every worker's counts), :mod:`~aeros.metrics.workers` (worker starts, deaths and replacements,
counted in the supervisor) and :mod:`~aeros.metrics.port` (the separate ``metrics_port``).
"""

from __future__ import annotations

from collections.abc import Callable

from aeros.metrics.export import Exporter, render

__all__ = ["exporter_render"]


def exporter_render(exporter: Exporter) -> Callable[[], bytes]:
    """What the separate metrics port serves: every worker's metrics (the multiprocess
    directory), or in one process this app's as of their last flush (the port's thread never
    flushes: the tally belongs to the event loop's thread)."""

    def render_now() -> bytes:
        made = exporter.made()
        return render(made.registry if made is not None else None)

    return render_now
