"""aeros: a batteries-included, high-performance ASGI web framework built on Quart."""

from __future__ import annotations

from aeros.app import WebServer
from aeros.cache_control import CacheControl, CacheTypes
from aeros.compression import Br, Compress, Gzip, Zstd
from aeros.errors import AerosError, ConfigurationError, StoreError
from aeros.middleware.cors import CORS
from aeros.misc import async_to_sync, jsonify, render_template, sync_to_async
from aeros.response_cache.policy import cached
from aeros.server.config import Limits
from aeros.server.threads import AdvancedThread
from aeros.stores import FileSystemCache, FilesystemCache, RedisCache, SimpleCache

__all__ = [
    "CORS",
    "AdvancedThread",
    "AerosError",
    "Br",
    "CacheControl",
    "CacheTypes",
    "Compress",
    "ConfigurationError",
    "FileSystemCache",
    "FilesystemCache",
    "Gzip",
    "Limits",
    "RedisCache",
    "SimpleCache",
    "StoreError",
    "WebServer",
    "Zstd",
    "async_to_sync",
    "cached",
    "jsonify",
    "render_template",
    "sync_to_async",
]
