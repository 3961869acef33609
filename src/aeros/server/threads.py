"""Serve in a background thread (minimal; the server helper extends it)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from aeros.server.runner import bind_socket

__all__ = ["serve_in_thread"]


@contextlib.contextmanager
def serve_in_thread(app: Any, *, host: str, port: int, timeout: float) -> Iterator[str]:
    sock = bind_socket(host, port, 2048)
    started = threading.Event()
    urls: list[str] = []

    def on_started(url: str) -> None:
        urls.append(url)
        started.set()

    thread = threading.Thread(
        target=app.run_server, kwargs={"sock": sock, "on_started": on_started}, daemon=True
    )
    thread.start()
    try:
        if not started.wait(timeout):
            raise RuntimeError(f"server did not start within {timeout} s")
        yield urls[0]
    finally:
        app.stop()
        thread.join(timeout)
        sock.close()


class AdvancedThread(threading.Thread):
    """STUB (owned by the server helper)."""

    def stop(self) -> None:
        return None
