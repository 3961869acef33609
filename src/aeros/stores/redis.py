"""RedisCache: entries in Redis through redis-py's asyncio client, shared by every instance.

One client (and its connection pool) per process and per event loop, created on first use:
a forked worker never reuses its parent's sockets, and servers running in several threads each
talk to Redis from their own loop. Timeouts are short (100 ms by default) so a slow or stopped
Redis costs a request little; after a failure the store answers ``StoreError`` at once for
``retry_after`` seconds instead of waiting on a dead server, then tries again by itself.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
import weakref
from typing import Any, ClassVar, NamedTuple

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from aeros import _validate
from aeros.errors import ConfigurationError, StoreError
from aeros.stores.base import Capabilities, Clock, checked_timeout, key_group

__all__ = ["RedisCache"]

_SCHEMES = ("redis://", "rediss://", "unix://")
_GLOB_SPECIAL = str.maketrans({c: "\\" + c for c in "*?[]\\"})
# RuntimeError: uvloop raises it (not an OSError) when a write hits a transport that the peer
# has reset, and redis-py lets it through
_FAILURES = (RedisError, OSError, asyncio.TimeoutError, RuntimeError)

# SET the entry and add it to its group's index in one round trip. The index is a sorted set
# scored by each member's expiry (ms), so members of expired entries are trimmed on every write
# (the index never outgrows the group's live entries) and the index itself expires with the
# latest of them (an entry without TTL keeps it).
_SET_INDEXED = """
local ttl = tonumber(ARGV[2])
local clock = redis.call('TIME')  -- the server's clock: instances' clocks may disagree
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local score = '+inf'
if ttl > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
  score = now + ttl
else
  redis.call('SET', KEYS[1], ARGV[1])
end
redis.call('ZADD', KEYS[2], score, KEYS[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. now)
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')[2]
if last == 'inf' then
  redis.call('PERSIST', KEYS[2])
else
  redis.call('PEXPIREAT', KEYS[2], math.ceil(tonumber(last)))
end
return 1
"""


class RedisCache:
    """Entries in Redis: shared by every worker and every instance behind a load balancer.

    Args:
        host: Redis host. Default ``127.0.0.1``.
        port: Redis port. Default 6379.
        password: password (empty: none).
        db: database number. Default 0.
        url: ``redis://``, ``rediss://`` or ``unix://`` URL; replaces host/port/password/db.
        timeout: default lifetime in seconds of a cached response; 0 or None: no expiry.
            Default 300.
        prefix: prepended to every Redis key, so :meth:`clear` removes only this cache's keys
            and several apps can share one database. Default ``aeros:``. Entries live under
            ``<prefix>k:<key>``; a key's group (up to its last ``:``) is indexed in a sorted set
            under ``<prefix>i:<group>`` so :meth:`delete_group` needs no scan.
        socket_timeout: seconds to wait for a connection or an answer. Default 0.1.
        retry_after: seconds to fail fast after a failure before trying Redis again. Default 1.
        max_connections: connections per process and event loop. Default 64.
        clock: seconds for ``retry_after``; default ``time.monotonic``. Entry TTLs are kept
            by Redis itself, on its own clock.
    """

    capabilities: ClassVar[Capabilities] = Capabilities(groups=True, prefix_delete=True)
    """Every process and instance using it sees the same entries (shared): nothing to pass
    between workers. Groups are indexed, so a group delete needs no scan."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 6379,
        password: str | None = "",
        db: int = 0,
        *,
        url: str | None = None,
        timeout: float | None = 300,
        prefix: str = "aeros:",
        socket_timeout: float = 0.1,
        retry_after: float = 1.0,
        max_connections: int = 64,
        clock: Clock = time.monotonic,
    ) -> None:
        if url is not None and (not isinstance(url, str) or not url.startswith(_SCHEMES)):
            raise ConfigurationError(
                f"RedisCache(url=...) must start with redis://, rediss:// or unix://; got {url!r}"
            )
        _validate.integer("RedisCache", "port", port, minimum=1, maximum=65535)
        _validate.integer("RedisCache", "db", db, minimum=0)
        _validate.integer("RedisCache", "max_connections", max_connections, minimum=1)
        socket_timeout = _validate.seconds("RedisCache", "socket_timeout", socket_timeout) or 0.0
        if not isinstance(prefix, str):
            raise ConfigurationError(f"RedisCache(prefix={prefix!r}) must be a str")
        self.timeout = checked_timeout("RedisCache", timeout)
        self.prefix = prefix
        self.url = url
        self.retry_after = _validate.seconds("RedisCache", "retry_after", retry_after) or 0.0
        self.clock = clock
        self._options: dict[str, Any] = {
            "socket_timeout": socket_timeout,
            "socket_connect_timeout": socket_timeout,
            # one immediate retry on a fresh connection: after a Redis restart the pooled
            # sockets are dead, and the retry reconnects without failing the request
            "retry": Retry(NoBackoff(), 1),
            "max_connections": max_connections,
            "timeout": max(1.0, 10 * socket_timeout),  # wait for a free pooled connection
        }
        if url is None:
            self._options.update(host=host, port=port, db=db, password=password or None)
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Client] = (
            weakref.WeakKeyDictionary()
        )
        self._pid = os.getpid()
        self._orphans: list[_Client] = []
        self._down_until = 0.0

    def __repr__(self) -> str:
        where = self.url or f"{self._options['host']}:{self._options['port']}"
        if "@" in where:  # never show a password from the URL
            where = where.split("://", 1)[0] + "://***@" + where.rsplit("@", 1)[1]
        return f"RedisCache({where!r}, timeout={self.timeout!r})"

    def _client(self) -> _Client:
        if self._down_until and self.clock() < self._down_until:
            raise StoreError(f"{self!r} is unavailable; retrying in at most {self.retry_after} s")
        if os.getpid() != self._pid:
            # forked: the parent's sockets are not ours to use or close; keep them referenced
            # so their finalisers never run in this process
            self._orphans.extend(self._clients.values())
            self._clients = weakref.WeakKeyDictionary()
            self._pid = os.getpid()
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            # a blocking pool: a burst beyond max_connections waits briefly for a connection
            # instead of failing at once
            if self.url is not None:
                pool = aioredis.BlockingConnectionPool.from_url(self.url, **self._options)
            else:
                pool = aioredis.BlockingConnectionPool(**self._options)
            redis = aioredis.Redis.from_pool(pool)
            client = self._clients[loop] = _Client(redis, redis.register_script(_SET_INDEXED))
        return client

    def _name(self, kind: str, key: str, *, pattern: bool = False) -> bytes:
        """The Redis key of an entry (kind ``k``) or a group index (kind ``i``)."""
        name = self.prefix + kind + ":"
        if pattern:
            name = name.translate(_GLOB_SPECIAL) + key.translate(_GLOB_SPECIAL) + "*"
        else:
            name += key
        # surrogatepass: any str is a valid key, even one decoded with surrogateescape
        return name.encode("utf-8", "surrogatepass")

    def _failed(self, exc: BaseException, action: str) -> StoreError:
        self._down_until = self.clock() + self.retry_after
        return StoreError(f"{self!r} failed to {action}: {exc!r}")

    async def get(self, key: str) -> bytes | None:
        """Return the value under ``key``, or None."""
        client = self._client()
        try:
            value = await client.redis.get(self._name("k", key))
        except _FAILURES as exc:
            raise self._failed(exc, "get") from exc
        self._down_until = 0.0
        if value is None or isinstance(value, bytes):
            return value
        raise StoreError(f"{self!r} returned {type(value).__name__}, not bytes")

    async def set(self, key: str, value: bytes, *, ttl: float | None) -> None:
        """Store ``value`` with a millisecond TTL (None: no expiry), indexed by its group."""
        client = self._client()
        px = 0 if ttl is None or ttl <= 0 else max(1, math.ceil(ttl * 1000))
        name = self._name("k", key)
        group = key_group(key)
        try:
            if group:
                await client.set_indexed(keys=[name, self._name("i", group)], args=[value, px])
            else:
                await client.redis.set(name, value, px=px or None)
        except _FAILURES as exc:
            raise self._failed(exc, "set") from exc
        self._down_until = 0.0

    async def delete(self, key: str) -> None:
        """Remove ``key``."""
        client = self._client()
        try:
            await client.redis.delete(self._name("k", key))
        except _FAILURES as exc:
            raise self._failed(exc, "delete") from exc

    async def delete_group(self, group: str) -> int:
        """Remove every key whose group (up to and including its last ``:``) is ``group``.

        One index lookup, no scan of the database.
        """
        client = self._client()
        index = self._name("i", group)
        try:
            members = await client.redis.zrange(index, 0, -1)
            removed = 0
            batch = [name for name in members if isinstance(name, bytes)]  # no WITHSCORES
            for start in range(0, len(batch), 1000):
                removed += await client.redis.unlink(*batch[start : start + 1000])
            await client.redis.unlink(index)
        except _FAILURES as exc:
            raise self._failed(exc, "delete a group") from exc
        return int(removed)

    async def delete_prefix(self, prefix: str) -> int:
        """Remove every key of this cache starting with ``prefix`` (SCAN + UNLINK; slow on big
        databases: prefer :meth:`delete_group` where the prefix is a group)."""
        client = self._client()
        removed = 0
        try:
            for kind in ("k", "i"):
                batch: list[bytes] = []
                pattern = self._name(kind, prefix, pattern=True)
                async for name in client.redis.scan_iter(match=pattern, count=1000):
                    batch.append(name)
                    if len(batch) >= 1000:
                        count = await client.redis.unlink(*batch)
                        removed += count if kind == "k" else 0
                        batch.clear()
                if batch:
                    count = await client.redis.unlink(*batch)
                    removed += count if kind == "k" else 0
        except _FAILURES as exc:
            raise self._failed(exc, "delete keys") from exc
        return int(removed)

    async def clear(self) -> None:
        """Remove every key under this cache's prefix (never the whole database)."""
        await self.delete_prefix("")

    async def aclose(self) -> None:
        """Close this event loop's connections; a later call reconnects."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        client = self._clients.pop(loop, None)
        if client is not None:
            try:
                await client.redis.aclose()
            except _FAILURES as exc:
                raise StoreError(f"{self!r} failed to close: {exc!r}") from exc


class _Client(NamedTuple):
    """One event loop's connection pool and the scripts registered on it."""

    redis: aioredis.Redis
    set_indexed: AsyncScript
