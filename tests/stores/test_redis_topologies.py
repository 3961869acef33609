"""RedisCache on a real 3-primary Redis Cluster and behind a real Sentinel (with failover)."""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from typing import Any

import httpx
import pytest
from redis.crc import key_slot

from aeros import ConfigurationError, RedisCache, WebServer
from aeros.errors import StoreError
from tests.support.broadcast import drain, receive_first, subscribe_again
from tests.support.redis_topologies import RedisClusterNodes, RedisSentinelGroup, command

pytestmark = pytest.mark.redis


def on_cluster(url: str, **options: Any) -> RedisCache:
    """A RedisCache on the test Cluster. These tests check behaviour, not timeouts: a loaded
    machine can take longer than the 0.1 s default socket timeout to answer a cluster's
    discovery (the fail-fast tests set their own)."""
    return RedisCache(url=url, cluster=True, socket_timeout=2.0, **options)


def keys_per_node(nodes: RedisClusterNodes) -> list[int]:
    """How many keys each cluster node holds."""
    return [int(command(port, "DBSIZE").strip() or 0) for port in nodes.ports]


async def test_cluster_discovered_from_one_node_spreads_groups_over_slots(
    redis_cluster: RedisClusterNodes,
) -> None:
    """cluster=True discovers every node from one URL; groups land on several nodes, each
    entry in the slot of its group's index, and a group delete works slot by slot."""
    cache = on_cluster(f"redis://127.0.0.1:{redis_cluster.ports[1]}")
    for group in range(12):
        for item in range(3):
            await cache.set(f"r:/p{group}:{item}", b"v%d" % item, ttl=60)
    assert await cache.get("r:/p5:2") == b"v2"
    assert sum(1 for count in keys_per_node(redis_cluster) if count) >= 2
    names = cache.names
    assert key_slot(names.entry("r:/p5:2")) == key_slot(names.group_index("r:/p5:"))
    assert await cache.delete_group("r:/p5:") == 3
    assert await cache.get("r:/p5:1") is None
    assert await cache.get("r:/p6:1") == b"v1"
    await cache.aclose()


async def test_cluster_tag_purge_and_clear_span_slots(redis_cluster: RedisClusterNodes) -> None:
    """A tag whose entries live on several nodes is purged completely (per slot); clear and
    delete_prefix reach every node and leave foreign keys alone."""
    cache = on_cluster(redis_cluster.url, prefix="t:")
    for group in range(10):
        await cache.set_tagged(f"r:/p{group}:x", b"v", ttl=60, tags=["all", f"g{group}"])
    slots = {key_slot(cache.names.entry(f"r:/p{group}:x")) for group in range(10)}
    assert len(slots) > 1
    assert await cache.delete_tags(["g3"]) == 1
    assert await cache.delete_tags(["all"]) == 9
    assert [await cache.get(f"r:/p{group}:x") for group in range(10)] == [None] * 10
    other = on_cluster(redis_cluster.url, prefix="other:")
    await other.set("r:/keep:1", b"k", ttl=60)
    for group in range(10):
        await cache.set(f"r:/p{group}:x", b"v", ttl=60)
        await cache.set(f"s:/p{group}:x", b"v", ttl=60)
    assert await cache.delete_prefix("r:/") == 10
    assert await cache.get("s:/p1:x") == b"v"
    await cache.clear()
    left = [name for port in redis_cluster.ports for name in command(port, "KEYS", "*").split()]
    kept = (other.names.entry("r:/keep:1"), other.names.group_index("r:/keep:"))
    assert sorted(left) == sorted(name.decode() for name in kept)  # only the foreign entry
    assert await other.get("r:/keep:1") == b"k"
    await cache.aclose()
    await other.aclose()


async def test_cluster_locks_and_broadcast(redis_cluster: RedisClusterNodes) -> None:
    """Locks and pub/sub work on a Cluster: a message published through any node reaches a
    subscriber connected to another."""
    one = on_cluster(redis_cluster.url)
    two = on_cluster(f"redis://127.0.0.1:{redis_cluster.ports[2]}")
    subscription = one.subscribe("inval")  # the first call of its client: nodes discovered
    assert await receive_first(subscription, two) == b"m"
    await subscription.aclose()  # type: ignore[attr-defined]
    token = await one.try_lock("k", ttl=5)
    assert token is not None
    assert await two.try_lock("k", ttl=5) is None
    await one.unlock("k", token)
    assert await two.try_lock("k", ttl=5) is not None
    await one.aclose()
    await two.aclose()


async def test_sentinel_finds_the_primary(redis_sentinel: RedisSentinelGroup) -> None:
    """sentinels=... with service_name reads and writes the primary the Sentinel names."""
    cache = RedisCache(sentinels=redis_sentinel.sentinels, service_name="mymaster")
    await cache.set_tagged("r:/a:1", b"v", ttl=60, tags=["t"])
    assert await cache.get("r:/a:1") == b"v"
    primary = redis_sentinel.primary_port()
    assert command(primary, "DBSIZE").strip() != "0"
    assert "sentinel://127.0.0.1:" in repr(cache)
    # hits read the primary on one pipelined connection
    assert await asyncio.gather(*(cache.get("r:/a:1") for _ in range(50))) == [b"v"] * 50
    clients = command(primary, "CLIENT", "LIST").splitlines()
    assert sum(" cmd=get " in line for line in clients) == 1
    subscription = cache.subscribe("inval")
    assert await receive_first(subscription, cache) == b"m"
    await subscription.aclose()  # type: ignore[attr-defined]
    assert await cache.delete_tags(["t"]) == 1
    await cache.aclose()


@pytest.mark.slow
def test_sentinel_failover_under_load_serves_no_5xx_and_caches_again(
    redis_sentinel: RedisSentinelGroup,
) -> None:
    """The primary is killed while a client loads the app over HTTP: no request fails with a
    5xx, and once the Sentinel has promoted the replica, responses are cached again."""
    cache = RedisCache(sentinels=redis_sentinel.sentinels, service_name="mymaster", retry_after=0.2)
    app = WebServer(__name__, cache=cache, access_log=False)
    calls = {"n": 0}

    @app.route("/item/<int:item>")
    @app.cache(timeout=60)
    async def item(item: int) -> dict[str, int]:
        calls["n"] += 1
        return {"item": item}

    statuses: list[int] = []
    stop = threading.Event()

    def load(url: str) -> None:
        with httpx.Client(base_url=url, timeout=5) as client:
            for n in range(100_000):  # bounded; stopped by the test long before
                if stop.is_set():
                    return
                statuses.append(client.get(f"/item/{n % 20}").status_code)

    with app.serve_in_thread(host="127.0.0.1", port=0) as url:
        loader = threading.Thread(target=load, args=(url,), daemon=True)
        loader.start()
        try:
            deadline = time.monotonic() + 10
            while len(statuses) < 50:
                assert time.monotonic() < deadline, "the load never got going"
                time.sleep(0.02)
            old = redis_sentinel.kill_primary()
            redis_sentinel.wait_failed_over(old)
            served = len(statuses)
            deadline = time.monotonic() + 10
            while len(statuses) < served + 100:  # keep loading past the failover
                assert time.monotonic() < deadline, "the load stalled after the failover"
                time.sleep(0.02)
        finally:
            stop.set()
            loader.join(10)
        assert statuses
        assert [s for s in statuses if s >= 500] == []
        with httpx.Client(base_url=url, timeout=5) as client:
            deadline = time.monotonic() + 10
            while True:  # caching resumes: a second GET no longer calls the view
                assert client.get("/item/999").status_code == 200
                before = calls["n"]
                assert client.get("/item/999").status_code == 200
                if calls["n"] == before:
                    break
                assert time.monotonic() < deadline, "caching never resumed after the failover"
                time.sleep(0.1)
    primary = redis_sentinel.primary_port()
    assert primary != old
    assert command(primary, "DBSIZE").strip() != "0"  # the entry is on the new primary


@pytest.mark.parametrize(
    ("make", "match"),
    [
        pytest.param(
            lambda: RedisCache(url="unix:///tmp/r.sock", cluster=True), "unix", id="cluster-unix"
        ),
        pytest.param(lambda: RedisCache(cluster=True, db=2), "database 0", id="cluster-db"),
        pytest.param(
            lambda: RedisCache(url="redis://127.0.0.1:7000/3", cluster=True),
            "database 0",
            id="cluster-url-db",
        ),
        pytest.param(lambda: RedisCache(cluster="yes"), "cluster='yes'", id="cluster-not-bool"),
        pytest.param(
            lambda: RedisCache(sentinels=[("127.0.0.1", 26379)]),
            "service_name",
            id="sentinel-no-service",
        ),
        pytest.param(
            lambda: RedisCache(service_name="mymaster"), "needs sentinels", id="service-alone"
        ),
        pytest.param(
            lambda: RedisCache(
                sentinels=[("127.0.0.1", 26379)], service_name="m", url="redis://x:1"
            ),
            "leave url unset",
            id="sentinel-and-url",
        ),
        pytest.param(
            lambda: RedisCache(sentinels=[("127.0.0.1", 26379)], service_name="m", cluster=True),
            "exclude each other",
            id="sentinel-and-cluster",
        ),
        pytest.param(lambda: RedisCache(sentinels=[], service_name="m"), "sentinels", id="empty"),
        pytest.param(
            lambda: RedisCache(sentinels="127.0.0.1:26379", service_name="m"),
            "sentinels='127.0.0.1:26379'",
            id="sentinels-str",
        ),
        pytest.param(
            lambda: RedisCache(sentinels=[("127.0.0.1", 0)], service_name="m"),
            "port",
            id="sentinel-port",
        ),
    ],
)
def test_redis_topology_arguments_are_checked(make: Any, match: str) -> None:
    """Settings that cannot work together are refused at construction, naming them."""
    with pytest.raises(ConfigurationError, match=match):
        make()


async def test_cluster_down_fails_fast(tmp_path: Any) -> None:
    """A cluster that cannot be reached raises StoreError fast, then without network."""
    from tests.support.net import free_port

    cache = RedisCache(url=f"redis://127.0.0.1:{free_port()}", cluster=True, retry_after=5)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(StoreError):
        await cache.get("k")
    with pytest.raises(StoreError, match="unavailable"):
        await cache.set("k", b"v", ttl=1)
    assert loop.time() - started < 2.0
    await cache.aclose()


async def test_sentinel_unreachable_fails_fast() -> None:
    """Sentinels that cannot be reached raise StoreError fast, then without network."""
    from tests.support.net import free_port

    cache = RedisCache(
        sentinels=[("127.0.0.1", free_port())], service_name="mymaster", retry_after=5
    )
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(StoreError):
        await cache.get("k")
    with pytest.raises(StoreError, match="unavailable"):
        await cache.try_lock("k", ttl=1)
    assert loop.time() - started < 2.0
    await cache.aclose()


@pytest.mark.slow
async def test_sentinel_failover_ends_subscriptions(redis_sentinel: RedisSentinelGroup) -> None:
    """A subscription to the primary ends with StoreError when the primary dies (messages may
    be lost); a new one reaches the promoted replica."""
    cache = RedisCache(sentinels=redis_sentinel.sentinels, service_name="mymaster", retry_after=0.1)
    subscription = cache.subscribe("inval")
    assert await receive_first(subscription, cache) == b"m"
    old = await asyncio.to_thread(redis_sentinel.kill_primary)
    async with asyncio.timeout(5):
        with pytest.raises(StoreError, match="subscription"):
            await drain(subscription)
    await asyncio.to_thread(redis_sentinel.wait_failed_over, old)
    again = await subscribe_again(cache, "inval", b"m", timeout=10)
    await again.aclose()  # type: ignore[attr-defined]
    await cache.aclose()


async def test_cluster_hits_read_each_primary_on_one_connection(
    redis_cluster: RedisClusterNodes,
) -> None:
    """Concurrent gets of keys on every node travel on one pipelined connection per primary
    and each gets its own value."""
    cache = on_cluster(redis_cluster.url)
    for group in range(30):
        await cache.set(f"r:/p{group}:x", b"%d" % group, ttl=60)
    values = await asyncio.gather(*(cache.get(f"r:/p{group % 30}:x") for group in range(300)))
    assert values == [b"%d" % (group % 30) for group in range(300)]
    per_node = [
        sum(" cmd=get " in line for line in command(port, "CLIENT", "LIST").splitlines())
        for port in redis_cluster.ports
    ]
    assert per_node == [1, 1, 1]
    await cache.aclose()


async def test_cluster_get_follows_a_slot_moved_to_another_node(
    redis_cluster: RedisClusterNodes,
) -> None:
    """After a slot moves to another primary, a get meets MOVED on the old owner and still
    returns the value (through redis-py, which learns the new owner)."""
    cache = on_cluster(redis_cluster.url)
    writer = on_cluster(redis_cluster.url)
    key = "r:/moving:x"
    assert await cache.get(key) is None  # this client now maps the slot to its first owner
    slot = key_slot(cache.names.entry(key))
    ids = {port: command(port, "CLUSTER", "MYID").strip() for port in redis_cluster.ports}
    owner = next(port for port in redis_cluster.ports if _owns(port, slot))
    target = next(port for port in redis_cluster.ports if port != owner)
    command(target, "CLUSTER", "SETSLOT", str(slot), "IMPORTING", ids[owner])
    command(owner, "CLUSTER", "SETSLOT", str(slot), "MIGRATING", ids[target])
    for port in (target, owner, *redis_cluster.ports):
        command(port, "CLUSTER", "SETSLOT", str(slot), "NODE", ids[target])
    await writer.set(key, b"moved", ttl=60)
    assert int(command(target, "CLUSTER", "COUNTKEYSINSLOT", str(slot)).strip()) >= 1
    assert await cache.get(key) == b"moved"
    assert await cache.get(key) == b"moved"  # and again, now straight to the new owner
    await cache.aclose()
    await writer.aclose()


def _owns(port: int, slot: int) -> bool:
    """Whether the node at ``port`` serves ``slot`` (its own line of CLUSTER NODES)."""
    nodes = command(port, "CLUSTER", "NODES").splitlines()
    me = next(line for line in nodes if "myself" in line).split()
    for part in me[8:]:
        low, _, high = part.partition("-")
        if low.isdigit() and int(low) <= slot <= int(high or low):
            return True
    return False


async def test_cluster_takes_its_password_from_the_url(redis_cluster: RedisClusterNodes) -> None:
    """On a Cluster that requires a password, the one in the URL authenticates every call,
    the pipelined hits included."""
    secret = secrets.token_hex(8)
    for port in redis_cluster.ports:
        command(port, "CONFIG", "SET", "requirepass", secret)
    try:
        cache = RedisCache(
            url=f"redis://:{secret}@127.0.0.1:{redis_cluster.ports[0]}", cluster=True
        )
        for group in range(10):
            await cache.set(f"r:/p{group}:x", b"%d" % group, ttl=60)
        values = await asyncio.gather(*(cache.get(f"r:/p{group}:x") for group in range(10)))
        assert values == [b"%d" % group for group in range(10)]
        assert secret not in repr(cache)
        await cache.aclose()
    finally:
        for port in redis_cluster.ports:
            command(port, "-a", secret, "--no-auth-warning", "CONFIG", "SET", "requirepass", "")
