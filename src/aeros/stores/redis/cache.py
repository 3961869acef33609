"""RedisCache: entries in Redis through redis-py's asyncio client, shared by every instance.

One client (and its connection pool) per process and per event loop, created on first use:
a forked worker never reuses its parent's sockets, and servers running in several threads each
talk to Redis from their own loop. Timeouts are short (100 ms by default) so a slow or stopped
Redis costs a request little; after a failure the store answers ``StoreError`` at once for
``retry_after`` seconds instead of waiting on a dead server, then tries again by itself. The
same holds on a single server, a Cluster and a Sentinel-guarded primary.
"""

from __future__ import annotations

import asyncio
import math
import os
import secrets
import time
import weakref
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, ClassVar, NamedTuple

import hiredis
from redis.commands.core import AsyncScript
from redis.crc import key_slot

from aeros import _validate
from aeros.errors import ConfigurationError, StoreError
from aeros.stores.base import Capabilities, Clock, checked_timeout, key_group
from aeros.stores.redis import scripts
from aeros.stores.redis.broadcast import FAILURES, messages
from aeros.stores.redis.cluster_get import ClusterGet
from aeros.stores.redis.connect import Topology
from aeros.stores.redis.pipelined import PipelinedGet

__all__ = ["RedisCache"]

_GET_FAILURES: tuple[type[BaseException], ...] = (*FAILURES, hiredis.HiredisError)


def _one_slot(name: bytes) -> int:
    return 0


class RedisCache:
    """Entries in Redis: shared by every worker and every instance behind a load balancer.

    Args:
        host: Redis host. Default ``127.0.0.1``.
        port: Redis port. Default 6379.
        password: password (empty: none).
        db: database number. Default 0.
        url: ``redis://``, ``rediss://`` or ``unix://`` URL; replaces host/port/password/db.
        cluster: the server at ``url`` (or host/port) is one node of a Redis Cluster: the
            client discovers the others and follows slot moves. Default False.
        sentinels: ``[(host, port), ...]`` of Redis Sentinels; the primary they know as
            ``service_name`` is used, and followed when they fail over. ``password`` and
            ``db`` apply to the primary; the Sentinels are asked without a password.
            Default None.
        service_name: the name the Sentinels monitor the primary under (with ``sentinels``).
        timeout: default lifetime in seconds of a cached response; 0 or None: no expiry.
            Default 300.
        prefix: prepended to every Redis key, so :meth:`clear` removes only this cache's keys
            and several apps can share one database; must not be empty. Default ``aeros:``.
            Even a prefix that other programs' keys share is safe: :meth:`clear` deletes only
            names of this cache's own layout under it. See
            :class:`aeros.stores.redis.scripts.KeyNames` for the layout: an entry shares a
            cluster slot with its group's index, so :meth:`delete_group` needs no scan.
        socket_timeout: seconds to wait for a connection or an answer. Default 0.1.
        retry_after: seconds to fail fast after a failure before trying Redis again. Default 1.
        max_connections: connections per process and event loop (per node on a Cluster).
            Default 64.
        clock: seconds for ``retry_after``; default ``time.monotonic``. Entry TTLs are kept
            by Redis itself, on its own clock.

    Raises:
        ConfigurationError: a bad value, or settings that do not go together (a Cluster on a
            unix socket, Sentinels without ``service_name``, a Cluster with a database other
            than 0, ...).
    """

    capabilities: ClassVar[Capabilities] = Capabilities(
        groups=True, prefix_delete=True, tags=True, locks=True, broadcast=True
    )
    """Shared by every process and instance; groups and tags are indexed (no scans); locks
    and broadcast through the same Redis."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 6379,
        password: str | None = "",
        db: int = 0,
        *,
        url: str | None = None,
        cluster: bool = False,
        sentinels: Sequence[tuple[str, int]] | None = None,
        service_name: str | None = None,
        timeout: float | None = 300,
        prefix: str = "aeros:",
        socket_timeout: float = 0.1,
        retry_after: float = 1.0,
        max_connections: int = 64,
        clock: Clock = time.monotonic,
    ) -> None:
        self.topology = Topology.checked(
            host=host,
            port=port,
            password=password,
            db=db,
            url=url,
            cluster=cluster,
            sentinels=sentinels,
            service_name=service_name,
            socket_timeout=socket_timeout,
            max_connections=max_connections,
        )
        if not isinstance(prefix, str) or not prefix:
            raise ConfigurationError(
                f"RedisCache(prefix={prefix!r}) must be a non-empty str such as 'aeros:' or "
                "'myapp:cache:': an empty one mixes this cache's keys with every other key "
                "of the database"
            )
        self.timeout = checked_timeout("RedisCache", timeout)
        self.prefix = prefix
        self.url = url
        self.retry_after = _validate.seconds("RedisCache", "retry_after", retry_after) or 0.0
        self.clock = clock
        self.names = scripts.KeyNames(prefix)
        # which names one call may touch together: on a Cluster, keys of one slot only
        self._slot: Callable[[bytes], int] = key_slot if cluster else _one_slot
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Client] = (
            weakref.WeakKeyDictionary()
        )
        self._pid = os.getpid()
        self._orphans: list[_Client] = []
        self._down_until = 0.0

    def __repr__(self) -> str:
        return f"RedisCache({self.topology.where()!r}, timeout={self.timeout!r})"

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
            redis, helpers, get = self.topology.client()
            client = self._clients[loop] = _Client(
                redis,
                helpers,
                get,
                redis.register_script(scripts.INDEX),
                redis.register_script(scripts.TAKE_INDEX),
                redis.register_script(scripts.UNLOCK),
            )
        return client

    def _failed(self, exc: BaseException, action: str) -> StoreError:
        self._down_until = self.clock() + self.retry_after
        return StoreError(f"{self!r} failed to {action}: {exc!r}")

    async def get(self, key: str) -> bytes | None:
        """Return the value under ``key``, or None."""
        client = self._client()
        try:
            if client.fast_get is not None:
                value = await client.fast_get.get(self.names.entry(key))
            else:
                value = await client.redis.get(self.names.entry(key))
        except _GET_FAILURES as exc:
            raise self._failed(exc, "get") from exc
        self._down_until = 0.0
        if value is None or isinstance(value, bytes):
            return value
        raise StoreError(f"{self!r} returned {type(value).__name__}, not bytes")

    async def set(self, key: str, value: bytes, *, ttl: float | None) -> None:
        """Store ``value`` with a millisecond TTL (None: no expiry), indexed by its group."""
        await self.set_tagged(key, value, ttl=ttl, tags=())

    async def set_tagged(
        self, key: str, value: bytes, *, ttl: float | None, tags: Sequence[str]
    ) -> None:
        """:meth:`set`, and add ``key`` to the index of each of ``tags`` (a sorted set that
        lives as long as its longest-lived entry)."""
        client = self._client()
        px = 0 if ttl is None or ttl <= 0 else max(1, math.ceil(ttl * 1000))
        name = self.names.entry(key)
        group = key_group(key)
        indexes = [self.names.tag_index(tag) for tag in dict.fromkeys(tags)]
        if group:
            indexes.append(self.names.group_index(group))
        try:
            if not indexes:
                await client.redis.set(name, value, px=px or None)
            else:
                home = self._slot(name)
                ours = [index for index in indexes if self._slot(index) == home]
                # the other slots' indexes first: if the entry's write fails after them, an
                # index names an absent key (harmless), never a live entry it misses
                others = scripts.by_slot(
                    (index for index in indexes if self._slot(index) != home), self._slot
                )
                for batch in others:
                    await client.write_index(keys=batch, args=[b"", px, 0, name])
                await client.write_index(keys=[name, *ours], args=[value, px, 1, name])
        except FAILURES as exc:
            raise self._failed(exc, "set") from exc
        self._down_until = 0.0

    async def delete(self, key: str) -> None:
        """Remove ``key``."""
        client = self._client()
        try:
            await client.redis.delete(self.names.entry(key))
        except FAILURES as exc:
            raise self._failed(exc, "delete") from exc

    async def delete_group(self, group: str) -> int:
        """Remove every key whose group (up to and including its last ``:``) is ``group``.

        One index lookup, no scan of the database.
        """
        return await self._delete_indexed([self.names.group_index(group)], "delete a group")

    async def delete_tags(self, tags: Sequence[str]) -> int:
        """Remove every entry tagged with any of ``tags``, and those tags' indexes; return how
        many entries were removed. One index read per tag, deletes per cluster slot."""
        names = [self.names.tag_index(tag) for tag in dict.fromkeys(tags)]
        return await self._delete_indexed(names, "delete tags")

    async def _delete_indexed(self, indexes: list[bytes], action: str) -> int:
        client = self._client()
        members: dict[bytes, None] = {}
        removed = 0
        try:
            for index in indexes:
                taken = await client.take_index(keys=[index])
                members.update(dict.fromkeys(name for name in taken if isinstance(name, bytes)))
            for batch in scripts.by_slot(members, self._slot):
                for start in range(0, len(batch), 1000):
                    removed += await client.redis.unlink(*batch[start : start + 1000])
        except FAILURES as exc:
            raise self._failed(exc, action) from exc
        return int(removed)

    async def delete_prefix(self, prefix: str) -> int:
        """Remove every key of this cache starting with ``prefix`` (SCAN + UNLINK on every
        node; slow on big databases: prefer :meth:`delete_group` where the prefix is a group)."""
        entries = await self._unlink_matching(self.names.entry_pattern(prefix), "delete keys")
        await self._unlink_matching(self.names.group_pattern(prefix), "delete keys")
        return entries

    async def clear(self) -> None:
        """Remove every entry, index and lock of this cache: the keys under its prefix that
        have its layout, never another program's key (nor the whole database)."""
        await self._unlink_matching(self.names.everything(), "clear")

    async def _unlink_matching(self, pattern: bytes, action: str) -> int:
        client = self._client()
        removed = 0
        try:
            batch: list[bytes] = []
            async for name in client.redis.scan_iter(match=pattern, count=1000):
                if not self.names.owns(name):
                    continue  # under our prefix, but not a name this cache writes
                batch.append(name)
                if len(batch) >= 1000:
                    removed += await self._unlink(client, batch)
                    batch = []
            removed += await self._unlink(client, batch)
        except FAILURES as exc:
            raise self._failed(exc, action) from exc
        return removed

    async def _unlink(self, client: _Client, names: list[bytes]) -> int:
        removed = 0
        for batch in scripts.by_slot(names, self._slot):
            removed += int(await client.redis.unlink(*batch))
        return removed

    async def try_lock(self, name: str, ttl: float) -> str | None:
        """Take lock ``name`` for ``ttl`` seconds (SET NX PX with a random token) if nobody
        holds it: return the token, or None when another holder has it."""
        seconds = _validate.seconds("RedisCache.try_lock", "ttl", ttl) or 0.0
        if seconds <= 0:
            raise ConfigurationError(f"RedisCache.try_lock(ttl={ttl!r}) must be > 0 seconds")
        client = self._client()
        token = secrets.token_hex(16)
        try:
            taken = await client.redis.set(
                self.names.lock(name), token, nx=True, px=max(1, math.ceil(seconds * 1000))
            )
        except FAILURES as exc:
            raise self._failed(exc, "take a lock") from exc
        self._down_until = 0.0
        return token if taken else None

    async def unlock(self, name: str, token: str) -> None:
        """Release ``name`` if ``token`` still holds it (compare and delete in one script)."""
        client = self._client()
        try:
            await client.unlock(keys=[self.names.lock(name)], args=[token])
        except FAILURES as exc:
            raise self._failed(exc, "release a lock") from exc

    async def publish(self, channel: str, message: bytes) -> None:
        """Send ``message`` to every subscriber of ``channel`` (Redis pub/sub on
        ``<prefix>b:<channel>``), in every process and instance using this Redis."""
        client = self._client()
        try:
            await client.redis.publish(self.names.channel(channel), message)
        except FAILURES as exc:
            raise self._failed(exc, "publish") from exc

    def subscribe(self, channel: str) -> AsyncIterator[bytes]:
        """Messages published on ``channel`` once the subscription is confirmed (the first
        ``__anext__`` subscribes). Its own connection, probed with PING when quiet; raises
        :class:`StoreError` when the subscription is lost (Redis restarted, failed over, or
        stopped answering): messages may have been missed."""
        return self._subscribe(channel)

    async def _subscribe(self, channel: str) -> AsyncIterator[bytes]:
        client = self._client()
        where = repr(self)
        try:
            if self.topology.cluster:
                await client.redis.initialize()  # the nodes to pick from (once per client)
            subscriber, helpers = self.topology.subscriber(client.redis)
        except FAILURES as exc:
            raise self._failed(exc, "subscribe") from exc
        answer_within = max(1.0, 10 * self.topology.socket_timeout)
        async for message in messages(
            subscriber,
            self.names.channel(channel),
            helpers=helpers,
            where=where,
            answer_within=answer_within,
        ):
            yield message

    async def aclose(self) -> None:
        """Close this event loop's connections; a later call reconnects."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        client = self._clients.pop(loop, None)
        if client is not None:
            if client.fast_get is not None:
                client.fast_get.close()
            try:
                for closing in (client.redis, *client.helpers):
                    await closing.aclose()
            except FAILURES as exc:
                raise StoreError(f"{self!r} failed to close: {exc!r}") from exc


class _Client(NamedTuple):
    """One event loop's client (with its connection pool) and the scripts registered on it."""

    redis: Any
    helpers: list[Any]
    fast_get: PipelinedGet | ClusterGet | None  # hits' GETs, pipelined (see connect.py)
    write_index: AsyncScript
    take_index: AsyncScript
    unlock: AsyncScript
