"""Stores behind the response cache: one async protocol, three backends. No HTTP here.

- ``base.py``: the :class:`Store` protocol, the :class:`Capabilities` a store declares
  (group and prefix deletes, a non-blocking read, tags, locks, broadcast, shared or per
  process), key groups and
  the checks every backend shares.
- ``memory.py``: :class:`SimpleCache`, an LRU in this process's memory.
- ``filesystem.py``: :class:`FilesystemCache`, one MAC-checked file per entry, shared by every
  process using the directory; ``entry_file.py``: the bytes of one such file.
- ``tiered.py``: :class:`TieredCache`, a local tier in each process in front of a shared
  store, kept coherent through the shared store's broadcast.
- ``redis/``: :class:`RedisCache`, shared by every worker and instance (one server, Cluster
  or Sentinel).
"""

from __future__ import annotations

from aeros.stores.base import (
    BroadcastStore,
    Capabilities,
    LockStore,
    PrefixStore,
    Store,
    TagStore,
)
from aeros.stores.filesystem import FileSystemCache, FilesystemCache
from aeros.stores.memory import SimpleCache
from aeros.stores.redis import RedisCache
from aeros.stores.tiered import TieredCache

__all__ = [
    "BroadcastStore",
    "Capabilities",
    "FileSystemCache",
    "FilesystemCache",
    "LockStore",
    "PrefixStore",
    "RedisCache",
    "SimpleCache",
    "Store",
    "TagStore",
    "TieredCache",
]
