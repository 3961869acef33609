"""Helpers for tests of a store's publish/subscribe (RedisCache, TieredCache's channel)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from aeros.errors import StoreError


async def receive_first(
    subscription: AsyncIterator[bytes],
    publisher: Any,
    channel: str = "inval",
    payload: bytes = b"m",
) -> bytes:
    """Publish ``payload`` until ``subscription`` (confirmed on its first read) receives it."""
    task = asyncio.ensure_future(anext(subscription))
    deadline = asyncio.get_running_loop().time() + 5
    while not task.done():
        assert asyncio.get_running_loop().time() < deadline, "nothing arrived"
        await publisher.publish(channel, payload)
        await asyncio.wait({task}, timeout=0.05)
    return task.result()


async def drain(subscription: AsyncIterator[bytes]) -> None:
    """Read ``subscription`` until it ends or raises."""
    async for _ in subscription:
        pass


async def subscribe_again(
    cache: Any, channel: str, payload: bytes, timeout: float
) -> AsyncIterator[bytes]:
    """Subscribe to ``channel`` until a subscription works again (the store recovered, within
    ``timeout`` seconds) and has received ``payload``; return it."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            again = cache.subscribe(channel)
            assert await receive_first(again, cache, channel, payload) == payload
            return again  # type: ignore[no-any-return]
        except StoreError:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.1)
