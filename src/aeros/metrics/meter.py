"""The count of one finished request into the :class:`~aeros.metrics.tally.Tally`.

:class:`Meter` is what both ends of a request share: aeros' server counts each request with
it from its request/response cycle (:class:`aeros.server.http.cycle.LeanCycle`'s
``metered``, which makes the common case's steps in place), and
:class:`~aeros.metrics.layer.MetricsMiddleware` counts with it on any other server.

A counted request carries a box in its scope (:data:`~aeros.types.ROUTE`, ``[route template,
start, tally]``): made where the count starts; the route is written by whoever routes the
request. A request answered in front of the app that is not counted (a health probe, a scrape)
has its box taken out of the scope, and leaves the in-flight count at once
(:func:`aeros.middleware.counting.uncounted`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from aeros.metrics.tally import UNMATCHED
from aeros.middleware.counting import unanswered_status
from aeros.types import CACHE_STATE, COALESCED, RATE_LIMIT_STATE, ROUTE, Scope

if TYPE_CHECKING:
    from aeros.metrics.export import Exporter

__all__ = ["Meter", "clock"]

clock = time.perf_counter
"""The clock of a request's latency (the box's start, and its end in :meth:`Meter.count`)."""
logger = logging.getLogger("aeros.metrics")


class Meter:
    """Count finished requests into ``exporter``'s tally.

    Args:
        exporter: the app's :class:`Exporter` (a flush is scheduled on the first count).
        route_of: the route template of a request the app did not route itself (a cache hit
            is answered in front of Quart); :data:`UNMATCHED` when none matches.
    """

    __slots__ = ("exporter", "route_of", "tally")

    def __init__(self, exporter: Exporter, route_of: Callable[[Scope], str]) -> None:
        self.exporter = exporter
        self.tally = exporter.tally
        self.route_of = route_of

    def start(self, scope: Scope) -> None:
        """Count this request as in flight, and give it its box: counted when it ends."""
        tally = self.tally
        tally.started += 1  # in flight until counted (Tally.take)
        scope[ROUTE] = [None, clock(), tally]

    def count(self, scope: Scope, status: int, size: int) -> None:
        """Count one finished request (``status`` 0: none was sent, counted as
        :func:`~aeros.middleware.counting.unanswered_status` says: 500, or 499 when the
        client left first); one with no box (:func:`~aeros.middleware.counting.uncounted`) is not
        counted.

        aeros' server counts most requests without this call (:class:`~aeros.server.http.
        cycle.LeanCycle`): those whose labels have a list of latencies already, once this
        made it, with no cache or rate-limit result."""
        box = scope.get(ROUTE)
        if box is None:
            return
        seconds = clock() - box[1]
        route = box[0]
        cache = scope.get(CACHE_STATE)
        limit = scope.get(RATE_LIMIT_STATE)
        if route is None:
            # answered in front of Quart (a hit, a rate limit's 429) or routed nowhere
            route = UNMATCHED
            if cache is not None or limit is not None:
                try:
                    route = self.route_of(scope)
                except Exception:  # counted all the same: the in-flight count relies on it
                    logger.exception("metrics: no route template for %r", scope.get("path"))
        if cache == "hit" and scope.get(COALESCED):
            cache = "coalesced"
        if not status:
            status = unanswered_status(scope)
        self.tally.note(scope["method"], route, status, seconds, cache, size, limit)
        if not self.exporter.scheduled:  # the first count since a flush schedules the next
            self.exporter.schedule()
