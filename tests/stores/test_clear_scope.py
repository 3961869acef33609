"""clear(), purges and pruning remove only what aeros wrote: never a foreign Redis key that
shares the database (or the prefix), never a foreign file in the cache directory."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from aeros import ConfigurationError, FilesystemCache, RedisCache

FOREIGN_KEYS = [b"session:1", b"queue", b"app:session:1", b"app:k:x", b"apple", b"app:"]
FOREIGN_FILES = ["notes.aec", "old.tix", ".tmpfile", ".tmp-build.log", "README", "a-b.aec"]


@pytest.mark.parametrize("prefix", ["", None, b"aeros:"])
def test_redis_prefix_must_be_a_non_empty_str(prefix: Any) -> None:
    """An empty prefix would put this cache's keys among every other key of the database,
    and clear() would delete them all: it is refused, naming the argument."""
    with pytest.raises(ConfigurationError, match=r"RedisCache\(prefix=.*non-empty str"):
        RedisCache(prefix=prefix)


@pytest.mark.parametrize("nested_prefix", ["app:x:", "app:l:", "app:k:"])
async def test_redis_clear_keeps_foreign_keys_under_its_prefix(
    redis: Any, nested_prefix: str
) -> None:
    """clear() and delete_prefix("") remove this cache's entries, indexes and locks, but not
    keys another program stored under the same prefix, nor another cache's keys whose prefix
    starts with this one's (even one that looks like the start of a key kind: ``l:``)."""
    raw = aioredis.from_url(redis.url)
    ours = RedisCache(url=redis.url, prefix="app:", socket_timeout=1.0)
    nested = RedisCache(url=redis.url, prefix=nested_prefix, socket_timeout=1.0)
    try:
        await raw.mset(dict.fromkeys(FOREIGN_KEYS, b"theirs"))
        for cache in (ours, nested):
            await cache.set_tagged("g:k", b"v", ttl=None, tags=["t"])
            assert await cache.try_lock("l", 60) is not None
        assert await ours.delete_prefix("") == 1
        await ours.set_tagged("g:k", b"v", ttl=None, tags=["t"])
        await ours.clear()
        left = set(await raw.keys("*"))
        assert set(FOREIGN_KEYS) <= left
        assert all(name.startswith(nested_prefix.encode()) for name in left - set(FOREIGN_KEYS))
        assert await nested.get("g:k") == b"v"
        assert await nested.delete_tags(["t"]) == 1
    finally:
        await ours.aclose()
        await nested.aclose()
        await raw.aclose()


def _plant(directory: Path) -> None:
    for name in FOREIGN_FILES:
        (directory / name).write_bytes(b"theirs")


async def test_filesystem_clear_keeps_foreign_files(tmp_path: Path) -> None:
    """clear() in a directory shared with other files (a home directory, say) removes the
    entries and tag indexes aeros wrote, and nothing else."""
    cache = FilesystemCache(tmp_path)
    _plant(tmp_path)
    await cache.set_tagged("g:k", b"v", ttl=None, tags=["t"])
    await cache.clear()
    assert await cache.get("g:k") is None
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*FOREIGN_FILES, ".aeros-mac-key"])


async def test_filesystem_purges_and_pruning_keep_foreign_files(tmp_path: Path) -> None:
    """delete_prefix, tag purges and pruning (which drops unreadable entries, stale temp
    files and tag indexes naming no live entry) never touch a file aeros did not write."""
    cache = FilesystemCache(tmp_path)
    _plant(tmp_path)
    await cache.set_tagged("g:k", b"v", ttl=None, tags=["t"])
    assert await cache.delete_prefix("") == 1
    assert await cache.delete_tags(["t"]) == 0
    await asyncio.to_thread(cache._prune)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*FOREIGN_FILES, ".aeros-mac-key"])
