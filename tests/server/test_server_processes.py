"""The server in a subprocess: signals drain gracefully, workers are supervised and replaced."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time

import httpx
import pytest

from tests.support.server import AppProcess, get, get_in_thread, wait_until

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX signals and fork")


async def _drain_under_load(app: AppProcess, sig: int, requests: int = 50) -> list[int]:
    """Send ``requests`` slow requests, signal once all are in flight; their statuses."""
    url = app.url
    limits = httpx.Limits(max_connections=requests + 10)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        pending = [asyncio.ensure_future(client.get(f"{url}/slow/1.0")) for _ in range(requests)]
        deadline = time.monotonic() + 20
        async with httpx.AsyncClient(timeout=5) as probe:
            while (await probe.get(f"{url}/inflight")).text != str(requests):
                assert time.monotonic() < deadline, "the slow requests never were all in flight"
                await asyncio.sleep(0.02)
        app.signal(sig)
        responses = await asyncio.gather(*pending, return_exceptions=True)
    return [r.status_code if isinstance(r, httpx.Response) else repr(r) for r in responses]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sig", "workers"),
    [
        pytest.param(signal.SIGTERM, 1, id="sigterm-1-process"),
        pytest.param(signal.SIGINT, 1, id="sigint-1-process"),
        pytest.param(signal.SIGTERM, 4, id="sigterm-4-workers"),
        pytest.param(signal.SIGINT, 2, id="sigint-2-workers"),
    ],
)
async def test_server_signal_drains_in_flight_requests(start_app, sig: int, workers: int) -> None:
    """SIGTERM/SIGINT during 50 in-flight requests: all 50 get 200 and the process exits 0."""
    app = start_app("--workers", str(workers))
    statuses = await _drain_under_load(app, sig)
    assert statuses == [200] * 50
    assert await asyncio.to_thread(app.wait, 15) == 0
    assert app.values("EXITED") == ["signal handlers restored"]


@pytest.mark.slow
def test_server_graceful_timeout_cancels_long_requests(start_app) -> None:
    """A request longer than graceful_timeout is cancelled, logged, and the process still exits."""
    app = start_app("--graceful-timeout", "0.5")
    url = app.url
    client, outcome = get_in_thread(f"{url}/slow/30.0")
    wait_until(lambda: get(f"{url}/inflight")[1] == "1", 10, "the long request never started")
    started = time.monotonic()
    app.signal(signal.SIGTERM)
    assert app.wait(10) == 0
    elapsed = time.monotonic() - started
    client.join(10)
    assert elapsed < 5, f"exit took {elapsed:.1f}s with graceful_timeout=0.5"
    assert len(outcome) == 1
    assert outcome[0] != 200  # cut off: a 500 or a closed connection
    logs = app.stderr() + "\n".join(app.lines)
    assert "graceful_timeout" in logs
    assert "cancelling 1 request" in logs


@pytest.mark.slow
def test_server_killed_worker_is_replaced(start_app) -> None:
    """kill -9 of one of 4 workers under load: a replacement serves within 2 s, 1 loss at most."""
    app = start_app("--workers", "4")
    url = app.url
    first = app.worker_pids(4)
    stop_load = threading.Event()
    served: list[int] = []

    def load() -> None:  # bounded: stops on the event or after 3000 requests
        for _ in range(3000):
            if stop_load.is_set():
                return
            try:
                served.append(get(f"{url}/pid", timeout=5)[0])
            except OSError:
                served.append(0)

    loader = threading.Thread(target=load)
    loader.start()
    try:
        victim = sorted(first)[0]
        killed_at = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: len(app.values("WORKER")) > 4, 5, "no replacement started")
        replacement = int(app.values("WORKER")[-1])
        assert replacement not in first
        wait_until(lambda: get(f"{url}/pid")[1] == str(replacement), 5, "replacement silent")
        replaced_in = time.monotonic() - killed_at
    finally:
        stop_load.set()
        loader.join(10)
    assert replaced_in < 2.0, f"the replacement served {replaced_in:.2f}s after kill -9"
    assert served.count(200) > 0
    # One request in flight at a time: at most that one is lost with the killed worker.
    assert len(served) - served.count(200) <= 1, f"{len(served) - served.count(200)} failed"
    assert str(victim) in app.stderr()  # the death is logged with the pid
    app.signal(signal.SIGTERM)
    assert app.wait(15) == 0


@pytest.mark.slow
def test_server_crash_loop_exits_non_zero(start_app) -> None:
    """Workers that die at start make the parent exit non-zero within seconds (no storm)."""
    app = start_app("--workers", "2", "--crash-at-start")
    started = time.monotonic()
    code = app.wait(20)
    elapsed = time.monotonic() - started
    assert code == 3
    assert elapsed < 10
    assert "failing at start" in app.stderr()
    assert not app.values("URL")


@pytest.mark.slow
def test_server_hung_worker_is_replaced(start_app) -> None:
    """A worker whose event loop is blocked past the healthcheck timeout is killed and replaced."""
    app = start_app("--workers", "2", "--healthcheck-timeout", "1.0")
    url = app.url
    first = app.worker_pids(2)
    client, outcome = get_in_thread(f"{url}/block/15.0")
    hung = int(app.wait_for("BLOCK")[0])
    assert hung in first
    app.wait_for("WORKER", 3, timeout=10)
    client.join(20)
    assert isinstance(outcome[0], OSError)  # cut off when the worker was killed, not after 15 s
    logs = app.stderr()
    assert "heartbeat" in logs
    assert str(hung) in logs
    replacement = int(app.values("WORKER")[-1])
    assert replacement not in first
    app.signal(signal.SIGTERM)
    assert app.wait(15) == 0


@pytest.mark.parametrize(
    ("args", "frozen"),
    [
        pytest.param((), True, id="one-process"),
        pytest.param(("--workers", "2"), True, id="workers"),
        pytest.param(("--no-freeze-gc",), False, id="off"),
    ],
)
def test_server_freezes_startup_objects_where_it_owns_the_process(start_app, args, frozen) -> None:
    """run_server() and its workers gc.freeze() what start-up left alive; freeze_gc=False not."""
    app = start_app(*args)
    url = app.url
    counts = {get(f"{url}/frozen")[1] for _ in range(6)}
    assert all(int(count) > 1000 for count in counts) if frozen else counts == {"0"}, counts
    app.signal(signal.SIGTERM)
    assert app.wait(15) == 0


def test_serve_in_thread_leaves_the_callers_gc_alone(live_server) -> None:
    """A server in a helper thread shares the caller's process: nothing is frozen there."""
    import gc

    from aeros import WebServer

    app = WebServer(__name__, access_log=False)

    @app.route("/")
    async def home() -> str:
        return "ok"

    before = gc.get_freeze_count()
    with live_server(app) as url:
        assert httpx.get(url + "/").text == "ok"
    assert gc.get_freeze_count() == before  # before: not always 0 (3.12.1 starts with 375)
