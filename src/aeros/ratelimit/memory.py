"""In-process counters for ``storage="memory://"``: fixed and moving windows, O(1) per hit.

``limits``' async ``MemoryStorage`` (5.x) starts a task on nearly every hit that walks every
key it holds to expire old ones: a hit costs 13 us with one key and 1.4 ms with 10 000 (one
client address, or one value of a ``key=`` header a client picks, per key), so a client that
varies its key could make every request of the worker slow. These counters keep ``limits``'
meaning (the same five calls, the same answers) and expire lazily: a key is reset when it is
touched after its window, and the table is swept only when it has doubled since the last
sweep, so a sweep's cost is spread over the inserts that made it necessary.

Single-threaded by design: the rate-limit layer calls it on its event loop, and nothing in
these methods awaits.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

__all__ = ["MAX_KEYS", "MemoryCounts"]

MAX_KEYS = 1_000_000
"""Most keys held per kind of window; past it the oldest key is dropped (its client starts a
fresh window), so memory stays bounded whatever clients send."""
_FIRST_SWEEP = 1024


class MemoryCounts:
    """The storage calls :class:`~aeros.ratelimit.backend.Backend` makes, in memory.

    Args:
        clock: wall-clock seconds (``time.time``, as ``limits`` uses).
        max_keys: most keys held per kind of window (:data:`MAX_KEYS`).
    """

    def __init__(self, clock: Callable[[], float] = time.time, max_keys: int = MAX_KEYS) -> None:
        self.clock = clock
        self.max_keys = max_keys
        self.counters: dict[str, list[Any]] = {}  # key -> [count (int), end of its window]
        # key -> (its window in seconds, times of its allowed hits, oldest first)
        self.events: dict[str, tuple[float, deque[float]]] = {}
        self.sweeps = 0
        self._sweep_counters_at = _FIRST_SWEEP
        self._sweep_events_at = _FIRST_SWEEP

    # ---- fixed window: limits' incr / get / get_expiry ------------------------------------

    async def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        """Add ``amount`` hits to the key's window (a new window of ``expiry`` seconds starts
        with the first hit after the last one ended); the count so far."""
        counter = self._counter(key, self.clock(), expiry)
        counter[0] += amount
        return int(counter[0])

    def fixed_hit(self, key: str, amount: int, expiry: float) -> tuple[bool, int, float]:
        """One hit on a fixed window of ``amount`` per ``expiry`` seconds, without an await:
        allowed, the hits left in the window, the seconds until it ends (what
        :class:`~aeros.ratelimit.backend.Backend` makes of ``incr`` and ``get_expiry``)."""
        now = self.clock()
        counter = self.counters.get(key)
        if counter is None or counter[1] <= now:  # none yet, or its window ended: a new one
            counter = self._counter(key, now, expiry)
        count = counter[0] = counter[0] + 1
        if count <= amount:
            return True, amount - count, counter[1] - now
        return False, 0, max(counter[1] - now, 0.0)

    def _counter(self, key: str, now: float, expiry: float) -> list[Any]:
        counter = self.counters.get(key)
        if counter is None or counter[1] <= now:
            if counter is None:
                self._make_room(self.counters)
            counter = self.counters[key] = [0, now + expiry]
            if len(self.counters) >= self._sweep_counters_at:
                self._sweep_counters(now)
        return counter

    async def get(self, key: str) -> int:
        """The hits counted in the key's running window (0 when none runs), counting none."""
        counter = self.counters.get(key)
        return int(counter[0]) if counter is not None and counter[1] > self.clock() else 0

    async def get_expiry(self, key: str) -> float:
        """When the key's window ends (now when it has none)."""
        counter = self.counters.get(key)
        return counter[1] if counter is not None else self.clock()

    def _sweep_counters(self, now: float) -> None:
        self.counters = {key: c for key, c in self.counters.items() if c[1] > now}
        self._sweep_counters_at = max(_FIRST_SWEEP, 2 * len(self.counters))
        self.sweeps += 1

    # ---- moving window: limits' acquire_entry / get_moving_window --------------------------

    async def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        """Record ``amount`` hits if fewer than ``limit`` - ``amount`` + 1 lie in the last
        ``expiry`` seconds; whether they were recorded."""
        return self._acquire(key, limit, expiry, amount, self.clock())

    async def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        """The time of the oldest hit within the last ``expiry`` seconds and how many there
        are; (now, 0) when none."""
        now = self.clock()
        times = self._recent(key, now, expiry)
        if not times:
            return now, 0
        return times[0], len(times)

    def moving_hit(self, key: str, amount: int, expiry: int) -> tuple[bool, int, float]:
        """One hit on a moving window of ``amount`` per ``expiry`` seconds, without an await:
        allowed, the hits left in the window, the seconds until its oldest hit leaves it
        (what :class:`~aeros.ratelimit.backend.Backend` makes of ``acquire_entry`` and
        ``get_moving_window``)."""
        now = self.clock()
        allowed = self._acquire(key, amount, expiry, 1, now)
        times = self._recent(key, now, expiry)
        if not times:
            return allowed, amount, 0.0
        return allowed, max(amount - len(times), 0), max(times[0] + expiry - now, 0.0)

    def _acquire(self, key: str, limit: int, expiry: int, amount: int, now: float) -> bool:
        if amount > limit:
            return False
        times = self._recent(key, now, expiry)
        if times is None:
            self._make_room(self.events)
            times = deque()
            self.events[key] = (expiry, times)
        if len(times) + amount > limit:
            return False
        times.extend([now] * amount)
        if len(self.events) >= self._sweep_events_at:
            self._sweep_events(now)
        return True

    def _recent(self, key: str, now: float, expiry: float) -> deque[float] | None:
        held = self.events.get(key)
        if held is None:
            return None
        times = held[1]
        oldest = now - expiry  # limits keeps a hit made exactly `expiry` seconds ago
        while times and times[0] < oldest:
            times.popleft()
        return times

    def _sweep_events(self, now: float) -> None:
        # each key against its own window: a key of a 1/hour limit outlives a 1/second one's
        self.events = {
            key: held
            for key, held in self.events.items()
            if held[1] and held[1][-1] >= now - held[0]
        }
        self._sweep_events_at = max(_FIRST_SWEEP, 2 * len(self.events))
        self.sweeps += 1

    def _make_room(self, table: dict[str, Any]) -> None:
        if len(table) >= self.max_keys:
            del table[next(iter(table))]  # the oldest key: its client starts a fresh window
