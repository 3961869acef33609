"""TieredCache: a local tier per process in front of a real Redis, kept coherent by pub/sub."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from aeros import ConfigurationError, RedisCache, SimpleCache, TieredCache
from aeros.errors import StoreError
from aeros.stores import Capabilities
from aeros.stores.base import capabilities_of


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``predicate`` on the loop until true; fail at the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, f"not true within {timeout}s"
        await asyncio.sleep(0.01)


def tiered(url: str, **options: Any) -> TieredCache:
    return TieredCache(
        local=SimpleCache(),
        shared=RedisCache(url=url, prefix="tt:", socket_timeout=1.0),
        local_ttl=60,
        **options,
    )


@pytest.fixture
async def pair(redis: Any) -> AsyncIterator[tuple[TieredCache, TieredCache]]:
    """Two TieredCaches on one Redis, standing for two processes: each has its own local
    tier and subscription; both subscriptions live."""
    a, b = tiered(redis.url), tiered(redis.url)
    for cache in (a, b):
        assert await cache.get("warm") is None  # starts the subscription
    await until(lambda: a.live and b.live)
    yield a, b
    await a.aclose()
    await b.aclose()


async def write(a: TieredCache, b: TieredCache, key: str, value: bytes) -> None:
    """``a.set``, and wait until ``b`` heard of it (a read in flight meanwhile does not fill
    b's local tier: it might hold the older value)."""
    heard = b._generation
    await a.set(key, value, ttl=300)
    await until(lambda: b._generation > heard)


async def fill_both(a: TieredCache, b: TieredCache, *keys: str) -> None:
    for key in keys:
        await write(a, b, key, b"v1")
    for key in keys:
        assert await b.get(key) == b"v1"  # from the shared tier, kept in b's local tier
    for cache in (a, b):
        assert all(cache.local.get_nowait(key) == b"v1" for key in keys)


async def test_tiered_local_hit_and_fill(pair: tuple[TieredCache, TieredCache]) -> None:
    """A write goes to both tiers; a local miss reads the shared tier and fills the local one,
    bounded by local_ttl; the hot path is the local tier's own get_nowait."""
    a, b = pair
    await write(a, b, "g:k", b"v")
    assert a.local.get_nowait("g:k") == b"v"
    assert b.local.get_nowait("g:k") is None
    assert await b.get("g:k") == b"v"
    assert b.local.get_nowait("g:k") == b"v"
    assert b.get_nowait == b.local.get_nowait
    assert b.local._entries["g:k"][0] - b.local.clock() <= 60
    caps = capabilities_of(a)
    assert (caps.shared, caps.local_tier, caps.nowait_get, caps.tags, caps.locks) == (
        True,
        True,
        True,
        True,
        True,
    )


@pytest.mark.parametrize(
    "invalidate",
    [
        pytest.param(lambda c: c.delete("g:k1"), id="delete"),
        pytest.param(lambda c: c.delete_group("g:"), id="group"),
        pytest.param(lambda c: c.delete_prefix("g"), id="prefix"),
        pytest.param(lambda c: c.clear(), id="clear"),
        pytest.param(lambda c: c.set("g:k1", b"v2", ttl=300), id="write"),
    ],
)
async def test_tiered_invalidation_reaches_other_local_tiers(
    pair: tuple[TieredCache, TieredCache], invalidate: Any
) -> None:
    """Every invalidation through one TieredCache empties the other's local tier copy within
    a bounded wait (pub/sub), and the shared tier answers the new state."""
    a, b = pair
    await fill_both(a, b, "g:k1")
    await invalidate(a)
    await until(lambda: b.local.get_nowait("g:k1") is None)
    assert await b.get("g:k1") in (None, b"v2")


async def test_tiered_tag_purge_clears_other_local_tiers(
    pair: tuple[TieredCache, TieredCache],
) -> None:
    """delete_tags drops the tagged entries from the shared index and clears every local
    tier (a local tier does not know the tags of what it copied)."""
    a, b = pair
    heard = b._generation
    await a.set_tagged("g:t", b"v1", ttl=300, tags=["items"])
    await until(lambda: b._generation > heard)
    await fill_both(a, b, "g:u")
    assert await b.get("g:t") == b"v1"
    assert await a.delete_tags(["items"]) == 1
    await until(lambda: len(b.local) == 0)
    assert await b.get("g:t") is None
    assert await b.get("g:u") == b"v1"


async def test_tiered_lost_subscription_clears_local_tier(redis: Any) -> None:
    """Redis restarting loses the subscription: the local tier is cleared, not refilled while
    the channel is down, and filled again once a new subscription is live."""
    cache = tiered(redis.url)
    try:
        await cache.set("g:k", b"v", ttl=300)
        await until(lambda: cache.live)
        assert await cache.get("g:k") == b"v"
        assert cache.local.get_nowait("g:k") == b"v"
        redis.stop()
        await until(lambda: len(cache.local) == 0 and not cache.live, timeout=10)
        redis.start()
        await until(lambda: cache.live, timeout=15)
        await cache.set("g:k", b"again", ttl=300)
        assert cache.local.get_nowait("g:k") == b"again"
    finally:
        await cache.aclose()


async def test_tiered_not_filled_before_live(redis: Any) -> None:
    """Until its subscription is confirmed, a TieredCache reads the shared tier only: a local
    copy could miss an invalidation published meanwhile."""
    other = tiered(redis.url)
    await other.shared.set("g:k", b"v", ttl=300)
    cache = tiered(redis.url)
    try:
        assert await cache.get("g:k") == b"v"  # the first read starts the subscription
        assert not cache.live
        assert cache.local.get_nowait("g:k") is None
    finally:
        await cache.aclose()
        await other.aclose()


class _SwallowingRedis(RedisCache):
    """A RedisCache whose pub/sub read and publish turn a cancellation that lands in them into
    a StoreError, as redis-py's own do at times (its read then raises a connection error)."""

    def subscribe(self, channel: str) -> AsyncIterator[bytes]:
        return _swallowing(super().subscribe(channel))

    async def publish(self, channel: str, message: bytes) -> None:
        try:
            await super().publish(channel, message)
        except asyncio.CancelledError as exc:
            raise StoreError("cancelled while publishing") from exc


async def _swallowing(stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    try:
        while True:
            try:
                item = await anext(stream)
            except StopAsyncIteration:
                return
            except asyncio.CancelledError as exc:
                raise StoreError("cancelled while reading") from exc
            yield item
    finally:
        await stream.aclose()  # type: ignore[attr-defined]


@pytest.mark.parametrize("live", [False, True], ids=["pinging", "live"])
async def test_tiered_listener_ends_on_one_cancellation_its_store_swallowed(
    redis: Any, live: bool
) -> None:
    """``asyncio.Runner`` cancels leftover tasks once when its loop closes and waits for them:
    the listener ends on that one cancellation even when the shared store turned it into an
    error (it used to resubscribe and run for ever: a server thread never stopped)."""
    cache = TieredCache(local=SimpleCache(), shared=_SwallowingRedis(url=redis.url, prefix="tt:"))
    try:
        assert await cache.get("warm") is None  # starts the subscription
        if live:
            await until(lambda: cache.live)
        listener = cache._listeners[asyncio.get_running_loop()]
        listener.task.cancel()
        done, _ = await asyncio.wait({listener.task}, timeout=3)
        assert done, "the listener ran on after one cancellation"
        others = {task for task in asyncio.all_tasks() if task is not asyncio.current_task()}
        if others:
            await asyncio.wait(others, timeout=3)
        assert all(task.done() for task in others), others
    finally:
        await cache.aclose()


class _Plain:
    capabilities = Capabilities()

    async def get(self, key: str) -> None: ...


@pytest.mark.parametrize(
    ("options", "match"),
    [
        pytest.param({"local": _Plain()}, "local=", id="local-not-memory"),
        pytest.param({"shared": SimpleCache()}, "shared=", id="shared-per-process"),
        pytest.param({"local_ttl": 0}, "local_ttl=0", id="ttl-zero"),
        pytest.param({"local_ttl": float("inf")}, "local_ttl=inf", id="ttl-inf"),
        pytest.param({"channel": ""}, "channel=''", id="channel"),
    ],
)
def test_tiered_refuses_bad_configuration(options: dict[str, Any], match: str) -> None:
    """Each tier must be able to play its part; the error names the argument."""
    given: dict[str, Any] = {"local": SimpleCache(), "shared": RedisCache(), **options}
    with pytest.raises(ConfigurationError, match=match):
        TieredCache(**given)
