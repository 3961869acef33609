"""aeros: a batteries-included, high-performance ASGI web framework built on Quart.

The public names are imported here. Layout (one feature per package, imports downward only):
``app.py`` (:class:`WebServer`: options -> configs, the ordered layer list, ``add_middleware``)
with ``options.py``, ``serving.py`` and ``run_options.py``; ``middleware/`` (access log,
concurrency limit, CORS, global headers: one module per layer); ``response_cache/``
(``@app.cache``, the cache layer); ``stores/`` (the cache stores); ``compression/``;
``logging/``; ``ratelimit/`` (``RateLimit``, ``@rate_limit``, the rate-limit layer);
``security/`` (``SecurityHeaders``, ``CSP``); ``fastpath/`` (the lean Quart dispatch);
``server/`` (aeros' production server);
``types.py``, ``_validate.py``, ``cache_control.py``, ``cli.py`` (with ``cli_values.py``),
``misc.py``, ``errors.py``.
"""

from __future__ import annotations

from aeros.app import WebServer
from aeros.cache_control import CacheControl, CacheTypes
from aeros.compression import Br, Compress, Gzip, Zstd
from aeros.errors import AerosError, ConfigurationError, StoreError
from aeros.logging.context import current_request_id as request_id
from aeros.middleware.cors import CORS
from aeros.misc import async_to_sync, jsonify, render_template, sync_to_async
from aeros.ratelimit import RateLimit, rate_limit
from aeros.response_cache.policy import cached
from aeros.security import CSP, SecurityHeaders
from aeros.server.config import Limits
from aeros.server.threads import AdvancedThread
from aeros.stores import FileSystemCache, FilesystemCache, RedisCache, SimpleCache, TieredCache

__all__ = [
    "CORS",
    "CSP",
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
    "RateLimit",
    "RedisCache",
    "SecurityHeaders",
    "SimpleCache",
    "StoreError",
    "TieredCache",
    "WebServer",
    "Zstd",
    "async_to_sync",
    "cached",
    "jsonify",
    "rate_limit",
    "render_template",
    "request_id",
    "sync_to_async",
]
