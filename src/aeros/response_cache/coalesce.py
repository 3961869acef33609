"""One view call per key: the first miss fills an entry, concurrent misses wait for it. Pure ASGI.

Fills are tracked per event loop (a server in several threads runs one loop per thread, and a
future belongs to one loop). A finished fill stays visible for ``grace`` seconds, so a request
of the same burst that missed the store just before the fill landed is answered from it instead
of running the view again.
"""

from __future__ import annotations

import asyncio
import weakref

from aeros.response_cache.entry import Entry

__all__ = ["Fills"]

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
