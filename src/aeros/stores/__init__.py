"""Stores behind the response cache: one async protocol, three backends. No HTTP here."""

from __future__ import annotations

from aeros.stores.base import PrefixStore, Store
from aeros.stores.filesystem import FileSystemCache, FilesystemCache
from aeros.stores.memory import SimpleCache
from aeros.stores.redis import RedisCache

__all__ = [
    "FileSystemCache",
    "FilesystemCache",
    "PrefixStore",
    "RedisCache",
    "SimpleCache",
    "Store",
]
