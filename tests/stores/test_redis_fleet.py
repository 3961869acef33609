"""RedisCache's fleet protocols on a real redis-server: tag indexes, locks, broadcast."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from aeros import ConfigurationError, RedisCache
from aeros.errors import StoreError
from aeros.stores import BroadcastStore, LockStore, TagStore
from aeros.stores.base import capabilities_of
from tests.support.broadcast import drain, receive_first, subscribe_again

pytestmark = pytest.mark.redis


async def commands_run(cache: RedisCache) -> set[str]:
    """The commands Redis ran since the last CONFIG RESETSTAT."""
    stats = await cache._client().redis.info("commandstats")
    return {name.removeprefix("cmdstat_") for name in stats}


async def test_redis_declares_fleet_capabilities(redis: Any) -> None:
    """RedisCache is a TagStore, LockStore and BroadcastStore and says so in capabilities."""
    cache = RedisCache(url=redis.url, socket_timeout=1.0)
    assert isinstance(cache, TagStore)
    assert isinstance(cache, LockStore)
    assert isinstance(cache, BroadcastStore)
    declared = capabilities_of(cache)
    assert (declared.tags, declared.locks, declared.broadcast, declared.shared) == (True,) * 4


async def test_redis_delete_tags_removes_tagged_entries_without_a_scan(redis: Any) -> None:
    """delete_tags removes every entry indexed under any given tag (and the indexes), leaves
    the rest, and never scans the keyspace."""
    cache = RedisCache(url=redis.url, prefix="t:", socket_timeout=1.0)
    await cache.set_tagged("r:/a:1", b"a", ttl=60, tags=["items", "item:1"])
    await cache.set_tagged("r:/a:2", b"b", ttl=None, tags=["items"])
    await cache.set_tagged("r:/b:1", b"c", ttl=60, tags=["other", "item:1"])
    await cache.set("r:/c:1", b"d", ttl=60)
    client = cache._client().redis
    await client.config_resetstat()
    assert await cache.delete_tags(["items", "missing"]) == 2
    assert "scan" not in await commands_run(cache)
    assert await cache.get("r:/a:1") is None
    assert await cache.get("r:/a:2") is None
    assert await cache.get("r:/b:1") == b"c"
    assert await cache.get("r:/c:1") == b"d"
    assert not await client.exists(cache.names.tag_index("items"))
    assert await cache.delete_tags(["item:1", "item:1"]) == 1  # a:1 is gone already
    assert await cache.get("r:/b:1") is None
    assert await cache.delete_tags([]) == 0
    await cache.aclose()


async def test_redis_tag_index_lives_as_long_as_its_longest_entry(redis: Any) -> None:
    """A tag's index expires with its longest-lived entry (none without TTL: it persists)."""
    cache = RedisCache(url=redis.url, prefix="t:", socket_timeout=1.0)
    await cache.set_tagged("g:a", b"1", ttl=30, tags=["x"])
    await cache.set_tagged("g:b", b"1", ttl=2, tags=["x", "y"])
    client = cache._client().redis
    assert 20_000 < await client.pttl(cache.names.tag_index("x")) <= 30_000
    assert 1_000 < await client.pttl(cache.names.tag_index("y")) <= 2_000
    await cache.set_tagged("g:c", b"1", ttl=None, tags=["y"])
    assert await client.pttl(cache.names.tag_index("y")) == -1
    # the entry and its group index still written alongside the tags
    assert await client.zrange(cache.names.group_index("g:"), 0, -1)
    assert await cache.delete_group("g:") == 3
    await cache.aclose()


async def test_redis_lock_excludes_until_released_or_expired(redis: Any) -> None:
    """try_lock gives one holder a token; others get None until it unlocks (with its own
    token only) or the lock's TTL runs out."""
    first, second = (
        RedisCache(url=redis.url, socket_timeout=1.0),
        RedisCache(url=redis.url, socket_timeout=1.0),
    )
    token = await first.try_lock("view:/a", ttl=10)
    assert token is not None
    assert await second.try_lock("view:/a", ttl=10) is None
    assert await second.try_lock("view:/b", ttl=10) is not None  # another name is free
    await second.unlock("view:/a", "not-the-token")
    assert await second.try_lock("view:/a", ttl=10) is None  # a wrong token releases nothing
    await first.unlock("view:/a", token)
    again = await second.try_lock("view:/a", ttl=0.2)
    assert again not in (None, token)
    deadline = asyncio.get_running_loop().time() + 5
    while (taken := await first.try_lock("view:/a", ttl=10)) is None:  # frees itself
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.05)
    await second.unlock("view:/a", again)  # expired and taken by first: left alone
    assert await second.try_lock("view:/a", ttl=10) is None
    await first.unlock("view:/a", taken)
    await first.aclose()
    await second.aclose()


@pytest.mark.parametrize("ttl", [0, -1, float("nan"), "1"])
async def test_redis_lock_refuses_a_bad_ttl(redis: Any, ttl: Any) -> None:
    """A lock without a positive finite TTL could outlive its holder: refused by name."""
    cache = RedisCache(url=redis.url, socket_timeout=1.0)
    with pytest.raises(ConfigurationError, match="ttl"):
        await cache.try_lock("x", ttl=ttl)
    await cache.aclose()


async def test_redis_broadcast_reaches_every_subscriber_of_its_prefix(redis: Any) -> None:
    """A message published on a channel reaches every subscriber of that channel under the
    same prefix, and no subscriber under another prefix."""
    publisher = RedisCache(url=redis.url, prefix="app:", socket_timeout=1.0)
    one, two = (
        RedisCache(url=redis.url, prefix="app:", socket_timeout=1.0),
        RedisCache(url=redis.url, prefix="app:", socket_timeout=1.0),
    )
    foreign = RedisCache(url=redis.url, prefix="other:", socket_timeout=1.0)
    first, second = one.subscribe("inval"), two.subscribe("inval")
    stranger = foreign.subscribe("inval")
    stray = asyncio.ensure_future(anext(stranger))
    assert await receive_first(first, publisher, "inval", b"purge:a") == b"purge:a"
    assert await receive_first(second, publisher, "inval", b"purge:b") == b"purge:b"
    await publisher.publish("inval", b"purge:c")
    # after draining repeats of the warm-up messages, both see purge:c
    for subscription in (first, second):
        async with asyncio.timeout(5):
            while (await anext(subscription)) != b"purge:c":
                pass
    await asyncio.sleep(0.1)
    assert not stray.done()
    stray.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await stray
    for subscription in (first, second, stranger):
        await subscription.aclose()  # type: ignore[attr-defined]
    for cache in (publisher, one, two, foreign):
        await cache.aclose()


async def test_redis_subscription_loss_raises_store_error(redis: Any) -> None:
    """When Redis goes away the subscription ends with StoreError (messages may be lost), and
    a new subscription works once Redis is back."""
    cache = RedisCache(url=redis.url, retry_after=0.1, socket_timeout=1.0)
    subscription = cache.subscribe("inval")
    assert await receive_first(subscription, cache, "inval", b"hello") == b"hello"
    redis.stop()
    try:
        async with asyncio.timeout(5):
            with pytest.raises(StoreError, match="subscription"):
                await drain(subscription)  # warm-up repeats first, then the loss
    finally:
        redis.start()
    again = await subscribe_again(cache, "inval", b"back", timeout=5)
    await again.aclose()  # type: ignore[attr-defined]
    await cache.aclose()


async def test_redis_fleet_calls_fail_fast_when_down(redis: Any) -> None:
    """Redis down: locks, publish, tag purges and subscribe raise StoreError quickly."""
    cache = RedisCache(url=redis.url, retry_after=0.2, socket_timeout=1.0)
    redis.stop()
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        for call in (
            lambda: cache.try_lock("x", ttl=1),
            lambda: cache.unlock("x", "t"),
            lambda: cache.publish("c", b"m"),
            lambda: cache.delete_tags(["a"]),
            lambda: cache.set_tagged("g:k", b"v", ttl=1, tags=["a"]),
            lambda: anext(cache.subscribe("c")),
        ):
            with pytest.raises(StoreError):
                await call()
        assert loop.time() - started < 2.0
    finally:
        redis.start()
    await cache.aclose()
