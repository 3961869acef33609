"""What one process counted since the last flush: plain dicts and ints, updated per request.

Each finished request is noted with :meth:`Tally.note` (:class:`~aeros.metrics.meter.Meter`,
whose common case aeros' server makes in place: the latency appended to an existing list): its
latency appended to the list of its labels, its cache and rate-limit
results and bytes added to plain counters (no locks, no ``.labels()`` lookups, no file writes;
``prometheus_client``'s multiprocess values cost about 1 us each, and a request touches seven
of them). The latencies are put into histogram buckets per list, in C calls (a sort and a
``bisect`` per bucket), by :meth:`Tally.settle`. :mod:`aeros.metrics.export` moves the counts
into ``prometheus_client`` every second and before each scrape.
"""

from __future__ import annotations

from bisect import bisect_right
from math import fsum

__all__ = [
    "BUCKETS",
    "METHODS",
    "OTHER_METHOD",
    "SETTLE_AT",
    "UNMATCHED",
    "Tally",
]

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Upper bounds (seconds) of the latency histogram's buckets; one more is +Inf."""
UNMATCHED = "<unmatched>"
"""Route label of a request no route matched (a 404, a 405), or answered before routing."""
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})
"""Method labels kept as they are; any other method is counted as :data:`OTHER_METHOD`, so a
client cannot create label values at will."""
OTHER_METHOD = "other"
SETTLE_AT = 1024
"""Latencies held for one set of labels before the request path puts them into buckets (all
are, at every flush too, once a second): the lists stay small whatever the load."""

Labels = tuple[str, str, int]
"""A request's method, route template and status."""


class Tally:
    """Counts of one process since the last :meth:`take`."""

    __slots__ = (
        "app_bytes",
        "cache",
        "in_flight",
        "limits",
        "pending",
        "rows",
        "started",
        "wire_bytes",
    )

    def __init__(self) -> None:
        # requests in flight as of the last take(): worked out there from the requests
        # started since (one per request where its count starts) and those counted, so a finished
        # request costs no update of its own
        self.in_flight = 0
        self.started = 0
        # latencies of finished requests not in the histogram rows yet, by labels: a request
        # appends one float; settle() buckets each list with a sort and C calls
        self.pending: dict[Labels, list[float]] = {}
        # (method, route, status) -> requests per latency bucket (len(BUCKETS) + 1, the last
        # for +Inf), then the sum of their seconds: one row per request's labels; the requests
        # count and the per-route histogram are their sums
        self.rows: dict[Labels, list[float]] = {}
        self.cache: dict[str, int] = {}
        self.limits: dict[str, int] = {}  # the rate limiter's refusals ("429") and failures
        self.app_bytes = 0
        self.wire_bytes = 0

    def note(
        self,
        method: str,
        route: str,
        status: int,
        seconds: float,
        cache: str | None,
        size: int,
        limit: str | None = None,
    ) -> None:
        """Count one finished request: its cache result (None: the cache did not look), body
        bytes on the wire and rate-limit state at once, its latency when the list of its
        labels is settled."""
        labels = (method if method in METHODS else OTHER_METHOD, route, status)
        times = self.pending.get(labels)
        if times is None:
            self.pending[labels] = [seconds]
        else:
            times.append(seconds)
            if len(times) >= SETTLE_AT:
                self.settle()
        if cache is not None:
            caches = self.cache
            caches[cache] = caches.get(cache, 0) + 1
        if limit is not None:
            limits = self.limits
            limits[limit] = limits.get(limit, 0) + 1
        self.wire_bytes += size

    def settle(self) -> None:
        """Put the pending latencies into their rows' buckets: per set of labels one sort,
        then one ``bisect`` per bucket bound until every latency is placed ("le": a value on
        a bound counts there), the sum with ``fsum``; no Python step per request."""
        pending, self.pending = self.pending, {}
        rows = self.rows
        last = len(BUCKETS)
        for labels, times in pending.items():
            row = rows.get(labels)
            if row is None:
                row = rows[labels] = [0.0] * (last + 2)
            times.sort()
            count = len(times)
            placed = 0
            for index, bound in enumerate(BUCKETS):
                upto = bisect_right(times, bound, placed)
                row[index] += upto - placed
                placed = upto
                if placed == count:
                    break
            row[last] += count - placed
            row[-1] += fsum(times)

    def requests(self) -> dict[tuple[str, str, int], int]:
        """Requests counted by (method, route, status)."""
        return {key: round(sum(row[:-1])) for key, row in self.rows.items()}

    def latency(self) -> dict[str, list[float]]:
        """Per route: requests per latency bucket (+Inf last), then the sum of seconds."""
        by_route: dict[str, list[float]] = {}
        for (_, route, _), row in self.rows.items():
            total = by_route.get(route)
            if total is None:
                by_route[route] = list(row)
            else:
                for index, value in enumerate(row):
                    total[index] += value
        return by_route

    def take(self) -> Tally:
        """The counts so far, as a new Tally; this one starts over (``in_flight`` stays,
        brought up to date)."""
        self.settle()
        self.in_flight += self.started - sum(self.requests().values())  # minus those counted
        self.started = 0
        taken = Tally()
        taken.in_flight = self.in_flight
        taken.rows, self.rows = self.rows, {}
        taken.cache, self.cache = self.cache, {}
        taken.limits, self.limits = self.limits, {}
        taken.app_bytes, self.app_bytes = self.app_bytes, 0
        taken.wire_bytes, self.wire_bytes = self.wire_bytes, 0
        return taken
