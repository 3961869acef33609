"""AdvancedThread: stop() waits for the server to stop; any callable running a WebServer."""

from __future__ import annotations

import threading
from collections.abc import Callable

import httpx
import pytest

from aeros import AdvancedThread
from aeros.server.runner import bind_socket
from tests.support.server import slow_app


class _Started:
    """An on_started callback that records the URL."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.url = ""

    def __call__(self, url: str) -> None:
        self.url = url
        self.event.set()

    def wait(self) -> str:
        assert self.event.wait(10), "the server did not start"
        return self.url


def _slow_request(url: str) -> tuple[threading.Thread, list[str]]:
    results: list[str] = []
    client = threading.Thread(target=lambda: results.append(httpx.get(url + "/slow").text))
    client.start()
    return client, results


def test_advanced_thread_stop_waits_so_a_restart_serves_at_once() -> None:
    """stop() returns once the server stopped: in-flight work done, run_server again works."""
    app = slow_app()
    for _ in range(3):
        sock = bind_socket("127.0.0.1", 0, 128)
        started = _Started()
        thread = AdvancedThread(
            target=app.run_server, kwargs={"sock": sock, "on_started": started}, daemon=True
        )
        thread.start()
        url = started.wait()
        app.extensions["slow_entered"].clear()
        client, results = _slow_request(url)
        assert app.extensions["slow_entered"].wait(5)
        thread.stop()
        assert not thread.is_alive()  # no join() needed
        client.join(5)
        assert results == ["slow done"]
        sock.close()
    with app.serve_in_thread() as url:  # right after: no "already serving"
        assert httpx.get(url + "/").text == "ok"


@pytest.mark.parametrize("kind", ["lambda", "function-building-its-app"])
def test_advanced_thread_accepts_any_callable_that_runs_a_webserver(kind: str) -> None:
    """A lambda or a function that runs a WebServer in the thread is stopped by stop()."""
    sock = bind_socket("127.0.0.1", 0, 128)
    started = _Started()
    target: Callable[[], object]
    if kind == "lambda":
        app = slow_app()
        target = lambda: app.run_server(sock=sock, on_started=started)  # noqa: E731
    else:

        def target() -> None:
            slow_app().run_server(sock=sock, on_started=started)

    thread = AdvancedThread(target=target, daemon=True)
    thread.start()
    try:
        url = started.wait()
        assert httpx.get(url + "/").text == "ok"
        thread.stop(timeout=10)
        assert not thread.is_alive()
        with pytest.raises(httpx.ConnectError):
            httpx.get(url + "/", timeout=2)
    finally:
        sock.close()


def test_advanced_thread_stop_racing_start_with_a_lambda() -> None:
    """A stop() right after start() stops a lambda's server before or as it starts."""
    app = slow_app()
    for _ in range(10):
        sock = bind_socket("127.0.0.1", 0, 128)
        thread = AdvancedThread(target=lambda s=sock: app.run_server(sock=s), daemon=True)
        thread.start()
        thread.stop(timeout=10)
        sock.close()
        assert not thread.is_alive()
    assert app.stop() is False


def test_advanced_thread_stop_timeout_raises_and_keeps_stopping() -> None:
    """stop(timeout) raises TimeoutError naming the wait when the drain takes longer."""
    app = slow_app(delay=1.5)
    sock = bind_socket("127.0.0.1", 0, 128)
    started = _Started()
    thread = AdvancedThread(
        target=lambda: app.run_server(sock=sock, on_started=started), daemon=True
    )
    thread.start()
    try:
        client, results = _slow_request(started.wait())
        assert app.extensions["slow_entered"].wait(5)
        with pytest.raises(TimeoutError, match=r"stop\(timeout=0\.2\).*still running"):
            thread.stop(timeout=0.2)
        thread.stop()  # waits for the rest of the drain
        assert not thread.is_alive()
        client.join(5)
        assert results == ["slow done"]
    finally:
        sock.close()
