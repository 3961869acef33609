"""The server in threads of this process: stop() from anywhere, AdvancedThread, no leftovers."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from aeros import AdvancedThread, ConfigurationError, WebServer
from aeros.server import threads
from aeros.server.config import ServerConfig
from aeros.server.runner import bind_socket
from tests.support.server import alive, get_in_thread, slow_app, wait_until


def _open_sockets() -> int:
    fds = Path("/proc/self/fd")
    count = 0
    for fd in fds.iterdir():
        try:
            count += os.readlink(fd).startswith("socket:")
        except OSError:  # closed between listing and reading
            continue
    return count


def _serve(app: WebServer, thread_class: type[threading.Thread] = threading.Thread):
    """Start ``app.run_server`` in a thread on a fresh port: (thread, sock, started event, url)."""
    sock = bind_socket("127.0.0.1", 0, 128)
    started = threading.Event()
    urls: list[str] = []

    def on_started(url: str) -> None:
        urls.append(url)
        started.set()

    thread = thread_class(
        target=app.run_server, kwargs={"sock": sock, "on_started": on_started}, daemon=True
    )
    return thread, sock, started, urls


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts fds through /proc")
def test_server_start_stop_20_times_leaves_nothing_behind() -> None:
    """20 start/serve/stop cycles in threads leave no thread, socket or fd behind."""
    app = slow_app()
    with app.serve_in_thread() as url:  # warm-up: lazy imports and caches are not leaks
        assert httpx.get(url).text == "ok"
    threads_before = threading.active_count()
    sockets_before = _open_sockets()
    fds_before = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        with app.serve_in_thread() as url, httpx.Client() as client:
            assert client.get(url).text == "ok"
    assert threading.active_count() == threads_before, threading.enumerate()
    assert _open_sockets() == sockets_before
    assert len(os.listdir("/proc/self/fd")) == fds_before


def test_server_stop_from_another_thread_finishes_in_flight_request() -> None:
    """app.stop() from another thread drains: the request in flight still gets its 200."""
    app = slow_app()
    thread, sock, started, urls = _serve(app)
    thread.start()
    try:
        assert started.wait(10)
        results: list[httpx.Response] = []
        client = threading.Thread(target=lambda: results.append(httpx.get(urls[0] + "/slow")))
        client.start()
        assert app.extensions["slow_entered"].wait(5)
        stopper = threading.Thread(target=app.stop)
        stopper.start()
        stopper.join(5)
        thread.join(5)
        client.join(5)
        assert not thread.is_alive()
        assert results[0].status_code == 200
        assert results[0].text == "slow done"
    finally:
        app.stop()
        thread.join(5)
        sock.close()


def test_server_stop_is_idempotent_and_false_when_idle() -> None:
    """stop() when not serving does nothing and says so; twice while serving is harmless."""
    app = slow_app()
    assert app.stop() is False
    thread, sock, started, _ = _serve(app)
    thread.start()
    assert started.wait(10)
    assert app.stop() is True
    app.stop()
    thread.join(5)
    sock.close()
    assert not thread.is_alive()
    assert app.stop() is False


def test_server_advanced_thread_stop_drains() -> None:
    """AdvancedThread(target=app.run_server).stop() stops that server; requests in flight end."""
    app = slow_app()
    thread, sock, started, urls = _serve(app, AdvancedThread)
    assert isinstance(thread, AdvancedThread)
    thread.start()
    try:
        assert started.wait(10)
        with httpx.Client() as client:
            assert client.get(urls[0]).text == "ok"
            results: list[httpx.Response] = []
            slow = threading.Thread(target=lambda: results.append(client.get(urls[0] + "/slow")))
            slow.start()
            assert app.extensions["slow_entered"].wait(5)
            thread.stop()
            thread.join(5)
            slow.join(5)
        assert not thread.is_alive()
        assert results[0].text == "slow done"
        with pytest.raises(httpx.ConnectError):
            httpx.get(urls[0], timeout=2)
    finally:
        sock.close()


def test_server_advanced_thread_stop_right_after_start() -> None:
    """A stop() racing the start (before the server exists) still stops it, every time."""
    app = slow_app()
    for _ in range(10):
        thread, sock, _started, _ = _serve(app, AdvancedThread)
        assert isinstance(thread, AdvancedThread)
        thread.start()
        thread.stop()
        thread.join(5)
        sock.close()
        assert not thread.is_alive()
    never_started, sock, _, _ = _serve(app, AdvancedThread)
    assert isinstance(never_started, AdvancedThread)
    never_started.stop()  # before start(): the thread then does nothing
    never_started.start()
    never_started.join(5)
    sock.close()
    assert not never_started.is_alive()


def test_server_advanced_thread_needs_a_callable_target() -> None:
    """AdvancedThread refuses a target that is not callable, naming it."""
    with pytest.raises(ConfigurationError, match=r"AdvancedThread\(target=42\) must be a callable"):
        AdvancedThread(target=42)  # type: ignore[arg-type]


def test_server_stop_during_startup_stops_plain_thread() -> None:
    """app.stop() while the app's startup hooks run: the server never serves and the thread ends."""
    app = slow_app()
    in_startup = threading.Event()
    release = threading.Event()

    @app.before_serving
    async def slow_startup() -> None:
        in_startup.set()
        await asyncio.to_thread(release.wait, 10)

    thread, sock, started, _ = _serve(app)
    thread.start()
    try:
        assert in_startup.wait(10)
        assert app.stop() is True
        release.set()
        thread.join(5)
        assert not thread.is_alive()
        assert not started.is_set()
    finally:
        release.set()
        sock.close()


def test_server_serve_in_thread_reports_startup_failure() -> None:
    """A failing startup hook surfaces at once from serve_in_thread, with its cause."""
    app = slow_app()

    @app.before_serving
    async def broken() -> None:
        raise RuntimeError("no database")

    with pytest.raises(RuntimeError, match="ended before it served"), app.serve_in_thread():
        pass
    assert all(thread.name != "aeros-server" for thread in threading.enumerate())


def test_server_serve_in_thread_waits_for_the_drain_and_keeps_the_blocks_exception() -> None:
    """Leaving serve_in_thread waits for the drain (up to graceful_timeout), not for the start
    ``timeout``: a request longer than that still gets its answer, the with-block's exception
    is the one raised, and the app can serve again at once."""
    app = slow_app(delay=3.0)
    requests: list[tuple[threading.Thread, list[object]]] = []

    def fail_mid_request() -> None:
        with app.serve_in_thread(timeout=2.0) as url:
            requests.append(get_in_thread(url + "/slow"))
            assert app.extensions["slow_entered"].wait(5)
            raise KeyError("the block's own failure")

    with pytest.raises(KeyError, match="own failure"):
        fail_mid_request()
    client, outcome = requests[0]
    client.join(10)
    assert outcome == [200]
    assert all(thread.name != "aeros-server" for thread in threading.enumerate())
    with app.serve_in_thread(timeout=2.0) as url:
        assert httpx.get(url).text == "ok"


class _Unstoppable:
    """An app whose server ignores stop() until released: a drain that outlasts its bound."""

    server_config = ServerConfig(graceful_timeout=0.1)

    def __init__(self) -> None:
        self.release = threading.Event()

    def run_server(self, *, sock: object, on_started: Callable[[str], None]) -> None:
        on_started("http://127.0.0.1:1")
        self.release.wait(30)

    def stop(self) -> bool:
        return True


@pytest.mark.parametrize("block_fails", [True, False], ids=["block-fails", "block-ends"])
def test_server_serve_in_thread_never_hides_the_blocks_exception(
    monkeypatch: pytest.MonkeyPatch, block_fails: bool
) -> None:
    """A server that does not stop within its drain bound is an error when the block ended
    normally, and only logged when the block raised: its exception is the one that matters."""
    monkeypatch.setattr(threads, "_STOP_MARGIN", 0.2)
    app = _Unstoppable()
    messages: list[str] = []
    logger = logging.getLogger("aeros.server")
    collector = _Collector(messages)
    logger.addHandler(collector)

    def serve() -> None:
        with threads.serve_in_thread(app, host="127.0.0.1", port=0, timeout=0.2):
            if block_fails:
                raise KeyError("the block's own failure")

    expected = (KeyError, "own failure") if block_fails else (RuntimeError, "within 0.3 s")
    try:
        with pytest.raises(expected[0], match=expected[1]):
            serve()
    finally:
        logger.removeHandler(collector)
        app.release.set()
    stuck = [message for message in messages if "did not stop within 0.3 s" in message]
    assert len(stuck) == (1 if block_fails else 0), messages
    wait_until(
        lambda: all(thread.name != "aeros-server" for thread in threading.enumerate()),
        5,
        "the server thread did not end once released",
    )


def test_server_that_does_not_stop_says_where_it_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    """A real server whose ``after_serving`` hook never ends: the error names the hook, from
    the tasks of the server's loop, so a hang in CI says where it is."""
    monkeypatch.setattr(threads, "_STOP_MARGIN", 0.5)
    release = threading.Event()
    app = WebServer(__name__, access_log=False, graceful_timeout=0.1)

    @app.after_serving
    async def stuck_after_serving() -> None:
        while not release.is_set():
            await asyncio.sleep(0.01)

    try:
        with (
            pytest.raises(RuntimeError, match="did not stop within") as raised,
            threads.serve_in_thread(app, host="127.0.0.1", port=0, timeout=0.5),
        ):
            pass
    finally:
        release.set()
    message = str(raised.value)
    assert "its tasks wait in: " in message
    assert "stuck_after_serving (" in message
    assert "test_server_threads.py" in message
    wait_until(
        lambda: all(thread.name != "aeros-server" for thread in threading.enumerate()),
        5,
        "the server thread did not end once released",
    )


def test_server_without_fork_falls_back_to_one_process(monkeypatch) -> None:
    """workers=2 where fork is unavailable: a clear warning, then one process serves."""
    monkeypatch.setattr("aeros.server.runner.can_fork", lambda: False)
    app = WebServer(__name__, access_log=False, workers=2)

    @app.route("/pid")
    async def pid() -> str:
        return str(os.getpid())

    messages: list[str] = []
    logger = logging.getLogger("aeros.server")
    collector = _Collector(messages)
    logger.addHandler(collector)
    try:
        with app.serve_in_thread() as url:
            assert httpx.get(url + "/pid").text == str(os.getpid())
    finally:
        logger.removeHandler(collector)
    assert any("fork" in message and "ONE" in message for message in messages)


def test_server_workers_from_a_thread() -> None:
    """workers=2 under serve_in_thread: forked workers serve, stop() drains them all."""
    if not hasattr(os, "fork"):
        pytest.skip("needs fork")
    app = WebServer(__name__, access_log=False, workers=2)

    @app.route("/pid")
    async def pid() -> str:
        return str(os.getpid())

    with app.serve_in_thread() as url:
        answer = httpx.get(url + "/pid", headers={"Connection": "close"}).text
        assert answer != str(os.getpid())
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/pid", timeout=2)
    wait_until(lambda: not alive(int(answer)), 5, "the worker outlived stop()")


class _Collector(logging.Handler):
    """Keeps messages; works whatever handlers and propagation the logging setup chose."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__()
        self.messages = messages

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())
