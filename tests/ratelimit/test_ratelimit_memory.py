"""aeros' in-process rate-limit counters: limits' answers, lazy expiry, bounded, O(1) per hit."""

from __future__ import annotations

import pytest

from aeros.ratelimit.memory import MemoryCounts


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


async def test_fixed_window_counts_and_starts_a_new_window_after_the_end() -> None:
    clock = Clock()
    store = MemoryCounts(clock)
    assert [await store.incr("k", 10) for _ in range(3)] == [1, 2, 3]
    assert await store.get_expiry("k") == 1_010.0
    clock.now = 1_009.9
    assert await store.incr("k", 10) == 4
    clock.now = 1_010.0  # the window ended: a new one starts with this hit
    assert await store.incr("k", 10) == 1
    assert await store.get_expiry("k") == 1_020.0
    assert await store.get_expiry("other") == 1_010.0  # no window: now


async def test_moving_window_allows_up_to_the_limit_within_the_last_period() -> None:
    clock = Clock()
    store = MemoryCounts(clock)
    results = []
    for _ in range(4):
        results.append(await store.acquire_entry("k", 3, 10))
        clock.now += 1
    assert results == [True, True, True, False]
    assert await store.get_moving_window("k", 3, 10) == (1_000.0, 3)
    clock.now = 1_010.0  # the first hit (at 1000) is exactly 10 s old: still inside
    assert not await store.acquire_entry("k", 3, 10)
    clock.now = 1_010.5  # now it is out
    assert await store.acquire_entry("k", 3, 10)
    assert await store.get_moving_window("k", 3, 10) == (1_001.0, 3)
    assert not await store.acquire_entry("k", 3, 10, amount=4)
    assert await store.get_moving_window("empty", 3, 10) == (1_010.5, 0)


@pytest.mark.parametrize("strategy", ["fixed-window", "moving-window"])
async def test_same_answers_as_on_limits_own_memory_storage(strategy: str) -> None:
    """aeros' Backend gives the same outcomes on MemoryCounts as on limits' async
    MemoryStorage (the storage it used before): the quota passes, the rest is refused, the
    reset agrees within a second."""
    import asyncio

    from limits.aio.storage import MemoryStorage

    from aeros.ratelimit.backend import Backend

    ours = Backend("memory://", strategy, "t")
    theirs = Backend("memory://", strategy, "t")
    theirs._storage = MemoryStorage()
    theirs._loop = asyncio.get_running_loop()
    assert type(ours.storage()).__name__ == "MemoryCounts"
    for _ in range(8):
        mine, other = await ours.hit("client", 5, 60), await theirs.hit("client", 5, 60)
        assert mine[:2] == other[:2]
        assert abs(mine[2] - other[2]) < 1.0


async def test_expired_keys_are_swept_only_when_the_table_doubles() -> None:
    """20 000 one-off clients: the table stays small and is swept a few times, not per hit."""
    clock = Clock()
    store = MemoryCounts(clock)
    for i in range(20_000):
        clock.now += 0.01
        await store.incr(f"client-{i}", 1)
        await store.acquire_entry(f"client-{i}", 3, 1)
    assert len(store.counters) < 2 * 1024
    assert len(store.events) < 2 * 1024
    assert store.sweeps < 60  # about one per 1 024 inserts of each kind, never one per hit


async def test_a_sweep_keeps_each_key_for_its_own_window() -> None:
    """A key of an hour-long moving window survives a sweep triggered by 1-second keys."""
    clock = Clock()
    store = MemoryCounts(clock)
    assert await store.acquire_entry("hourly", 1, 3600)
    for i in range(3000):
        clock.now += 0.01
        await store.acquire_entry(f"short-{i}", 1, 1)
    assert store.sweeps >= 1
    assert not await store.acquire_entry("hourly", 1, 3600)  # still counted


async def test_keys_are_bounded() -> None:
    store = MemoryCounts(max_keys=100)
    for i in range(1000):
        await store.incr(f"k{i}", 60)
        await store.acquire_entry(f"k{i}", 5, 60)
    assert len(store.counters) <= 100
    assert len(store.events) <= 100
    assert await store.incr("k999", 60) == 2  # the newest keys are kept


async def test_a_hit_on_one_key_never_touches_the_others() -> None:
    """With 50 000 keys held, 2 000 hits on one key run no sweep and leave every other key as
    it was (limits' async memory storage walks all keys on each hit: 1.4 ms at 10 000)."""
    clock = Clock()
    store = MemoryCounts(clock)
    for i in range(50_000):
        await store.incr(f"k{i}", 60)
        await store.acquire_entry(f"k{i}", 5, 60)
    sweeps = store.sweeps
    counters = dict(store.counters)
    events = {key: tuple(held[1]) for key, held in store.events.items()}
    clock.now += 30
    for _ in range(2000):
        await store.incr("k0", 60)
        await store.acquire_entry("k0", 10**6, 60)
    assert store.sweeps == sweeps
    assert all(store.counters[key] is counter for key, counter in counters.items())
    assert all(tuple(store.events[key][1]) == times for key, times in events.items() if key != "k0")
