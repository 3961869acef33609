"""RedisCache: the shared store, on one Redis server, a Redis Cluster or behind Sentinel.

- ``cache.py``: :class:`RedisCache`, the Store (with groups, tags, locks and broadcast).
- ``connect.py``: the connection settings of each mode and the clients they build.
- ``scripts.py``: the Lua scripts and the key layout (one cluster slot per script call).
- ``broadcast.py``: one pub/sub subscription that reports its loss.
"""

from __future__ import annotations

from aeros.stores.redis.cache import RedisCache

__all__ = ["RedisCache"]
