"""One view call per key: the first miss fills an entry, concurrent misses wait for it. Pure ASGI.

Fills are tracked per event loop (a server in several threads runs one loop per thread, and a
future belongs to one loop). A finished fill stays visible for ``grace`` seconds, so a request
of the same burst that missed the store just before the fill landed is answered from it instead
of running the view again.

With a store that holds locks (``Capabilities(locks=True)``: RedisCache, a TieredCache over it)
the first miss of each process also takes a short lock named after the key in the store
(:class:`FleetLocks`): one process in the whole fleet runs the view, the others poll the store
until the entry appears, the lock is free again (its holder stored nothing, or died and the
lock expired) or the deadline (the lock's TTL) passes, and then run the view themselves. A
failing store never blocks anyone: the view runs.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Any

from aeros.errors import StoreError
from aeros.response_cache.entry import Entry
from aeros.response_cache.storage import FAILED, EntryStore

__all__ = ["Fills", "FleetLocks"]

_UNSTORABLE_LIMIT = 4096  # keys remembered as unstorable (cleared when full)
_FIRST_POLL = 0.005  # seconds before the first look at the store; doubles up to _LAST_POLL
_LAST_POLL = 0.2

Fill = asyncio.Future[Entry | None]
"""The result of one fill: the stored entry, or None when the response was not stored."""


class Fills:
    """The fills running (or just finished) in each event loop, by store key.

    Args:
        grace: seconds a finished fill still answers late arrivals (0: none).
    """

    def __init__(self, grace: float) -> None:
        self.grace = grace
        self._tables: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Fill]] = (
            weakref.WeakKeyDictionary()
        )

    def _table(self) -> dict[str, Fill]:
        loop = asyncio.get_running_loop()
        table = self._tables.get(loop)
        if table is None:
            table = self._tables[loop] = {}
        return table

    def running(self, key: str) -> Fill | None:
        """The fill of ``key`` in this event loop (running, or finished within ``grace``)."""
        return self._table().get(key)

    def begin(self, key: str) -> Fill:
        """Register a fill of ``key``: later :meth:`running` calls return it until it ends."""
        future: Fill = asyncio.get_running_loop().create_future()
        self._table()[key] = future
        return future

    def finish(self, key: str, future: Fill, entry: Entry | None, *, linger: bool = True) -> None:
        """End a fill with ``entry`` (no-op when it already ended); waiters wake up with it.

        A stored entry stays visible for ``grace`` seconds when ``linger`` is true; a fill that
        stored nothing is forgotten at once, so the next request runs the view itself.
        """
        if future.done():
            return
        future.set_result(entry)
        table = self._table()
        if entry is None or not linger or self.grace <= 0:
            _drop(table, key, future)
        else:
            asyncio.get_running_loop().call_later(self.grace, _drop, table, key, future)

    def forget(self, group: str | None = None) -> None:
        """Drop finished fills of keys in store key ``group`` (None: every key), so an entry
        that a clear, purge or invalidation removed is not answered from memory."""
        for table in list(self._tables.values()):
            for key, future in list(table.items()):
                if (group is None or key.startswith(group)) and future.done():
                    table.pop(key, None)


def _drop(table: dict[str, Fill], key: str, future: Fill) -> None:
    if table.get(key) is future:  # a newer fill of the key stays
        del table[key]


class FleetLocks:
    """One view call per key across every process and instance sharing a store with locks.

    Args:
        store: a :class:`aeros.stores.LockStore`.
        entries: the layer's :class:`~aeros.response_cache.storage.EntryStore` (reads, and
            where failures are reported).
        timeout: seconds a lock lives, and the most a request waits for another process's
            fill before running the view itself.
        clock: the wall clock entries are dated by.
    """

    def __init__(
        self, store: Any, entries: EntryStore, timeout: float, clock: Callable[[], float]
    ) -> None:
        self.store = store
        self.entries = entries
        self.timeout = timeout
        self.clock = clock
        # keys whose last fill here was not stored: a lock would only make other processes
        # wait for a response they cannot use, so their misses run the view at once
        self._unstorable: dict[str, None] = {}

    def remember(self, key: str, *, stored: bool) -> None:
        """Whether this process's last fill of ``key`` was stored (a key whose fill was not
        takes no lock next time, until a fill of it is stored again)."""
        if stored:
            self._unstorable.pop(key, None)
            return
        if len(self._unstorable) >= _UNSTORABLE_LIMIT:
            self._unstorable.clear()
        self._unstorable[key] = None

    async def take(self, key: str) -> str | Entry | None:
        """Take ``key``'s lock, or wait for whoever holds it.

        Returns:
            a token: this process holds the lock and runs the view (then :meth:`release`);
            an :class:`Entry`: another process stored it meanwhile; None: run the view
            without the lock (the store failed, the holder ended without storing anything,
            the deadline passed, or the key's last fill here was not stored).
        """
        if key in self._unstorable:
            return None
        token = await self._try(key)
        if token is FAILED:
            return None
        if token:
            return str(token)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        delay = _FIRST_POLL
        while (left := deadline - loop.time()) > 0:
            await asyncio.sleep(min(delay, left))
            delay = min(delay * 2, _LAST_POLL)
            entry = await self._fresh(key)
            if entry is not None:
                return None if entry is FAILED else entry
            token = await self._try(key)
            if token is FAILED:
                return None
            if token:  # free again: its holder stored nothing, or died
                await self.release(key, str(token))
                entry = await self._fresh(key)  # ... or stored just before unlocking
                return None if entry is None or entry is FAILED else entry
        return None

    async def release(self, key: str, token: str) -> None:
        """Release ``key``'s lock taken with ``token`` (a failure is only logged: the lock
        expires by itself)."""
        try:
            await self.store.unlock(key, token)
        except StoreError as exc:
            self.entries.warn(exc)

    async def _try(self, key: str) -> Any:
        """A token, ``""`` when another holder has the lock, :data:`FAILED` on a failure."""
        try:
            token = await self.store.try_lock(key, self.timeout)
        except StoreError as exc:
            self.entries.warn(exc)
            return FAILED
        return token or ""

    async def _fresh(self, key: str) -> Any:
        entry = await self.entries.load(key)
        if entry is FAILED:
            return FAILED
        if entry is not None and self.clock() < entry.fresh_until:
            return entry
        return None
