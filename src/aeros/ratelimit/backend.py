"""Counting hits on ``limits``' async storages (Redis, Redis Cluster, Redis Sentinel) or on
aeros' in-process counters for ``memory://`` (:mod:`aeros.ratelimit.memory`).

One storage per process and event loop, built on first use: a forked worker never reuses its
parent's Redis sockets, and redis-py's asyncio client belongs to the loop that made it (the
same rule as :class:`aeros.RedisCache`). Redis is reached through redis-py's asyncio client
(``limits``' ``implementation="redispy"``), the client aeros already depends on.

The two strategies call the storage directly with a key built once per limit, doing what
``limits.aio.strategies.FixedWindowRateLimiter`` / ``MovingWindowRateLimiter`` do for ``hit``
followed by ``get_window_stats`` in two storage calls instead of four or five (their per-call
key formatting costs more than the in-memory count itself: see docs/performance.md).
``peek`` reads a limit without a hit (their ``get_window_stats``), for the limits a refused
request never reached.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
import weakref
from collections.abc import Callable
from typing import Any, cast

from limits.aio.storage import Storage
from limits.storage import storage_from_string

from aeros.ratelimit.memory import MemoryCounts

__all__ = ["Backend", "BackendDown", "Outcome"]

logger = logging.getLogger(__name__)
_ENDS_LIMIT = 10_000  # remembered window ends (one per key: per client and limit)
_CREDENTIALS = re.compile(r"//[^@/]*@")  # a password in the URL stays out of the log


Outcome = tuple[bool, int, float]
"""One limit's answer for one request: allowed, the requests left in the window after this one
(0 when refused), and the seconds until the window frees a request (fixed window: until it
ends). A plain tuple: it is made on every request."""


_BACKENDS: weakref.WeakSet[Backend] = weakref.WeakSet()


def _forget_storages() -> None:
    """In a forked child: every backend builds its own storage (no parent sockets, no parent
    counters), without a getpid() per request."""
    for backend in _BACKENDS:
        backend._storage = None
        backend._ends.clear()
        if backend.hit_now is not None:
            backend._use_memory()


if hasattr(os, "register_at_fork"):  # POSIX; Windows has no fork
    os.register_at_fork(after_in_child=_forget_storages)


class BackendDown(Exception):
    """The storage failed or is being skipped after a recent failure."""


def storage_uri(storage: str) -> str:
    """``limits``' async URI for aeros' ``storage=`` value (``redis://h`` -> ``async+redis://h``)."""
    if storage.startswith("unix://"):
        return "async+redis+unix://" + storage.removeprefix("unix://")
    return "async+" + storage


class Backend:
    """The storage of one app's rate limits, with its failure handling.

    Args:
        storage: aeros' storage URL (``memory://``, ``redis://...``, see :class:`RateLimit`).
        strategy: ``"fixed-window"`` or ``"moving-window"``.
        prefix: prefix of every storage key.
        socket_timeout: seconds to wait for Redis.
        retry_after: seconds to skip the storage after a failure.
        warn_interval: seconds between two warnings about failures.
        clock: monotonic seconds for ``retry_after`` and the warnings.
    """

    def __init__(
        self,
        storage: str,
        strategy: str,
        prefix: str,
        *,
        socket_timeout: float = 0.1,
        retry_after: float = 1.0,
        warn_interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.uri = storage_uri(storage)
        self.prefix = prefix
        self.socket_timeout = socket_timeout
        self.retry_after = retry_after
        self.warn_interval = warn_interval
        self.clock = clock
        self.hit = self._fixed if strategy == "fixed-window" else self._moving
        # a limit as it stands, counting no hit: for the limits after the one that refused
        self.peek = self._fixed_peek if strategy == "fixed-window" else self._moving_peek
        self._storage: Storage | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._down_until = 0.0
        self._warned_at = -float("inf")
        self._failures = 0
        self._ends: dict[str, float] = {}  # fixed window: key -> end of its current window
        self.fixed_window = strategy == "fixed-window"
        self.hit_now: Callable[[str, int, int], Outcome] | None = None
        """``memory://``: count a hit at once (no await, no failure); None for Redis."""
        self.counts: MemoryCounts | None = None
        """``memory://``: the counters ``hit_now`` counts in; None for Redis."""
        if self.uri.startswith("async+memory"):
            self._use_memory()
        _BACKENDS.add(self)

    def _use_memory(self) -> None:
        # aeros' own counters, one table per process: limits' async MemoryStorage walks every
        # key on each hit (docs/performance.md)
        counts = self.counts = MemoryCounts()
        self.hit_now = counts.fixed_hit if self.fixed_window else counts.moving_hit

    def storage(self) -> Storage:
        """This process's and loop's storage, built on first use."""
        loop = asyncio.get_running_loop()
        if self._storage is None or self._loop is not loop:
            self._storage = self._build()
            self._loop = loop
        return self._storage

    def _build(self) -> Storage:
        if self.hit_now is not None:
            return cast(Storage, self.counts)  # the same counters as hit_now
        options: dict[str, Any] = {
            "implementation": "redispy",
            "key_prefix": self.prefix,
            "socket_timeout": self.socket_timeout,
            "socket_connect_timeout": self.socket_timeout,
        }
        # an async+ URI always gives one of limits.aio.storage's classes
        return cast(Storage, storage_from_string(self.uri, **options))

    async def _fixed(self, key: str, amount: int, expiry: int) -> Outcome:
        """Count one hit in the key's current window (``limits``' fixed window: the counter
        expires ``expiry`` seconds after the window's first hit)."""
        storage = self._storage
        if self._down_until or storage is None or self._loop is not asyncio.get_running_loop():
            storage = self._usable()
        try:
            count = await storage.incr(key, expiry)
            now = self._wall()
            # A window's end never moves, and a new window starts only after it: an end
            # remembered from an earlier hit that still lies ahead is this window's, so the
            # storage is asked once per window and key instead of once per request.
            end = self._ends.get(key)
            if end is None or end <= now:
                end = await storage.get_expiry(key)
                ends = self._ends
                if len(ends) >= _ENDS_LIMIT:
                    ends.clear()  # bounded: a cleared end costs one more storage call
                ends[key] = end
        except Exception as exc:  # any storage failure (redis, OS, timeout): never a 5xx
            raise self._failed(exc) from exc
        if count <= amount:
            return True, amount - count, end - now
        return False, 0, max(end - now, 0.0)

    async def _moving(self, key: str, amount: int, expiry: int) -> Outcome:
        """Count one hit if fewer than ``amount`` lie in the last ``expiry`` seconds
        (``limits``' moving window: one timestamp per allowed hit)."""
        storage: Any = self._usable()  # memory and Redis storages both support moving windows
        try:
            allowed = await storage.acquire_entry(key, amount, expiry)
            start, count = await storage.get_moving_window(key, amount, expiry)
        except Exception as exc:  # any storage failure (redis, OS, timeout): never a 5xx
            raise self._failed(exc) from exc
        reset = start + expiry - self._wall() if count else 0.0
        return bool(allowed), max(amount - count, 0), max(reset, 0.0)

    async def _fixed_peek(self, key: str, amount: int, expiry: int) -> Outcome:
        """What the key's current window holds, counting no hit (``limits``'
        ``FixedWindowRateLimiter.get_window_stats``): whether a hit now would be allowed, the
        hits left and the seconds until the window ends (0 when none runs)."""
        storage = self._usable()
        try:
            count = await storage.get(key)
            if count <= 0:
                return True, amount, 0.0
            end = await storage.get_expiry(key)
        except Exception as exc:  # any storage failure (redis, OS, timeout): never a 5xx
            raise self._failed(exc) from exc
        return count < amount, max(amount - count, 0), max(end - self._wall(), 0.0)

    async def _moving_peek(self, key: str, amount: int, expiry: int) -> Outcome:
        """What the key's last ``expiry`` seconds hold, counting no hit (``limits``'
        ``MovingWindowRateLimiter.get_window_stats``), as :meth:`_moving` reports it."""
        storage: Any = self._usable()
        try:
            start, count = await storage.get_moving_window(key, amount, expiry)
        except Exception as exc:  # any storage failure (redis, OS, timeout): never a 5xx
            raise self._failed(exc) from exc
        reset = start + expiry - self._wall() if count else 0.0
        return count < amount, max(amount - count, 0), max(reset, 0.0)

    def _wall(self) -> float:
        """Wall-clock seconds as the storage reads them (the memory counters' own clock)."""
        counts = self.counts
        return counts.clock() if counts is not None else time.time()

    def _usable(self) -> Storage:
        if self._down_until:
            if self.clock() < self._down_until:
                raise BackendDown("skipped after a recent failure")
            self._down_until = 0.0
        storage = self._storage
        if storage is None or self._loop is not asyncio.get_running_loop():
            storage = self.storage()
        return storage

    def _failed(self, exc: Exception) -> BackendDown:
        now = self.clock()
        self._down_until = now + self.retry_after
        self._failures += 1
        if now - self._warned_at >= self.warn_interval:
            self._warned_at = now
            logger.warning(
                "rate limit storage %s failed (%d failure(s) since the last warning): %r; "
                "requests are let through or refused as fail_open says until it answers again",
                _CREDENTIALS.sub("//", self.uri.removeprefix("async+")),
                self._failures,
                exc,
            )
            self._failures = 0
        return BackendDown(str(exc))
