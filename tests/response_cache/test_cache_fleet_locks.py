"""Fleet-wide coalescing: a miss takes the key's lock in the store; a dead holder or a failing
store costs at most the lock's deadline, never a 5xx or a hang."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import httpx

from aeros import RedisCache
from aeros.errors import StoreError
from tests.support.asgi import http_scope
from tests.support.cache import LiveServer, Site

SOCKET_TIMEOUT = 1.0  # behaviour, not timeouts: a busy machine may answer slower than 0.1 s


def key_of(site: Site, path: str) -> str:
    """The store key the cache layer uses for ``GET path`` (the stack must be built)."""
    cache = site.app.response_cache
    scope = http_scope(path, headers=[(b"host", b"127.0.0.1")])
    policy = cache.policy_for(scope)
    assert policy is not None
    key = cache._layers[0]._key(policy, scope, b"127.0.0.1", {})
    assert key is not None
    return key


def in_redis(url: str, call: Any) -> Any:
    """``await call(store)`` with a RedisCache of its own (another process, say), closed after."""

    async def run() -> Any:
        store = RedisCache(url=url, socket_timeout=SOCKET_TIMEOUT)
        try:
            return await call(store)
        finally:
            await store.aclose()

    return asyncio.run(run())


def test_fleet_lock_dead_holder_costs_the_deadline(redis: Any, live_server: LiveServer) -> None:
    """A lock held by a process that died: the miss waits for the lock's deadline, then runs
    the view itself and answers 200."""
    site = Site(RedisCache(url=redis.url, socket_timeout=SOCKET_TIMEOUT))
    site.app.response_cache.lock_timeout = 0.6
    with live_server(site.app) as url:
        assert httpx.get(url + "/short").status_code == 200  # builds the stack
        key = key_of(site, "/page/x")
        assert in_redis(redis.url, lambda other: other.try_lock(key, 30)) is not None
        started = time.monotonic()
        response = httpx.get(url + "/page/x", headers={"Host": "127.0.0.1"})
        waited = time.monotonic() - started
    assert response.status_code == 200
    assert response.text == "page x 1"
    assert 0.55 <= waited < 3, waited


def test_fleet_lock_released_without_entry_frees_waiters(
    redis: Any, live_server: LiveServer
) -> None:
    """A holder that stored nothing releases the lock: a waiter runs the view at once instead
    of waiting for the deadline."""
    site = Site(RedisCache(url=redis.url, socket_timeout=SOCKET_TIMEOUT))
    site.app.response_cache.lock_timeout = 20
    with live_server(site.app) as url:
        assert httpx.get(url + "/short").status_code == 200
        key = key_of(site, "/page/y")
        token = in_redis(redis.url, lambda other: other.try_lock(key, 30))
        assert token is not None
        with httpx.Client(base_url=url, headers={"Host": "127.0.0.1"}) as client:
            release_in = 0.3

            def release_later() -> None:
                time.sleep(release_in)
                in_redis(redis.url, lambda other: other.unlock(key, token))

            threading.Thread(target=release_later).start()
            started = time.monotonic()
            response = client.get("/page/y")
            waited = time.monotonic() - started
    assert response.status_code == 200
    assert release_in <= waited < 2, waited


class LocksFail(RedisCache):
    """Redis answers reads and writes, but taking a lock fails (a script or ACL error)."""

    async def try_lock(self, name: str, ttl: float) -> str | None:
        raise StoreError("lock refused")


def test_fleet_lock_failing_store_runs_the_view(redis: Any, live_server: LiveServer) -> None:
    """A store that fails to lock: the request runs the view (and stores it), never a 5xx."""
    site = Site(LocksFail(url=redis.url, socket_timeout=SOCKET_TIMEOUT))
    with live_server(site.app) as url:
        assert [httpx.get(url + "/page/z").text for _ in range(2)] == ["page z 1"] * 2
    assert site.views["page"] == 1


def test_fleet_lock_skipped_for_unstorable_keys(redis: Any, live_server: LiveServer) -> None:
    """A key whose fill was not stored takes no lock on its next misses (other processes would
    only wait for a response they cannot use)."""
    import redis as redis_py

    site = Site(RedisCache(url=redis.url, socket_timeout=SOCKET_TIMEOUT))
    with redis_py.Redis(port=redis.port) as probe, live_server(site.app) as url:

        def sets() -> int:  # a lock is a SET NX PX; nothing is stored for this route
            return int(probe.info("commandstats").get("cmdstat_set", {}).get("calls", 0))

        before = sets()
        for _ in range(3):
            assert httpx.get(url + "/header/cookie").status_code == 200
        assert sets() == before + 1
        assert site.views["cookie"] == 3
