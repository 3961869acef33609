"""A rate limit shared through a real redis-server: by workers and instances, and outages."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.net import RedisServer
from tests.support.server import url_file_servers, wait_until

APP = Path(__file__).parents[1] / "apps" / "ratelimit_app.py"

Start = Callable[[str, str, str], str]


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[Start]:
    """``start(storage, limit, "open"|"closed") -> url``: an instance with 2 workers."""
    with url_file_servers(tmp_path) as start:
        urls = iter(range(1000))

        def start_instance(storage: str, limit: str, fail: str) -> str:
            url_file = tmp_path / f"url{next(urls)}.txt"
            return str(start([str(APP), storage, limit, fail, str(url_file)], "the instance"))

        yield start_instance


def fresh_get(url: str) -> httpx.Response:
    """One GET on its own connection, so the kernel may hand it to either worker."""
    return httpx.get(url, headers={"Connection": "close"}, timeout=10)


@pytest.mark.redis
@pytest.mark.slow
def test_ratelimit_redis_one_limit_across_two_instances_of_two_workers(
    instance: Start, redis: RedisServer
) -> None:
    """Two instances of two workers each, one Redis: the limit holds for the fleet. The
    first 60 requests (alternating instances) pass, every one after is refused; a per-worker
    count would have let up to 240 through."""
    limit = 60
    urls = [instance(redis.url, f"{limit}/minute", "open") for _ in range(2)]
    responses = [fresh_get(urls[i % 2]) for i in range(limit + 12)]
    statuses = [r.status_code for r in responses]
    workers = Counter(r.headers["x-worker"] for r in responses)
    assert statuses == [200] * limit + [429] * 12, statuses
    assert len(workers) >= 3, workers  # both instances, and more than one worker of one
    remaining = [int(r.headers["ratelimit"].split(";r=")[1].split(";")[0]) for r in responses]
    assert remaining == [*range(limit - 1, -1, -1)] + [0] * 12


@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.parametrize("fail", ["open", "closed"])
def test_ratelimit_redis_stopped_mid_test_no_5xx_and_recovers(
    instance: Start, redis: RedisServer, fail: str
) -> None:
    """Redis stops while requests flow: not one 5xx (fail open: 200 without fields; closed:
    429); once Redis is back, counting resumes by itself."""
    url = instance(redis.url, "1000/minute", fail)
    before = [fresh_get(url) for _ in range(5)]
    redis.stop()
    try:
        during = [fresh_get(url) for _ in range(30)]
    finally:
        redis.start()
    assert {r.status_code for r in before} == {200}
    assert all("ratelimit" in r.headers for r in before)
    if fail == "open":
        assert {r.status_code for r in during} == {200}
        assert all("ratelimit" not in r.headers for r in during)
    else:
        assert {r.status_code for r in during} == {429}
        assert all(r.headers["retry-after"] == "1" for r in during)

    def counting_again() -> bool:
        response = fresh_get(url)
        assert response.status_code < 500
        return response.status_code == 200 and "ratelimit" in response.headers

    # each worker skips Redis for 1 s after a failure, then tries again
    wait_until(counting_again, 10, "the limit counts again after Redis came back", 0.2)
