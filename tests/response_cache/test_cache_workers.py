"""Shared stores across worker processes; Redis stopped, silent or resetting under load."""

from __future__ import annotations

import asyncio
import socket
import struct
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from aeros import RedisCache
from tests.support.cache import LiveServer, Records, Site, make_store
from tests.support.server import url_file_servers

WORKER_APP = textwrap.dedent(
    """
    import os, sys
    from aeros import FilesystemCache, RedisCache, WebServer

    kind, where, calls_file, url_file = sys.argv[1:5]
    if kind == "filesystem":
        cache = FilesystemCache(where)
    else:  # behaviour, not timeouts: a busy machine may answer slower than the 0.1 s default
        cache = RedisCache(url=where, socket_timeout=1.0)
    app = WebServer(__name__, workers=4, cache=cache, access_log=False, log_level="warning")

    @app.route("/")
    @app.cache(timeout=60)
    async def home():
        with open(calls_file, "a") as f:  # the view's side effect: one line per call
            f.write(f"{os.getpid()}\\n")
        return f"filled by {os.getpid()}"

    class WorkerPid:  # outermost layer: every response, hit or not, names its worker
        def __init__(self, inner):
            self.inner = inner

        async def __call__(self, scope, receive, send):
            async def send_pid(message):
                if message["type"] == "http.response.start":
                    pid = str(os.getpid()).encode()
                    message["headers"] = [*message.get("headers", []), (b"x-worker", pid)]
                await send(message)

            await self.inner(scope, receive, send_pid)

    app.asgi_app = WorkerPid(app.asgi_app)

    def started(url):
        with open(url_file + ".tmp", "w") as f:
            f.write(url)
        os.replace(url_file + ".tmp", url_file)

    app.run_server(port=0, on_started=started)
    """
)


@pytest.fixture
def worker_server(tmp_path: Path) -> Iterator[Any]:
    """Start the 4-worker app in a subprocess: ``start(kind, where) -> (url, calls_file)``."""
    with url_file_servers(tmp_path) as start:

        def start_workers(kind: str, where: str) -> tuple[str, Path]:
            script = tmp_path / "worker_app.py"
            script.write_text(WORKER_APP)
            calls, url_file = tmp_path / "calls.txt", tmp_path / "url.txt"
            args = [str(script), kind, where, str(calls), str(url_file)]
            return start(args, "workers", cwd=tmp_path), calls

        yield start_workers


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["filesystem", "redis"])
def test_cache_shared_between_workers(
    kind: str, worker_server: Any, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """With 4 workers, a response cached by one worker is a hit in the others."""
    where = (
        str(tmp_path / "cache") if kind == "filesystem" else request.getfixturevalue("redis").url
    )
    url, calls = worker_server(kind, where)
    first = httpx.get(url + "/", headers={"Connection": "close"}, timeout=10)
    assert first.status_code == 200
    workers: Counter[str] = Counter()
    deadline = time.monotonic() + 20
    # fresh connections until the hits have come from at least 3 different workers (bounded)
    while len(workers) < 3 and time.monotonic() < deadline:
        with httpx.Client(timeout=10) as client:
            response = client.get(url + "/", headers={"Connection": "close"})
        assert response.status_code == 200
        assert response.text == first.text
        assert "age" in response.headers
        workers[response.headers["x-worker"]] += 1
    assert len(workers) >= 2, workers
    assert calls.read_text().split() == [first.text.split()[-1]]  # the view ran once in all


async def test_cache_redis_outage_under_load(
    redis: Any, live_server: LiveServer, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Redis stopped under load: zero 5xx; once it is back, responses are hits again."""
    store = make_store("redis", tmp_path, request, retry_after=0.2)
    site = Site(store)
    statuses: Counter[int] = Counter()
    with live_server(site.app) as url:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:

            async def load(n: int) -> None:
                for i in range(n):
                    response = await client.get(f"/page/{i % 5}")
                    statuses[response.status_code] += 1

            await load(5)  # fill
            views_before = site.views["page"]
            stopper = asyncio.create_task(asyncio.to_thread(redis.stop))
            await asyncio.gather(*(load(40) for _ in range(8)), stopper)  # 320 requests
            assert site.views["page"] > views_before  # served uncached while down
            await asyncio.to_thread(redis.start)
            deadline = time.monotonic() + 10
            while True:  # recovers by itself: a fill, then a hit that does not call the view
                await client.get("/page/x")
                views = site.views["page"]
                hit = await client.get("/page/x")
                if hit.status_code == 200 and "age" in hit.headers and site.views["page"] == views:
                    break
                assert time.monotonic() < deadline, "no hit after Redis came back"
                await asyncio.sleep(0.1)
    assert set(statuses) == {200}, statuses


class FakeRedis:
    """A TCP server that plays a broken Redis: silent (never answers) or reset (closes at once)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            if self.mode == "reset":
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()
            else:
                self.held.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


@pytest.mark.parametrize("mode", ["silent", "reset"])
async def test_cache_broken_redis_under_load(mode: str, live_server: LiveServer) -> None:
    """A Redis that hangs or resets connections: zero 5xx, each request bounded, one warning."""
    fake = FakeRedis(mode)
    try:
        store = RedisCache(port=fake.port, socket_timeout=0.1, retry_after=0.3)
        site = Site(store)
        with Records("aeros.response_cache.layer") as log, live_server(site.app) as url:
            async with httpx.AsyncClient(base_url=url, timeout=10) as client:

                async def one(i: int) -> tuple[int, float]:
                    started = time.monotonic()
                    response = await client.get(f"/page/{i % 3}")
                    return response.status_code, time.monotonic() - started

                results = await asyncio.gather(*(one(i) for i in range(60)))
    finally:
        fake.close()
    assert {status for status, _ in results} == {200}
    assert max(duration for _, duration in results) < 5  # bounded by the short timeouts
    assert len([r for r in log.records if "store failed" in r.getMessage()]) == 1
