"""Stores behind the response cache: one async protocol, three backends. No HTTP here."""

from __future__ import annotations

from aeros.cache.base import PrefixStore, Store
from aeros.cache.filesystem import FileSystemCache, FilesystemCache
from aeros.cache.memory import SimpleCache
from aeros.cache.redis import RedisCache

__all__ = [
    "FileSystemCache",
    "FilesystemCache",
    "PrefixStore",
    "RedisCache",
    "SimpleCache",
    "Store",
]
