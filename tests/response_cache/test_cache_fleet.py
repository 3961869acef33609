"""A fleet: two aeros instances (separate server processes, 2 workers each) sharing one real
Redis through TieredCache."""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support.net import RedisServer
from tests.support.server import AppProcess, get, wait_until

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="workers need fork")

APP = Path(__file__).parents[1] / "apps" / "tiered_app.py"


class Fleet:
    """Two instances of tests/apps/tiered_app.py on one Redis; a value in ``data``; every
    view call of /slow/<n> is a line in ``calls``."""

    def __init__(self, tmp_path: Path, redis: RedisServer) -> None:
        self.data = tmp_path / "data.txt"
        self.data.write_text("v0")
        self.calls = tmp_path / "calls.txt"
        self.calls.touch()
        args = (redis.url, str(self.data), str(self.calls))
        self.instances = [
            AppProcess(tmp_path, *args, script=APP, name=f"instance{i}") for i in range(2)
        ]
        self.urls = [instance.url for instance in self.instances]

    def values_by_worker(self, url: str) -> dict[str, set[str]]:
        """GET /thing on fresh connections until both workers of one instance answered."""
        seen: dict[str, set[str]] = {}
        for _ in range(400):
            response = httpx.get(url + "/thing", headers={"Connection": "close"})
            assert response.status_code == 200, response.text
            seen.setdefault(response.headers["x-worker"], set()).add(response.text)
            if len(seen) == 2:
                return seen
        raise AssertionError(f"400 GETs reached one worker only: {seen}")

    def locals_filled(self) -> bool:
        """GET /thing, then whether every worker of both instances holds an entry locally."""
        for url in self.urls:
            self.values_by_worker(url)
            held: dict[str, int] = {}
            for _ in range(400):
                response = httpx.get(url + "/admin/local", headers={"Connection": "close"})
                held[response.headers["x-worker"]] = int(response.text)
                if len(held) == 2:
                    break
            if len(held) < 2 or min(held.values()) == 0:
                return False
        return True

    def serves(self, url: str, value: str) -> bool:
        return all(values == {value} for values in self.values_by_worker(url).values())

    def close(self) -> None:
        for instance in self.instances:
            instance.close()


@pytest.fixture
def fleet(tmp_path: Path, redis: RedisServer) -> Iterator[Fleet]:
    fleet = Fleet(tmp_path, redis)
    try:
        yield fleet
    finally:
        fleet.close()
        if redis.process is None:
            redis.start()  # for the tests after this one


@pytest.mark.slow
def test_fleet_purge_reaches_every_local_tier(fleet: Fleet, redis: RedisServer) -> None:
    """A tag purge through one instance empties the local tiers of the other instance's
    workers within a bounded wait, far below their 60 s local TTL."""
    wait_until(fleet.locals_filled, 10, "every worker's local tier holds /thing", 0.05)
    redis.flush()  # the shared tier forgets, behind the cache's back
    fleet.data.write_text("v2")
    for url in fleet.urls:
        assert fleet.serves(url, "v0")  # ... so v0 can only come from the local tiers
    response = httpx.post(fleet.urls[0] + "/admin/purge-tag", headers={"Connection": "close"})
    assert response.status_code == 200, response.text
    wait_until(lambda: fleet.serves(fleet.urls[1], "v2"), 5, "the other instance serves v2")
    assert fleet.serves(fleet.urls[0], "v2")
    for instance in fleet.instances:
        assert "Traceback" not in instance.stderr()


@pytest.mark.slow
def test_fleet_cold_burst_calls_the_view_about_once(fleet: Fleet) -> None:
    """50 concurrent cold requests spread over both instances (4 workers) call the view at
    most twice in total: one lock in Redis, the others wait for its entry."""
    for url in fleet.urls:
        assert get(url + "/slow/0")[0] == 200  # every worker is up and subscribed
    calls_before = len(fleet.calls.read_text().splitlines())
    with ThreadPoolExecutor(50) as pool:
        results = list(pool.map(lambda i: get(fleet.urls[i % 2] + "/slow/1"), range(50)))
    assert [status for status, _ in results] == [200] * 50
    assert {body for _, body in results} == {"slow 1"}
    calls = fleet.calls.read_text().splitlines()[calls_before:]
    assert 1 <= len(calls) <= 2, calls


@pytest.mark.slow
def test_fleet_redis_stopped_serves_no_5xx(fleet: Fleet, redis: RedisServer) -> None:
    """With Redis stopped, both instances serve every request (uncached, never a 5xx); once
    it is back, caching resumes."""
    for url in fleet.urls:
        assert fleet.serves(url, "v0")
    redis.stop()
    fleet.data.write_text("v3")
    with ThreadPoolExecutor(20) as pool:
        paths = [f"{fleet.urls[i % 2]}/{'thing' if i % 3 else f'slow/{i}'}" for i in range(60)]
        statuses = [status for status, _ in pool.map(get, paths)]
    assert statuses == [200] * 60
    # a lost subscription cleared every local tier: nothing stale is served meanwhile
    for url in fleet.urls:
        assert fleet.serves(url, "v3")
    redis.start()

    def cached() -> bool:
        response = httpx.get(fleet.urls[0] + "/thing", headers={"Connection": "close"})
        return response.headers["cache-status"].startswith("aeros; hit")

    wait_until(cached, 15, "caching resumes", 0.1)
