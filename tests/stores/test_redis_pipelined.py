"""RedisCache's hit path: concurrent GETs pipelined on one connection per event loop."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import pytest

from aeros import RedisCache
from aeros.errors import StoreError
from aeros.stores.redis.pipelined import PipelinedGet

pytestmark = pytest.mark.redis


async def get_connections(cache: RedisCache) -> int:
    """How many client connections have run GET (CLIENT LIST's last command)."""
    clients = await cache._client().redis.client_list()
    return sum(1 for client in clients if client["cmd"] == "get")


async def test_redis_concurrent_gets_share_one_connection(redis: Any) -> None:
    """200 concurrent gets of different keys travel on one connection and each gets its own
    value back (replies are matched to requests in order)."""
    cache = RedisCache(url=redis.url, socket_timeout=1.0)
    for n in range(200):
        await cache.set(f"g:{n}", b"value-%d" % n, ttl=60)
    values = await asyncio.gather(*(cache.get(f"g:{n}") for n in range(200)))
    assert values == [b"value-%d" % n for n in range(200)]
    assert await get_connections(cache) == 1
    await cache.aclose()


async def test_redis_cancelled_get_leaves_the_others_right(redis: Any) -> None:
    """A get whose caller is cancelled drops its reply; the replies after it still reach
    their own callers."""
    cache = RedisCache(url=redis.url, socket_timeout=1.0)
    for n in range(50):
        await cache.set(f"g:{n}", b"%d" % n, ttl=60)
    tasks = [asyncio.ensure_future(cache.get(f"g:{n}")) for n in range(50)]
    await asyncio.sleep(0)  # every request is queued
    for task in tasks[::3]:
        task.cancel()
    done = await asyncio.gather(*tasks, return_exceptions=True)
    for n, result in enumerate(done):
        if n % 3:
            assert result == b"%d" % n
        else:
            assert isinstance(result, asyncio.CancelledError)
    assert await cache.get("g:7") == b"7"
    await cache.aclose()


async def test_redis_get_selects_the_database_of_the_url(redis: Any) -> None:
    """The pipelined GET reads the database the URL names (SELECT on connect), like every
    other call."""
    db3 = RedisCache(url=redis.url.rsplit("/", 1)[0] + "/3", socket_timeout=1.0)
    db0 = RedisCache(url=redis.url, socket_timeout=1.0)
    await db3.set("g:k", b"in-3", ttl=60)
    assert await db3.get("g:k") == b"in-3"
    assert await db0.get("g:k") is None
    await db3.aclose()
    await db0.aclose()


async def test_redis_get_authenticates(redis: Any) -> None:
    """With a password the pipelined GET authenticates first; a wrong one is a StoreError."""
    admin = RedisCache(url=redis.url, socket_timeout=1.0)
    client = admin._client().redis
    secret = secrets.token_hex(8)
    await client.config_set("requirepass", secret)
    try:
        await client.execute_command("AUTH", secret)
        cache = RedisCache(port=redis.port, password=secret, socket_timeout=1.0)
        await cache.set("g:k", b"v", ttl=60)
        assert await cache.get("g:k") == b"v"
        await cache.aclose()
        wrong = RedisCache(port=redis.port, password=secret + "-wrong", socket_timeout=1.0)
        with pytest.raises(StoreError):
            await wrong.get("g:k")
        await wrong.aclose()
    finally:
        await client.config_set("requirepass", "")
        await admin.aclose()


async def test_pipelined_get_fails_waiting_gets_when_the_server_goes(redis: Any) -> None:
    """Every GET waiting on a connection that breaks fails with ConnectionError, and the next
    GET connects afresh."""
    connection = PipelinedGet({"host": "127.0.0.1", "port": redis.port}, timeout=0.5)
    assert await connection.get(b"missing") is None
    redis.stop()
    try:
        with pytest.raises(ConnectionError):
            await connection.get(b"missing")
    finally:
        redis.start()
    assert await connection.get(b"missing") is None
    connection.close()
