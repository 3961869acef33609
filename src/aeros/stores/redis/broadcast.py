"""One pub/sub subscription of RedisCache, which says when it is lost instead of hiding it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisClusterException

from aeros.errors import StoreError
from aeros.stores.base import stop_if_cancelled

__all__ = ["FAILURES", "messages"]

# RuntimeError: uvloop raises it (not an OSError) when a write hits a transport that the peer
# has reset, and redis-py lets it through; RedisClusterException: a cluster client that reaches
# no node (it does not derive from RedisError)
FAILURES: tuple[type[BaseException], ...] = (
    aioredis.RedisError,
    RedisClusterException,
    OSError,
    asyncio.TimeoutError,
    RuntimeError,
)


async def messages(
    client: aioredis.Redis,
    channel: bytes,
    *,
    helpers: Sequence[aioredis.Redis] = (),
    where: str,
    answer_within: float,
    ping_every: float = 1.0,
) -> AsyncIterator[bytes]:
    """Messages published on ``channel`` from the moment the subscription is confirmed.

    A quiet connection is probed with PING every ``ping_every`` seconds; a connection that
    breaks, or does not answer within ``answer_within`` seconds, ends the iteration with
    :class:`StoreError` (messages may have been missed). Closes ``client`` and ``helpers``
    (the Sentinel connections that found it) when done.
    """
    pubsub = client.pubsub()
    loop = asyncio.get_running_loop()
    try:
        try:
            await pubsub.subscribe(channel)
            deadline = loop.time() + answer_within
            while True:  # the confirmation: from here on nothing published is missed
                reply = await pubsub.get_message(timeout=answer_within)
                stop_if_cancelled()  # redis-py's read may have let a cancellation go
                if reply is not None and reply["type"] == "subscribe":
                    break
                if loop.time() > deadline:
                    raise StoreError(f"{where} did not confirm the subscription to {channel!r}")
        except FAILURES as exc:
            stop_if_cancelled(exc)
            raise StoreError(f"{where} failed to subscribe to {channel!r}: {exc!r}") from exc
        heard = loop.time()
        pinged: float | None = None
        while True:
            try:
                message = await pubsub.get_message(timeout=min(ping_every, answer_within))
                stop_if_cancelled()  # redis-py's read may have let a cancellation go
                now = loop.time()
                if message is None:
                    if pinged is not None and now - pinged > answer_within:
                        raise StoreError(f"{where} stopped answering on {channel!r}")
                    if pinged is None and now - heard >= ping_every:
                        await pubsub.ping()
                        pinged = now
                    continue
            except FAILURES as exc:
                stop_if_cancelled(exc)
                raise StoreError(f"{where} lost the subscription to {channel!r}: {exc!r}") from exc
            heard, pinged = now, None
            if message["type"] == "message":
                yield bytes(message["data"])
            elif message["type"] in ("unsubscribe", "sunsubscribe"):
                raise StoreError(f"{where} ended the subscription to {channel!r}")
    finally:
        closing: Any
        for closing in (pubsub, client, *helpers):
            # a connection that is gone already has nothing left to release
            with contextlib.suppress(*FAILURES):
                await closing.aclose()
