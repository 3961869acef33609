"""Helpers for the server tests: an app subprocess that reports its URL and workers."""

from __future__ import annotations

import asyncio
import http.client
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aeros.server.runner import Runner, bind_socket

if TYPE_CHECKING:
    from aeros import WebServer

APP = Path(__file__).parents[1] / "apps" / "server_app.py"


class AppProcess:
    """``tests/apps/server_app.py`` (or ``script``) in a subprocess; stdout lines are collected
    as they come; ``name`` names its stderr file (several in one test need several names)."""

    def __init__(
        self, tmp_path: Path, *args: str, script: Path = APP, name: str = "server"
    ) -> None:
        self.stderr_path = tmp_path / f"{name}.stderr"
        with self.stderr_path.open("wb") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, str(script), *args],
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"},
            )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def values(self, prefix: str) -> list[str]:
        """The rest of every stdout line that starts with ``prefix + ' '`` so far."""
        with self._changed:
            return [line[len(prefix) + 1 :] for line in self.lines if line.startswith(prefix + " ")]

    def wait_for(self, prefix: str, count: int = 1, timeout: float = 20.0) -> list[str]:
        """Wait until ``count`` lines start with ``prefix``; fail with the logs at the deadline."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(found := self.values(prefix)) < count:
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(
                        f"waited {timeout}s for {count} {prefix!r} line(s); stdout={self.lines}, "
                        f"exit={self.proc.poll()}, stderr={self.stderr()[-3000:]}"
                    )
                self._changed.wait(min(left, 0.1))
        return found

    @property
    def url(self) -> str:
        return self.wait_for("URL")[0]

    def worker_pids(self, count: int) -> set[int]:
        return {int(pid) for pid in self.wait_for("WORKER", count)}

    def signal(self, sig: int) -> None:
        os.kill(self.proc.pid, sig)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout)

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        # Orphaned workers of a killed parent notice it and drain on their own within a second.
        self._reader.join(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def alive(pid: int) -> bool:
    """Whether a process with ``pid`` exists (a zombie counts until it is reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    """One GET on a fresh connection (so forked workers share the load); (status, body)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
    try:
        conn.request("GET", parts.path or "/", headers={"Connection": "close"})
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def get_in_thread(url: str, timeout: float = 20.0) -> tuple[threading.Thread, list[object]]:
    """Start :func:`get` of ``url`` in a thread; the list receives its status, or the OSError
    that cut it off (a closed connection), once it ends."""
    outcome: list[object] = []

    def request() -> None:
        try:
            outcome.append(get(url, timeout=timeout)[0])
        except OSError as exc:
            outcome.append(exc)

    client = threading.Thread(target=request)
    client.start()
    return client, outcome


def wait_until(predicate, timeout: float, message: str, interval: float = 0.02) -> None:
    """Poll ``predicate`` until true, or fail with ``message`` at the deadline."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{message} (waited {timeout}s)")
        time.sleep(interval)


def slow_app(delay: float = 0.5) -> Any:
    """A WebServer with ``/`` and ``/slow`` (``delay`` seconds); the event
    ``app.extensions["slow_entered"]`` is set when /slow starts running."""
    from aeros import WebServer

    app = WebServer(__name__, access_log=False)
    entered = app.extensions["slow_entered"] = threading.Event()

    @app.route("/")
    async def home() -> str:
        return "ok"

    @app.route("/slow")
    async def slow() -> str:
        entered.set()
        await asyncio.sleep(delay)
        return "slow done"

    return app


@contextmanager
def url_file_servers(tmp_path: Path) -> Iterator[Any]:
    """``start(args, what) -> url``: run ``python *args`` (a script whose last argument is the
    file it writes its URL to once serving) and wait for that URL; SIGTERM every one at exit.
    For apps that report their URL through a file rather than stdout (:class:`AppProcess`)."""
    processes: list[subprocess.Popen[bytes]] = []

    def start(args: list[str], what: str = "the server", cwd: Path | None = None) -> str:
        index = len(processes)
        url_file, log = Path(args[-1]), tmp_path / f"stderr{index}.txt"
        with log.open("wb") as stderr:
            process = subprocess.Popen(
                [sys.executable, *args], cwd=cwd, stdout=subprocess.DEVNULL, stderr=stderr
            )
        processes.append(process)
        deadline = time.monotonic() + 30
        while not url_file.exists():
            if process.poll() is not None:
                raise RuntimeError(log.read_text())
            assert time.monotonic() < deadline, f"{what} did not start"
            time.sleep(0.05)
        return url_file.read_text()

    try:
        yield start
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


@contextmanager
def served_by_aeros(asgi: Any, app: WebServer) -> Iterator[str]:
    """``asgi`` (any ASGI app) served by aeros' server with ``app``'s server options."""
    sock = bind_socket("127.0.0.1", 0, 128)
    urls: list[str] = []
    started = threading.Event()

    def on_started(url: str) -> None:
        urls.append(url)
        started.set()

    runner = Runner(asgi, app.server_config, sock=sock, on_started=on_started)
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    try:
        assert started.wait(10), "the server did not start"
        yield urls[0]
    finally:
        runner.stop()
        thread.join(10)
        sock.close()
