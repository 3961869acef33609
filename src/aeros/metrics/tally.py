"""What one process counted since the last flush: plain dicts and ints, updated per request.

The hot path of :mod:`aeros.metrics.layer` only adds to these (no locks, no ``.labels()``
lookups, no file writes: ``prometheus_client``'s multiprocess values cost about 1 us each, and
a request touches seven of them). :mod:`aeros.metrics.export` moves the counts into
``prometheus_client`` every second and before each scrape.
"""

from __future__ import annotations

from bisect import bisect_left

__all__ = ["BUCKETS", "METHODS", "OTHER_METHOD", "UNMATCHED", "Tally"]

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Upper bounds (seconds) of the latency histogram's buckets; one more is +Inf."""
UNMATCHED = "<unmatched>"
"""Route label of a request no route matched (a 404, a 405), or answered before routing."""
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})
"""Method labels kept as they are; any other method is counted as :data:`OTHER_METHOD`, so a
client cannot create label values at will."""
OTHER_METHOD = "other"


class Tally:
    """Counts of one process since the last :meth:`take`."""

    __slots__ = ("app_bytes", "cache", "in_flight", "latency", "limits", "requests", "wire_bytes")

    def __init__(self) -> None:
        self.in_flight = 0
        self.requests: dict[tuple[str, str, int], int] = {}
        # route -> counts per bucket (len(BUCKETS) + 1 for +Inf), then the sum of seconds
        self.latency: dict[str, list[float]] = {}
        self.cache: dict[str, int] = {}
        self.limits: dict[str, int] = {}  # the rate limiter's refusals ("429") and failures
        self.app_bytes = 0
        self.wire_bytes = 0

    def record(
        self,
        method: str,
        route: str,
        status: int,
        seconds: float,
        cache: str | None,
        size: int,
        limit: str | None = None,
    ) -> None:
        """Count one finished request."""
        if method not in METHODS:
            method = OTHER_METHOD
        key = (method, route, status)
        requests = self.requests
        requests[key] = requests.get(key, 0) + 1
        histogram = self.latency.get(route)
        if histogram is None:
            histogram = self.latency[route] = [0.0] * (len(BUCKETS) + 2)
        histogram[bisect_left(BUCKETS, seconds)] += 1  # "le": a value on a bound counts there
        histogram[-1] += seconds
        if cache is not None:
            self.cache[cache] = self.cache.get(cache, 0) + 1
        if limit is not None:
            self.limits[limit] = self.limits.get(limit, 0) + 1
        self.wire_bytes += size

    def take(self) -> Tally:
        """The counts so far, as a new Tally; this one starts over (``in_flight`` stays)."""
        taken = Tally()
        taken.in_flight = self.in_flight
        taken.requests, self.requests = self.requests, {}
        taken.latency, self.latency = self.latency, {}
        taken.cache, self.cache = self.cache, {}
        taken.limits, self.limits = self.limits, {}
        taken.app_bytes, self.app_bytes = self.app_bytes, 0
        taken.wire_bytes, self.wire_bytes = self.wire_bytes, 0
        return taken
