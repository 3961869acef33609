"""``prometheus_client``'s metrics, filled from the per-process :class:`Tally`, and the scrape.

The metric objects are made in the process that serves (each worker, after the fork), in a
registry of their own, so several apps in one process never collide. With workers, every
process writes to the multiprocess directory (:mod:`aeros.metrics.multiproc`) and a scrape
reads all of it; in one process, a scrape shows this registry and ``prometheus_client``'s
default one (your own metrics).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from aeros.metrics.multiproc import ENV
from aeros.metrics.tally import BUCKETS, Tally

__all__ = ["CACHE_RESULTS", "CONTENT_TYPE", "FLUSH_INTERVAL", "Exporter", "render"]

CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"
"""Content type of the Prometheus text format."""
FLUSH_INTERVAL = 1.0
"""Seconds between two flushes of a worker's counts into the shared metrics (a scrape answered
by one worker shows the others' counts as of their last flush)."""
CACHE_RESULTS = ("hit", "stale", "miss", "bypass", "uncacheable", "error", "coalesced")
"""Values of the ``result`` label of ``aeros_cache_results_total``, all present from the start."""
LIMIT_RESULTS = {"429": "refused", "error": "error"}
"""The rate limiter's per-request states (``RATE_LIMIT_STATE``) -> the ``result`` label of
``aeros_rate_limit_results_total``: a request refused, or one it could not count (storage
failure)."""


class _Metrics:
    """The metric objects of one process."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry(auto_describe=False)
        self.requests = Counter(
            "aeros_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ("method", "route", "status"),
            registry=registry,
        )
        self.latency = Histogram(
            "aeros_http_request_duration_seconds",
            "Time from the request reaching aeros to the end of its response, by route.",
            ("route",),
            buckets=BUCKETS,
            registry=registry,
        )
        self.in_flight = Gauge(
            "aeros_http_requests_in_flight",
            "HTTP requests being handled (summed over live workers).",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.cache = Counter(
            "aeros_cache_results",
            "What the response cache did per request.",
            ("result",),
            registry=registry,
        )
        for result in CACHE_RESULTS:
            self.cache.labels(result)
        self.limits = Counter(
            "aeros_rate_limit_results",
            "Requests the rate limiter refused (429) or could not count (its storage failed).",
            ("result",),
            registry=registry,
        )
        for result in LIMIT_RESULTS.values():
            self.limits.labels(result)
        self.body_bytes = Counter(
            "aeros_http_response_body_bytes",
            "Response body bytes: as views produced them (stage=app, before compression; "
            "cache hits produce none) and as sent (stage=wire, after compression).",
            ("stage",),
            registry=registry,
        )


class Exporter:
    """One app's metrics: the :class:`Tally` the layers fill, flushed into ``prometheus_client``."""

    def __init__(self) -> None:
        self.tally = Tally()
        self.scheduled = False
        self._metrics: _Metrics | None = None
        self._pid = 0

    def metrics(self) -> _Metrics:
        """This process's metric objects (made on first use, again after a fork)."""
        if self._metrics is None or self._pid != os.getpid():
            self._metrics = _Metrics()
            self._pid = os.getpid()
        return self._metrics

    def made(self) -> _Metrics | None:
        """This process's metric objects if made already (safe from another thread)."""
        metrics = self._metrics
        return metrics if metrics is not None and self._pid == os.getpid() else None

    def schedule(self) -> None:
        """Flush within :data:`FLUSH_INTERVAL` seconds (called on the event loop)."""
        self.scheduled = True
        asyncio.get_running_loop().call_later(FLUSH_INTERVAL, self._flush_later)

    def _flush_later(self) -> None:
        self.scheduled = False
        self.flush()

    def flush(self) -> None:
        """Move the counts of the tally into the metrics (on the thread that fills the tally)."""
        taken = self.tally.take()
        metrics = self.metrics()
        metrics.in_flight.set(taken.in_flight)
        for (method, route, status), count in taken.requests().items():
            metrics.requests.labels(method, route, str(status)).inc(count)
        for route, counts in taken.latency().items():
            child: Any = metrics.latency.labels(route)
            # prometheus_client has no bulk observe: add each bucket's count to its value
            # (the buckets are stored non-cumulatively, cumulated when collected)
            for index, seen in enumerate(counts[:-1]):
                if seen:
                    child._buckets[index].inc(seen)
            child._sum.inc(counts[-1])
        for result, count in taken.cache.items():
            metrics.cache.labels(result).inc(count)
        for state, count in taken.limits.items():
            metrics.limits.labels(LIMIT_RESULTS.get(state, "error")).inc(count)
        if taken.app_bytes:
            metrics.body_bytes.labels("app").inc(taken.app_bytes)
        if taken.wire_bytes:
            metrics.body_bytes.labels("wire").inc(taken.wire_bytes)

    def render(self) -> bytes:
        """The text exposition, with this process's latest counts (call on the serving loop)."""
        self.flush()
        return render(self.metrics().registry)


def render(own: CollectorRegistry | None = None) -> bytes:
    """The text exposition: every process's metrics with workers (the multiprocess directory),
    else ``own`` and the default registry."""
    path = os.environ.get(ENV)
    if path:
        registry = CollectorRegistry(auto_describe=False)
        multiprocess.MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    text = generate_latest(REGISTRY)
    return text + generate_latest(own) if own is not None else text
