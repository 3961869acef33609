"""The stores behind the response cache: one protocol, three backends, their limits and faults."""

from __future__ import annotations

import asyncio
import os
import socket
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from aeros import ConfigurationError, FileSystemCache, FilesystemCache, RedisCache, SimpleCache
from aeros.errors import StoreError
from aeros.stores import PrefixStore, Store, TagStore
from tests.support.cache import BACKENDS, FakeClock, make_store

HOSTILE_KEYS = [
    pytest.param("../../etc/passwd", id="dotdot"),
    pytest.param("/absolute/../x", id="absolute"),
    pytest.param("a\x00b", id="nul"),
    pytest.param("k" * 10_000, id="10kb"),
    pytest.param("\udcff\n\r*?[]", id="surrogate-glob-crlf"),
]


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    """Every backend, fresh and empty."""
    instance = make_store(request.param, tmp_path, request)
    yield instance
    await instance.aclose()


async def test_store_roundtrip(store: Any) -> None:
    """set/get/delete/clear behave alike on every backend and satisfy the Store protocol."""
    assert isinstance(store, Store)
    assert isinstance(store, PrefixStore)
    assert await store.get("missing") is None
    await store.set("a", b"1", ttl=None)
    await store.set("b", b"\x00" * 1000, ttl=60)
    assert await store.get("a") == b"1"
    assert await store.get("b") == b"\x00" * 1000
    await store.delete("a")
    await store.delete("a")  # absent: not an error
    assert await store.get("a") is None
    await store.clear()
    assert await store.get("b") is None


@pytest.mark.parametrize("kind", ["memory", "filesystem"])
async def test_store_ttl_expires(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """An entry lives exactly its TTL on the store's clock; no TTL: it never expires."""
    clock = FakeClock()
    store = make_store(kind, tmp_path, request, clock=clock)
    await store.set("k", b"v", ttl=10)
    await store.set("forever", b"v", ttl=None)
    clock.advance(9.9)
    assert await store.get("k") == b"v"
    clock.advance(0.2)
    assert await store.get("k") is None
    clock.advance(10**9)
    assert await store.get("forever") == b"v"


async def test_redis_ttl_is_kept_by_redis(redis: Any) -> None:
    """RedisCache hands the TTL to Redis in milliseconds (Redis expires the key on its own
    clock); no TTL: the key persists."""
    cache = RedisCache(url=redis.url, prefix="t:", socket_timeout=1.0)
    await cache.set("g:k", b"v", ttl=10)
    await cache.set("g:forever", b"v", ttl=None)
    await cache.set("k", b"v", ttl=2.5)  # a key without a group takes the plain SET path
    client = cache._client().redis
    names = cache.names
    assert 9_000 < await client.pttl(names.entry("g:k")) <= 10_000
    assert await client.pttl(names.entry("g:forever")) == -1
    assert 1_500 < await client.pttl(names.entry("k")) <= 2_500
    await cache.aclose()


async def test_store_delete_prefix(store: Any) -> None:
    """delete_prefix drops exactly the keys that start with the prefix."""
    for key in ("r1:p1:a", "r1:p1:b", "r1:p2:a", "r2:p1:a"):
        await store.set(key, b"x", ttl=None)
    assert await store.delete_prefix("r1:p1:") == 2
    assert await store.get("r1:p1:a") is None
    assert await store.get("r1:p2:a") == b"x"
    assert await store.delete_prefix("r1:") == 1
    assert await store.get("r2:p1:a") == b"x"


async def test_store_delete_group(store: Any) -> None:
    """delete_group drops exactly the keys whose part up to the last ':' is the group."""
    for key in ("r1:p1:a", "r1:p1:b", "r1:p1:x:y", "r1:p2:a", "nogroup", "r1:p1"):
        await store.set(key, b"x", ttl=60)
    assert await store.delete_group("r1:p1:") == 2
    assert [await store.get(k) for k in ("r1:p1:a", "r1:p1:b")] == [None, None]
    for key in ("r1:p1:x:y", "r1:p2:a", "nogroup", "r1:p1"):
        assert await store.get(key) == b"x", key
    assert await store.delete_group("r1:p1:") == 0
    await store.set("r1:p1:a", b"again", ttl=None)  # a group can be refilled after a delete
    assert await store.get("r1:p1:a") == b"again"
    assert await store.delete_group("r1:p1:") == 1


async def test_redis_group_index_expires_with_its_entries(redis: Any) -> None:
    """A group's index lives as long as its longest-lived entry and holds only live ones."""
    cache = RedisCache(url=redis.url, prefix="t:", socket_timeout=1.0)
    await cache.set("g:a", b"1", ttl=0.2)
    await cache.set("g:b", b"1", ttl=30)
    await cache.set("g:c", b"1", ttl=0.1)  # a shorter TTL never shortens the index
    client = cache._client().redis
    names = cache.names
    assert 20_000 < await client.pttl(names.group_index("g:")) <= 30_000
    await cache.set("h:a", b"1", ttl=None)
    await cache.set("h:b", b"1", ttl=5)
    assert await client.pttl(names.group_index("h:")) == -1  # an entry without TTL keeps the index
    await asyncio.sleep(0.25)
    await cache.set("g:d", b"1", ttl=30)  # a write trims members whose entries expired
    members = sorted(await client.zrange(names.group_index("g:"), 0, -1))
    assert members == sorted([names.entry("g:b"), names.entry("g:d")])
    await cache.aclose()


@pytest.mark.parametrize("key", HOSTILE_KEYS)
async def test_store_hostile_keys_roundtrip(store: Any, key: str) -> None:
    """Keys with ../, NUL, glob characters or 10 KB are just keys, distinct from each other."""
    await store.set(key, b"hostile", ttl=None)
    await store.set(key[:-1], b"other", ttl=None)
    assert await store.get(key) == b"hostile"
    assert await store.get(key[:-1]) == b"other"


@pytest.mark.parametrize("key", HOSTILE_KEYS)
async def test_filesystem_hostile_keys_stay_inside(tmp_path: Path, key: str) -> None:
    """No key creates a file outside the cache directory."""
    outside = tmp_path / "outside"
    outside.mkdir()
    cache = FilesystemCache(outside / "cache")
    await cache.set(key, b"x", ttl=None)
    found = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert all(p.parts[:2] == ("outside", "cache") for p in found), found
    assert all(len(p.name) < 64 for p in found)


async def test_filesystem_permissions(tmp_path: Path) -> None:
    """The directory is 0700 and entry files 0600, whatever the umask."""
    old = os.umask(0)
    try:
        cache = FilesystemCache(tmp_path / "cache")
        await cache.set("k", b"v", ttl=None)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "cache").stat().st_mode) == 0o700
    files = list((tmp_path / "cache").iterdir())
    assert files
    assert {stat.S_IMODE(f.stat().st_mode) for f in files} == {0o600}


@pytest.mark.parametrize("mode", [0o777, 0o1777, 0o770], ids=["world", "sticky", "group"])
def test_filesystem_refuses_a_directory_others_can_write(tmp_path: Path, mode: int) -> None:
    """A directory other users can write to (``/tmp``) is refused, named, and left as it was
    (it was chmod-ed to 0700, which locks everyone else out of ``/tmp``)."""
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, mode)
    with pytest.raises(ConfigurationError, match=rf"writable by other users \(mode {mode:o}\)"):
        FilesystemCache(shared)
    assert stat.S_IMODE(shared.stat().st_mode) == mode


async def test_filesystem_keeps_the_mode_of_an_existing_directory(tmp_path: Path) -> None:
    """An existing directory others may only read is used as it is: its mode is not changed;
    the files the cache writes are 0600."""
    existing = tmp_path / "existing"
    existing.mkdir()
    os.chmod(existing, 0o755)  # noqa: S103 (a directory others may read: the case tested)
    cache = FilesystemCache(existing)
    await cache.set("k", b"v", ttl=None)
    assert await cache.get("k") == b"v"
    assert stat.S_IMODE(existing.stat().st_mode) == 0o755
    assert {stat.S_IMODE(f.stat().st_mode) for f in existing.iterdir()} == {0o600}


async def test_filesystem_directory_opened_to_others_later_is_a_store_error(
    tmp_path: Path,
) -> None:
    """A directory made writable by others after the cache was built fails its first use with
    a StoreError (served uncached by the cache layer), not a chmod."""
    directory = tmp_path / "cache"
    cache = FilesystemCache(directory)
    os.chmod(directory, 0o777)  # noqa: S103 (opened to others: the case tested)
    with pytest.raises(StoreError, match="writable by other users"):
        await cache.set("k", b"v", ttl=None)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o777


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: data[: len(data) // 2], id="truncated"),
        pytest.param(lambda data: data[:-1] + bytes([data[-1] ^ 1]), id="mac-flipped"),
        pytest.param(lambda data: data[:20] + b"X" + data[21:], id="value-tampered"),
        pytest.param(lambda data: b"", id="empty"),
        pytest.param(lambda data: b"\x80\x04\x95" + data, id="pickle-prefix"),
    ],
)
async def test_filesystem_corrupt_file_is_a_miss(tmp_path: Path, damage: Any) -> None:
    """A truncated, corrupt or tampered entry file reads as a miss, never as data."""
    cache = FilesystemCache(tmp_path / "cache")
    await cache.set("key", b"value-bytes", ttl=None)
    (entry,) = (tmp_path / "cache").glob("*.aec")
    entry.write_bytes(damage(entry.read_bytes()))
    assert await cache.get("key") is None


async def test_filesystem_file_renamed_to_other_key_is_a_miss(tmp_path: Path) -> None:
    """An intact entry copied over another key's file is not served for that key."""
    cache = FilesystemCache(tmp_path / "cache")
    await cache.set("a", b"A", ttl=None)
    (a_file,) = (tmp_path / "cache").glob("*.aec")
    await cache.set("b", b"B", ttl=None)
    b_file = next(p for p in (tmp_path / "cache").glob("*.aec") if p != a_file)
    b_file.write_bytes(a_file.read_bytes())
    assert await cache.get("b") is None


async def test_filesystem_bounded(tmp_path: Path) -> None:
    """Pruning keeps the directory near threshold entries."""
    cache = FilesystemCache(tmp_path / "cache", threshold=20)
    for i in range(200):
        await cache.set(f"k{i}", b"x" * 100, ttl=None)
    count = len(list((tmp_path / "cache").glob("*.aec")))
    assert count <= 22, count
    assert await cache.get("k199") == b"x" * 100


async def test_filesystem_shared_between_instances(tmp_path: Path) -> None:
    """Two stores on one directory (two workers) see each other's entries."""
    one, two = FilesystemCache(tmp_path / "c"), FileSystemCache(tmp_path / "c")
    await one.set("k", b"v", ttl=None)
    assert await two.get("k") == b"v"


async def test_filesystem_unusable_directory_raises_store_error(tmp_path: Path) -> None:
    """A directory that becomes unusable after construction raises StoreError, not OSError."""
    directory = tmp_path / "cache"
    cache = FilesystemCache(directory)
    directory.rmdir()
    directory.write_bytes(b"")
    with pytest.raises(StoreError):
        await cache.set("k", b"v", ttl=None)
    with pytest.raises(StoreError):
        await cache.get("k")


@pytest.mark.parametrize(
    "where",
    [
        pytest.param("/proc/nope", id="proc"),
        pytest.param("{tmp}/file/cache", id="under-a-file"),
        pytest.param("{tmp}/file", id="is-a-file"),
    ],
)
def test_filesystem_unusable_directory_refused_at_construction(tmp_path: Path, where: str) -> None:
    """FilesystemCache on a path that cannot be created or written raises at construction,
    with one line naming the argument and the path."""
    (tmp_path / "file").write_bytes(b"")
    directory = where.format(tmp=tmp_path)
    with pytest.raises(ConfigurationError) as info:
        FilesystemCache(directory)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"FilesystemCache(directory={directory!r}) cannot be used: ")


async def test_memory_lru_threshold() -> None:
    """SimpleCache keeps at most threshold entries, evicting the least recently used."""
    cache = SimpleCache(threshold=3)
    for key in "abc":
        await cache.set(key, b"x", ttl=None)
    assert await cache.get("a") == b"x"  # a is now the most recent
    await cache.set("d", b"x", ttl=None)
    assert await cache.get("b") is None
    assert [await cache.get(k) for k in "acd"] == [b"x"] * 3


async def test_memory_byte_cap() -> None:
    """SimpleCache never holds more than max_bytes; a bigger value is not stored."""
    cache = SimpleCache(threshold=10_000, max_bytes=10_000)
    for i in range(100):
        await cache.set(f"k{i}", b"x" * 1000, ttl=None)
        assert cache.size_bytes <= 10_000
    await cache.set("huge", b"x" * 20_000, ttl=None)
    assert await cache.get("huge") is None
    assert await cache.get("k99") == b"x" * 1000


async def test_redis_down_raises_store_error_fast(redis: Any) -> None:
    """A stopped Redis raises StoreError within the short timeout, then fails fast."""
    cache = RedisCache(url=redis.url, retry_after=0.2, socket_timeout=1.0)
    await cache.set("k", b"v", ttl=None)
    redis.stop()
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(StoreError):
            await cache.get("k")
        with pytest.raises(StoreError):
            await cache.get("k")  # inside retry_after: no network at all
        assert loop.time() - started < 2.0
    finally:
        redis.start()
    deadline = asyncio.get_running_loop().time() + 5
    while True:  # recovers by itself once Redis is back
        try:
            await cache.set("k", b"again", ttl=None)
            break
        except StoreError:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.05)
    assert await cache.get("k") == b"again"
    await cache.aclose()


async def test_redis_silent_server_times_out_fast() -> None:
    """A Redis that accepts but never answers costs a request at most about the timeout."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        cache = RedisCache(port=silent.getsockname()[1], socket_timeout=0.1)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(StoreError):
            await cache.get("k")
        assert loop.time() - started < 1.0
        await cache.aclose()


async def test_redis_clear_keeps_foreign_keys(redis: Any) -> None:
    """clear() removes this cache's prefix only, never other keys in the database."""
    ours, theirs = (
        RedisCache(url=redis.url, socket_timeout=1.0),
        RedisCache(url=redis.url, prefix="other:", socket_timeout=1.0),
    )
    await ours.set("k", b"1", ttl=None)
    await theirs.set("k", b"2", ttl=None)
    await ours.clear()
    assert await ours.get("k") is None
    assert await theirs.get("k") == b"2"
    await ours.aclose()
    await theirs.aclose()


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        pytest.param(lambda: SimpleCache(timeout=-1), "timeout", id="negative-timeout"),
        pytest.param(lambda: SimpleCache(threshold=0), "threshold", id="zero-threshold"),
        pytest.param(lambda: FilesystemCache(""), "directory", id="empty-dir"),
        pytest.param(lambda: RedisCache(url="http://x"), "redis://", id="bad-url"),
        pytest.param(lambda: RedisCache(port=70000), "port", id="bad-port"),
        pytest.param(lambda: SimpleCache(timeout="5"), r"timeout='5'", id="str-timeout"),
        pytest.param(lambda: SimpleCache(timeout=float("inf")), "timeout=inf", id="inf-timeout"),
        pytest.param(lambda: SimpleCache(max_bytes=True), "max_bytes=True", id="bool-size"),
        pytest.param(lambda: RedisCache(db=-1), r"db=-1", id="negative-db"),
        pytest.param(lambda: RedisCache(socket_timeout=-1), "socket_timeout", id="neg-socket"),
        pytest.param(lambda: RedisCache(retry_after="1"), "retry_after", id="str-retry"),
        pytest.param(lambda: RedisCache(max_connections=0), "max_connections", id="no-conns"),
    ],
)
def test_store_config_refused(factory: Any, match: str) -> None:
    """Invalid store settings raise ConfigurationError naming the argument."""
    with pytest.raises(ConfigurationError, match=match):
        factory()


def test_redis_repr_hides_password() -> None:
    """A password in the URL never shows in repr (and so never in logs)."""
    assert "hunter2" not in repr(RedisCache(url="redis://:hunter2@127.0.0.1:6379/0"))


async def test_store_delete_tags(store: Any) -> None:
    """delete_tags drops exactly the entries indexed under any of the tags (and counts them);
    a later plain set of a tagged key keeps it in its index; the index goes with the purge."""
    assert isinstance(store, TagStore)
    await store.set_tagged("r:p:a", b"1", ttl=60, tags=["items", "item:1"])
    await store.set_tagged("r:p:b", b"2", ttl=None, tags=["items"])
    await store.set_tagged("r:q:c", b"3", ttl=60, tags=["other"])
    await store.set("r:p:d", b"4", ttl=60)
    await store.set("r:p:a", b"1 again", ttl=60)  # a new variant: still tagged
    assert await store.delete_tags(["item:1"]) == 1
    assert await store.get("r:p:a") is None
    assert await store.get("r:p:b") == b"2"
    assert await store.delete_tags(["items", "nothing"]) == 1
    assert [await store.get(k) for k in ("r:p:b", "r:q:c", "r:p:d")] == [None, b"3", b"4"]
    assert await store.delete_tags(["items"]) == 0  # the index went with the purge
    await store.set_tagged("r:p:b", b"5", ttl=60, tags=["items"])
    assert await store.delete_tags(["items"]) == 1


async def test_memory_tag_index_follows_evictions() -> None:
    """Evicted and deleted entries leave the tag indexes: they never outgrow the table."""
    cache = SimpleCache(threshold=3)
    for i in range(50):
        await cache.set_tagged(f"k{i}", b"v", ttl=None, tags=["all", f"one:{i}"])
    await cache.delete("k49")
    assert sum(len(keys) for keys in cache._tagged.values()) == 4  # k47, k48: two tags each
    assert await cache.delete_tags(["all"]) == 2


async def test_filesystem_tag_index_is_compacted(tmp_path: Path) -> None:
    """Pruning rewrites each tag index to the entries that still exist, once each."""
    cache = FilesystemCache(tmp_path / "c", threshold=100)
    for _ in range(3):
        await cache.set_tagged("g:a", b"v", ttl=60, tags=["t"])
    await cache.set_tagged("g:b", b"v", ttl=60, tags=["t"])
    await cache.delete("g:b")
    index = next((tmp_path / "c").glob("*.tix"))
    assert len(index.read_text().split()) == 4
    await asyncio.to_thread(cache._prune)
    assert index.read_text().split() == [cache._path("g:a").name]
    assert await cache.delete_tags(["t"]) == 1
    assert list((tmp_path / "c").glob("*.tix")) == []


async def test_filesystem_tag_index_loses_no_write_to_a_purge(tmp_path: Path) -> None:
    """Tagged writes racing tag purges (threads): every write lands in an index that a later
    purge reads, so once the writes are done one purge leaves no tagged entry behind."""
    cache = FilesystemCache(tmp_path / "c", threshold=100_000)
    writes = [cache.set_tagged(f"g:{i}", b"v", ttl=60, tags=["t"]) for i in range(600)]
    purges = [cache.delete_tags(["t"]) for _ in range(600)]
    mixed = [op for pair in zip(writes, purges, strict=True) for op in pair]
    await asyncio.gather(*mixed)
    await cache.delete_tags(["t"])
    assert [i for i in range(600) if await cache.get(f"g:{i}") is not None] == []


async def test_filesystem_cache_resumes_after_its_directory_is_removed(tmp_path: Path) -> None:
    """An operator's ``rm -rf`` of the cache directory (or a tmp cleaner) costs one failed
    write; the next one makes the directory again (it failed on every write, for good)."""
    import shutil

    from aeros.errors import StoreError

    directory = tmp_path / "cache"
    cache = FilesystemCache(directory)
    await cache.set("a:b:c", b"v1", ttl=60)
    shutil.rmtree(directory)
    with pytest.raises(StoreError):
        await cache.set("a:b:c", b"v2", ttl=60)
    await cache.set("a:b:c", b"v3", ttl=60)
    assert await cache.get("a:b:c") == b"v3"
    assert directory.is_dir()
