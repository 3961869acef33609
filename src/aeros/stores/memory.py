"""SimpleCache: an in-process LRU store with TTLs, an entry limit, a byte cap and tag indexes."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import ClassVar

from aeros import _validate
from aeros.stores.base import Capabilities, Clock, checked_timeout, expiry, key_group

__all__ = ["SimpleCache"]


class SimpleCache:
    """Entries in this process's memory: fast, but not shared between workers.

    Least recently used entries are evicted first once either limit is reached. Safe to share
    between event loops in several threads (a lock guards the table; no operation awaits).

    Args:
        timeout: default lifetime in seconds of a cached response (``@app.cache()`` without
            its own timeout); 0 or None keeps entries until evicted. Default 300.
        threshold: most entries kept. Default 500.
        max_bytes: most bytes of keys and values kept; a value larger than this is not
            stored. Default 64 MiB.
        clock: seconds for TTLs; default ``time.monotonic`` (entries never leave the process,
            so a wall-clock step must not expire or revive them).
    """

    capabilities: ClassVar[Capabilities] = Capabilities(
        groups=True, prefix_delete=True, nowait_get=True, tags=True, shared=False
    )
    """Each process has its own entries (``shared=False``): with workers, the response cache
    passes clears, purges and write invalidations to every worker (:mod:`aeros.server.peers`).
    Reads never block, so the cache layer reads hits with :meth:`get_nowait`. Tags are indexed
    (tag -> keys), so a purge by tag touches only the tagged entries."""

    def __init__(
        self,
        timeout: float | None = 300,
        threshold: int = 500,
        *,
        max_bytes: int = 64 << 20,
        clock: Clock = time.monotonic,
    ) -> None:
        self.timeout = checked_timeout("SimpleCache", timeout)
        self.threshold = _validate.integer("SimpleCache", "threshold", threshold, minimum=1)
        self.max_bytes = _validate.integer("SimpleCache", "max_bytes", max_bytes, minimum=1)
        self.clock = clock
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._bytes = 0
        # tag -> keys, and key -> tags: an evicted or deleted entry leaves every index at once,
        # so the indexes never hold more than the live table
        self._tagged: dict[str, set[str]] = {}
        self._tags_of: dict[str, tuple[str, ...]] = {}
        self._lock = threading.Lock()

    @property
    def size_bytes(self) -> int:
        """Bytes of keys and values held now (at most ``max_bytes``)."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"SimpleCache(timeout={self.timeout!r}, threshold={self.threshold!r})"

    async def get(self, key: str) -> bytes | None:
        """Return the live value under ``key`` and mark it recently used."""
        return self.get_nowait(key)

    def get_nowait(self, key: str) -> bytes | None:
        """:meth:`get` without a coroutine (the cache layer reads memory stores this way)."""
        with self._lock:
            item = self._entries.get(key)
            if item is None:
                return None
            if item[0] <= self.clock():
                self._drop(key)
                return None
            self._entries.move_to_end(key)
            return item[1]

    async def set(self, key: str, value: bytes, *, ttl: float | None) -> None:
        """Store ``value``, evicting least recently used entries to stay within the limits.

        A key that was tagged keeps its tags (as Redis keeps a key in its index sets).
        """
        self._store(key, value, ttl, ())

    async def set_tagged(
        self, key: str, value: bytes, *, ttl: float | None, tags: Sequence[str]
    ) -> None:
        """:meth:`set`, and index ``key`` under each of ``tags`` (added to the tags it has)."""
        self._store(key, value, ttl, tuple(tags))

    async def delete_tags(self, tags: Sequence[str]) -> int:
        """Remove every entry indexed under any of ``tags``; return how many were removed."""
        with self._lock:
            doomed = {key for tag in tags for key in self._tagged.get(tag, ())}
            for key in doomed:
                self._drop(key)
        return len(doomed)

    def _store(self, key: str, value: bytes, ttl: float | None, tags: tuple[str, ...]) -> None:
        cost = len(key) + len(value)
        with self._lock:
            kept = self._tags_of.get(key, ())
            self._drop(key)
            if cost > self.max_bytes:
                return
            self._entries[key] = (expiry(self.clock(), ttl), bytes(value))
            self._bytes += cost
            all_tags = tuple(dict.fromkeys((*kept, *tags)))
            if all_tags:
                self._tags_of[key] = all_tags
                for tag in all_tags:
                    self._tagged.setdefault(tag, set()).add(key)
            while len(self._entries) > self.threshold or self._bytes > self.max_bytes:
                self._drop(next(iter(self._entries)))

    async def delete(self, key: str) -> None:
        """Remove ``key`` if present."""
        with self._lock:
            self._drop(key)

    async def delete_prefix(self, prefix: str) -> int:
        """Remove every key starting with ``prefix``; return how many were removed."""
        with self._lock:
            doomed = [key for key in self._entries if key.startswith(prefix)]
            for key in doomed:
                self._drop(key)
        return len(doomed)

    async def delete_group(self, group: str) -> int:
        """Remove every key whose group (up to its last ``:``) is ``group``."""
        with self._lock:
            doomed = [key for key in self._entries if key_group(key) == group]
            for key in doomed:
                self._drop(key)
        return len(doomed)

    async def clear(self) -> None:
        """Remove every entry."""
        with self._lock:
            self._entries.clear()
            self._bytes = 0
            self._tagged.clear()
            self._tags_of.clear()

    async def aclose(self) -> None:
        """Nothing to release: memory is freed with the store."""

    def _drop(self, key: str) -> None:
        item = self._entries.pop(key, None)
        if item is not None:
            self._bytes -= len(key) + len(item[1])
            for tag in self._tags_of.pop(key, ()):
                keys = self._tagged.get(tag)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del self._tagged[tag]
