"""CPU per Redis GET for each client RedisCache could use (docs/performance.md cites it).

Starts its own redis-server on a free loopback port, stores one small value, then for each
client runs rounds of 64 concurrent GETs on uvloop and reports the process CPU time (user +
system: the client's cost; Redis runs in another process) per GET, and GETs per second.

    python -m bench.redis_clients [--gets 20000] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import uvloop

from bench.redis_server import start_redis

CONCURRENCY = 64
CACHE_KEY = "r:/cached:GET"
PREFIX = "bench:"
VALUE = b"x" * 300  # about a small cached JSON response with its headers

Get = Callable[[str], Awaitable[Any]]


def _redis_key() -> str:
    from aeros.stores.redis.scripts import KeyNames

    return KeyNames(PREFIX).entry(CACHE_KEY).decode()


KEY = _redis_key()


async def _measure(get: Get, gets: int) -> tuple[float, float]:
    """(CPU µs per GET, GETs per second) over ``gets`` GETs, 64 at a time."""
    for _ in range(20):  # warm up: connections open, code paths hot
        assert await get(KEY) is not None
    rounds = max(1, gets // CONCURRENCY)
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(rounds):
        await asyncio.gather(*(get(KEY) for _ in range(CONCURRENCY)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    done = rounds * CONCURRENCY
    return cpu / done * 1e6, done / wall


async def redis_py(port: int, parser: str, pool: str) -> tuple[Get, Callable[[], Awaitable[Any]]]:
    import redis.asyncio as aioredis
    from redis._parsers import _AsyncHiredisParser, _AsyncRESP2Parser

    parser_class = _AsyncHiredisParser if parser == "hiredis" else _AsyncRESP2Parser
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    options: dict[str, Any] = {"host": "127.0.0.1", "port": port, "parser_class": parser_class}
    if pool == "blocking":  # what RedisCache used: a blocking pool, one retry, timeouts
        options.update(retry=Retry(NoBackoff(), 1), socket_timeout=0.1, socket_connect_timeout=0.1)
        client = aioredis.Redis.from_pool(
            aioredis.BlockingConnectionPool(max_connections=64, timeout=1, **options)
        )
    else:  # the default pool, no retry, no timeouts
        client = aioredis.Redis.from_pool(
            aioredis.ConnectionPool(max_connections=64, retry=Retry(NoBackoff(), 0), **options)
        )
    return client.get, client.aclose


async def redis_py_pipeline(port: int) -> tuple[Get, Callable[[], Awaitable[Any]]]:
    """A lower bound for redis-py: the 64 GETs of a round in one pipeline (one round trip)."""
    import redis.asyncio as aioredis

    client = aioredis.Redis(host="127.0.0.1", port=port)
    waiting: list[tuple[str, asyncio.Future[Any]]] = []

    async def flush() -> None:
        batch = waiting[:]
        waiting.clear()
        pipe = client.pipeline(transaction=False)
        for key, _ in batch:
            pipe.get(key)
        for (_, future), value in zip(batch, await pipe.execute(), strict=True):
            future.set_result(value)

    def get(key: str) -> asyncio.Future[Any]:
        future = asyncio.get_running_loop().create_future()
        waiting.append((key, future))
        if len(waiting) == 1:
            asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(flush()))
        return future

    return get, client.aclose


async def glide(port: int) -> tuple[Get, Callable[[], Awaitable[Any]]]:
    from glide import GlideClient, GlideClientConfiguration, NodeAddress

    client = await GlideClient.create(
        GlideClientConfiguration([NodeAddress("127.0.0.1", port)], request_timeout=100)
    )
    return client.get, client.close


async def aeros_store(port: int) -> tuple[Get, Callable[[], Awaitable[Any]]]:
    """What a RedisCache hit costs now: RedisCache.get itself."""
    from aeros import RedisCache

    cache = RedisCache(port=port, prefix=PREFIX)
    return (lambda key: cache.get(CACHE_KEY)), cache.aclose


async def pipelined(port: int) -> tuple[Get, Callable[[], Awaitable[Any]]]:
    """aeros' own GET path: one connection, concurrent GETs batched, hiredis parsing."""
    from aeros.stores.redis.pipelined import PipelinedGet

    connection = PipelinedGet({"host": "127.0.0.1", "port": port}, timeout=0.1)

    async def close() -> None:
        connection.close()

    return (lambda key: connection.get(key.encode())), close


CLIENTS: dict[str, Callable[[int], Awaitable[tuple[Get, Callable[[], Awaitable[Any]]]]]] = {
    "redis-py (RedisCache's old setup: blocking pool, retry, timeouts; hiredis)": lambda p: (
        redis_py(p, "hiredis", "blocking")
    ),
    "redis-py (blocking pool, retry, timeouts; pure-Python parser)": lambda p: redis_py(
        p, "python", "blocking"
    ),
    "redis-py (default pool, no retry, no timeouts; hiredis)": lambda p: redis_py(
        p, "hiredis", "plain"
    ),
    "redis-py pipeline of 64 (lower bound)": redis_py_pipeline,
    "valkey-glide": glide,
    "aeros PipelinedGet (one connection, batched writes, hiredis)": pipelined,
    "aeros RedisCache.get": aeros_store,
}


async def _run(port: int, gets: int, only: list[str]) -> None:
    import redis.asyncio as aioredis

    seed = aioredis.Redis(host="127.0.0.1", port=port)
    await seed.set(KEY, VALUE)
    await seed.aclose()
    print(f"{'client':<80} {'CPU µs/GET':>10} {'GET/s':>8}")
    for name, make in CLIENTS.items():
        if only and not any(word in name for word in only):
            continue
        get, close = await make(port)
        cpu, rate = await _measure(get, gets)
        await close()
        print(f"{name:<80} {cpu:>10.1f} {rate:>8.0f}", flush=True)


def main() -> None:
    """Run every client against a fresh redis-server and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gets", type=int, default=20_000)
    parser.add_argument("--only", nargs="*", default=[])
    args = parser.parse_args()
    _, port = start_redis()  # stopped when this process exits
    uvloop.run(_run(port, args.gets, args.only))


if __name__ == "__main__":
    main()
