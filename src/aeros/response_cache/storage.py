"""The response cache's side of a store: decoded entries memoised, store failures caught.

This is the one place that catches :class:`aeros.errors.StoreError`: a failing store turns
into a miss served uncached and a warning at most once per ``warn_interval`` seconds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from aeros.errors import StoreError
from aeros.response_cache.entry import Entry, decode_entry, encode_entry
from aeros.stores.base import capabilities_of

__all__ = ["FAILED", "EntryStore"]

FAILED: Any = object()
"""What :meth:`EntryStore.load` returns when the store raised :class:`StoreError`."""

_DECODED_LIMIT = 1024  # decoded entries kept (a bounded memo, cleared when full)
_DECODED_MAX_BYTES = 16 << 20  # ... and at most about this many bytes of them
_GROUPS_LIMIT = 4096  # dropped groups remembered before a drop counts as "everything"


class EntryStore:
    """Reads and writes entries of ``store`` for one cache layer.

    Args:
        store: any :class:`aeros.stores.Store`.
        logger: where failures are reported.
        warn_interval: seconds between two warnings about a failing store.
        clock: the wall clock entries are dated by (an entry's TTL is its stale time minus
            now). Default ``time.time``.
    """

    def __init__(
        self,
        store: Any,
        logger: logging.Logger,
        warn_interval: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.clock = clock
        self.logger = logger
        self.warn_interval = warn_interval
        capabilities = capabilities_of(store)
        # a store answering from this process's memory is read without a coroutine
        self.get_nowait: Callable[[str], bytes | None] | None = (
            store.get_nowait if capabilities.nowait_get else None
        )
        # ... unless that memory is a tier in front of a shared store (TieredCache): a miss
        # there is read again with get()
        self.nowait_partial = capabilities.nowait_get and capabilities.local_tier
        self.tagged = capabilities.tags
        self.locks = capabilities.locks
        self.generation = 0  # bumped by every clear/purge/invalidation
        self._everything_at = 0  # generation of the last forget() of every entry
        self._groups_at: dict[str, int] = {}  # store group -> generation it was last dropped
        self._last_warning = -float("inf")
        self._decoded: dict[str, tuple[bytes, Entry]] = {}
        self._decoded_bytes = 0

    def forget(self, group: str | None = None) -> None:
        """Entries were dropped from the store: those of one key ``group``, or all of them.

        Decoded entries go, and an entry made from a response that was being produced
        meanwhile is never written back (see :meth:`changed_since`).
        """
        self.generation += 1
        self._decoded.clear()
        self._decoded_bytes = 0
        if group is None or len(self._groups_at) >= _GROUPS_LIMIT:
            self._everything_at = self.generation  # bounded: past the limit, assume everything
            self._groups_at.clear()
        else:
            self._groups_at[group] = self.generation

    def changed_since(self, generation: int, key: str) -> bool:
        """Whether ``key``'s entries were dropped after ``generation`` (a fill started then
        may hold what a write has since replaced)."""
        if self._everything_at > generation:
            return True
        dropped = self._groups_at.get(key[: key.rfind(":") + 1])
        return dropped is not None and dropped > generation

    async def load(self, key: str) -> Entry | None:
        """The entry under ``key``, None when absent, :data:`FAILED` when the store failed."""
        try:
            raw = await self.store.get(key)
        except StoreError as exc:
            self.warn(exc)
            return FAILED  # type: ignore[no-any-return]
        return self.decoded(key, raw)

    def decoded(self, key: str, raw: bytes | None) -> Entry | None:
        """Decode stored bytes; the same bytes give the same entry with its prepared answers."""
        if raw is None:
            return None
        decoded = self._decoded.get(key)
        if decoded is not None and (decoded[0] is raw or decoded[0] == raw):
            return decoded[1]
        entry = decode_entry(raw)
        if entry is not None and len(raw) <= _DECODED_MAX_BYTES // 16:
            if len(self._decoded) >= _DECODED_LIMIT or self._decoded_bytes > _DECODED_MAX_BYTES:
                self._decoded.clear()
                self._decoded_bytes = 0
            self._decoded[key] = (raw, entry)
            self._decoded_bytes += 2 * len(raw)  # the raw bytes and the decoded copies
        return entry

    async def save(
        self,
        key: str,
        entry: Entry,
        generation: int | None = None,
        tags: Sequence[str] = (),
    ) -> None:
        """Store ``entry`` until it goes stale; not when its key was dropped after
        ``generation`` (the generation when the response was produced). ``tags`` index it
        when the store keeps tags (a store without them is purged by other means)."""
        ttl = entry.stale_until - self.clock()
        if ttl <= 0 or (generation is not None and self.changed_since(generation, key)):
            return  # expired, or cleared/purged/invalidated since: never write it back
        seconds = None if ttl == float("inf") else ttl
        try:
            if tags and self.tagged:
                await self.store.set_tagged(key, encode_entry(entry), ttl=seconds, tags=tags)
            else:
                await self.store.set(key, encode_entry(entry), ttl=seconds)
        except StoreError as exc:
            self.warn(exc)

    def warn(self, exc: StoreError) -> None:
        """Log a store failure, at most once per ``warn_interval`` seconds."""
        now = time.monotonic()
        if now - self._last_warning >= self.warn_interval:
            self._last_warning = now
            self.logger.warning("response cache store failed; serving uncached: %s", exc)
