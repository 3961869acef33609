"""Where RedisCache's Redis is: one server, a Cluster, or a primary guarded by Sentinel.

:class:`Topology` holds the checked connection settings; :meth:`Topology.client` builds one
event loop's client (with its connection pool) and :meth:`Topology.subscriber` a client for
one pub/sub subscription that never reconnects behind its subscriber's back.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import parse_url
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff

from aeros import _validate
from aeros.errors import ConfigurationError
from aeros.stores.redis.cluster_get import ClusterGet
from aeros.stores.redis.pipelined import Address, PipelinedGet

__all__ = ["Clients", "Topology"]

_SCHEMES = ("redis://", "rediss://", "unix://")


@dataclass(frozen=True, slots=True, kw_only=True)
class Topology:
    """Checked connection settings of a RedisCache (see :class:`RedisCache` for each one)."""

    host: str = "127.0.0.1"
    port: int = 6379
    password: str | None = None
    db: int = 0
    url: str | None = None
    cluster: bool = False
    sentinels: tuple[tuple[str, int], ...] = ()
    service_name: str = ""
    socket_timeout: float = 0.1
    max_connections: int = 64

    @classmethod
    def checked(
        cls,
        *,
        host: str,
        port: int,
        password: str | None,
        db: int,
        url: str | None,
        cluster: bool,
        sentinels: Sequence[tuple[str, int]] | None,
        service_name: str | None,
        socket_timeout: float,
        max_connections: int,
    ) -> Topology:
        """Settings checked against each other.

        Raises:
            ConfigurationError: a bad value, or settings that do not go together (a cluster
                on a unix socket, Sentinel without ``service_name``, ...).
        """
        if url is not None and (not isinstance(url, str) or not url.startswith(_SCHEMES)):
            raise ConfigurationError(
                f"RedisCache(url=...) must start with redis://, rediss:// or unix://; got {url!r}"
            )
        if not isinstance(host, str) or not host:
            raise ConfigurationError(f"RedisCache(host={host!r}) must be a non-empty str")
        _validate.integer("RedisCache", "port", port, minimum=1, maximum=65535)
        _validate.integer("RedisCache", "db", db, minimum=0)
        _validate.integer("RedisCache", "max_connections", max_connections, minimum=1)
        socket_timeout = _validate.seconds("RedisCache", "socket_timeout", socket_timeout) or 0.0
        if not isinstance(cluster, bool):
            raise ConfigurationError(f"RedisCache(cluster={cluster!r}) must be True or False")
        nodes = _checked_sentinels(sentinels)
        if cluster:
            if url is not None and url.startswith("unix://"):
                raise ConfigurationError(
                    f"RedisCache(cluster=True) needs a redis:// or rediss:// url (a cluster is "
                    f"reached over TCP); got url={url!r}"
                )
            if db != 0 or (url is not None and _url_db(url) not in (None, 0)):
                raise ConfigurationError(
                    f"RedisCache(cluster=True) has only database 0; got db={db!r}, url={url!r}"
                )
            if nodes:
                raise ConfigurationError(
                    "RedisCache(cluster=True) and sentinels=... exclude each other: a Cluster "
                    "fails over by itself; use one of them"
                )
        if nodes:
            if not isinstance(service_name, str) or not service_name:
                raise ConfigurationError(
                    f"RedisCache(sentinels=...) needs service_name, the name Sentinel monitors "
                    f"the primary under (e.g. 'mymaster'); got service_name={service_name!r}"
                )
            if url is not None:
                raise ConfigurationError(
                    f"RedisCache(sentinels=...) finds the primary through Sentinel: leave url "
                    f"unset (got url={url!r}); pass password= and db= directly"
                )
        elif service_name is not None:
            raise ConfigurationError(
                f"RedisCache(service_name={service_name!r}) needs sentinels=[(host, port), ...]"
            )
        return cls(
            host=host,
            port=port,
            password=password or None,
            db=db,
            url=url,
            cluster=cluster,
            sentinels=nodes,
            service_name=service_name or "",
            socket_timeout=socket_timeout,
            max_connections=max_connections,
        )

    @property
    def mode(self) -> str:
        """``"cluster"``, ``"sentinel"`` or ``"single"``."""
        if self.cluster:
            return "cluster"
        return "sentinel" if self.sentinels else "single"

    def where(self) -> str:
        """The address for messages and reprs, without any password."""
        if self.sentinels:
            nodes = ",".join(f"{host}:{port}" for host, port in self.sentinels)
            return f"sentinel://{nodes}/{self.service_name}"
        where = self.url or f"{self.host}:{self.port}"
        if "@" in where:  # never show a password from the URL
            where = where.split("://", 1)[0] + "://***@" + where.rsplit("@", 1)[1]
        return where

    def client(self) -> Clients:
        """New clients for the running event loop (see :class:`Clients`)."""
        options: dict[str, Any] = {
            **self._timeouts(),
            # one immediate retry on a fresh connection: after a Redis restart (or a failover)
            # the pooled sockets are dead, and the retry reconnects without failing the request
            "retry": Retry(NoBackoff(), 1),
        }
        if self.cluster:
            options.update(max_connections=self.max_connections)
            if self.url is not None:  # credentials from the URL
                cluster = RedisCluster.from_url(self.url, **options)
                parsed = parse_url(self.url)
                credentials = {
                    "username": parsed.get("username"),
                    "password": parsed.get("password"),
                }
            else:
                cluster = RedisCluster(
                    host=self.host, port=self.port, password=self.password, **options
                )
                credentials = {"password": self.password}
            return Clients(cluster, [], ClusterGet(cluster, credentials, self.socket_timeout))
        if self.sentinels:
            sentinel = self._sentinel(options)
            primary = sentinel.master_for(
                self.service_name,
                db=self.db,
                password=self.password,
                max_connections=self.max_connections,
                **options,
            )

            async def where_primary_is() -> Address:
                host, port = await sentinel.discover_master(self.service_name)
                return {"host": host, "port": port, "db": self.db, "password": self.password}

            getter = PipelinedGet(where_primary_is, self.socket_timeout)
            return Clients(primary, list(sentinel.sentinels), getter)
        # a blocking pool: a burst beyond max_connections waits briefly for a connection
        # instead of failing at once
        options.update(
            max_connections=self.max_connections,
            timeout=max(1.0, 10 * self.socket_timeout),  # wait for a free pooled connection
        )
        if self.url is not None:
            pool = aioredis.BlockingConnectionPool.from_url(self.url, **options)
        else:
            pool = aioredis.BlockingConnectionPool(
                host=self.host, port=self.port, db=self.db, password=self.password, **options
            )
        address = self._plain_address()
        get = None if address is None else PipelinedGet(address, self.socket_timeout)
        return Clients(aioredis.Redis.from_pool(pool), [], get)

    def subscriber(self, client: Any) -> tuple[aioredis.Redis, list[aioredis.Redis]]:
        """A client for one subscription: one connection, never silently reconnected (a
        reconnect may have missed messages; the subscriber must hear of it). ``client`` is
        this loop's :meth:`client` (a Cluster subscription goes to one of its nodes: plain
        pub/sub messages reach every node)."""
        options: dict[str, Any] = {**self._timeouts(), "retry": Retry(NoBackoff(), 0)}
        if self.cluster:
            node = random.choice(client.get_nodes())  # noqa: S311 - spreading load, not secrecy
            redis = aioredis.Redis(
                host=node.host, port=node.port, password=self.password, **options
            )
            return redis, []
        if self.sentinels:
            sentinel = self._sentinel(options)
            redis = sentinel.master_for(
                self.service_name, db=self.db, password=self.password, **options
            )
            return redis, list(sentinel.sentinels)
        if self.url is not None:
            return aioredis.Redis.from_url(self.url, **options), []
        redis = aioredis.Redis(
            host=self.host, port=self.port, db=self.db, password=self.password, **options
        )
        return redis, []

    def _plain_address(self) -> Address | None:
        """Where a single server is, for :class:`PipelinedGet` (None: TLS or URL options,
        which only redis-py handles)."""
        if self.url is None:
            return {"host": self.host, "port": self.port, "db": self.db, "password": self.password}
        if self.url.startswith("rediss://"):
            return None
        parsed: dict[str, Any] = dict(parse_url(self.url))
        if set(parsed) - {"host", "port", "db", "password", "username", "path", "connection_class"}:
            return None  # options in the URL (timeouts, TLS settings): leave them to redis-py
        parsed.pop("connection_class", None)
        return parsed

    def _timeouts(self) -> dict[str, Any]:
        return {
            "socket_timeout": self.socket_timeout,
            "socket_connect_timeout": self.socket_timeout,
        }

    def _sentinel(self, options: dict[str, Any]) -> Sentinel:
        return Sentinel(
            list(self.sentinels),
            sentinel_kwargs={**self._timeouts(), "retry": Retry(NoBackoff(), 0)},
            **options,
        )


class Clients(NamedTuple):
    """One event loop's clients."""

    redis: Any
    """A :class:`redis.asyncio.Redis` (single server, Sentinel) with its own pool, or a
    :class:`redis.asyncio.cluster.RedisCluster` that discovered the nodes from the one given."""

    helpers: list[aioredis.Redis]
    """Clients to close with it (the Sentinel connections)."""

    get: PipelinedGet | ClusterGet | None
    """The GETs of a hit, pipelined (see ``pipelined.py``, ``cluster_get.py``); None:
    ``redis`` serves them (TLS, or options in the URL only redis-py knows)."""


def _checked_sentinels(sentinels: Sequence[tuple[str, int]] | None) -> tuple[tuple[str, int], ...]:
    if sentinels is None:
        return ()
    bad = ConfigurationError(
        f"RedisCache(sentinels={sentinels!r}) must be a non-empty list of (host, port) pairs"
    )
    if isinstance(sentinels, str | bytes) or not isinstance(sentinels, Sequence) or not sentinels:
        raise bad
    nodes = []
    for node in sentinels:
        if not isinstance(node, tuple | list) or len(node) != 2:
            raise bad
        host, port = node
        if not isinstance(host, str) or not host:
            raise bad
        _validate.integer("RedisCache", "sentinels port", port, minimum=1, maximum=65535)
        nodes.append((host, port))
    return tuple(nodes)


def _url_db(url: str) -> int | None:
    path = url.split("://", 1)[1].split("?", 1)[0]
    tail = path.split("/", 1)[1] if "/" in path else ""
    return int(tail) if tail.isdigit() else None
