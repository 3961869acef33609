"""Shared fixtures: apps, a live server on an ephemeral loopback port, a real redis-server."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import pytest

from aeros import WebServer

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require(condition: bool, reason: str) -> None:
    """Skip locally when a tool is missing; in CI a missing tool is a failure, never a skip."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: missing dependencies fail instead of skipping)")
    pytest.skip(reason)


@pytest.fixture
def app() -> WebServer:
    """A fresh WebServer with access logging off (tests that check logs turn it on)."""
    return WebServer(__name__, access_log=False)


@pytest.fixture
def live_server() -> Callable[[WebServer], AbstractContextManager[str]]:
    """Serve an app in a thread on a free loopback port: ``with live_server(app) as url:``."""

    def start(app: WebServer) -> AbstractContextManager[str]:
        return app.serve_in_thread(host="127.0.0.1", port=0, timeout=10.0)

    return start


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(host: str, port: int, deadline: float) -> None:
    """Poll until something accepts on host:port, or fail at the deadline (monotonic)."""
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port}") from None
            time.sleep(0.02)


def get_when_ready(proc: subprocess.Popen[str], url: str, deadline: float) -> httpx.Response:
    """GET ``url`` until it answers; fail if ``proc`` exits first or at the (monotonic) deadline."""
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"exited early with {proc.returncode}: {proc.communicate()}")
        try:
            return httpx.get(url, timeout=2)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not answer in time") from None
            time.sleep(0.05)


class RedisServer:
    """A real redis-server process on its own port, which tests may stop and restart."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port("127.0.0.1", self.port, time.monotonic() + 10)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def flush(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
            sock.sendall(b"FLUSHALL\r\n")
            sock.recv(64)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A session-wide redis-server on a free loopback port (flushed by ``redis`` below)."""
    binary = shutil.which("redis-server")
    require(binary is not None, "redis-server is not installed (make test installs it)")
    assert binary is not None
    server = RedisServer(binary, tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis(redis_server: RedisServer) -> RedisServer:
    """The session redis-server, running and empty."""
    if redis_server.process is None:
        redis_server.start()
    redis_server.flush()
    return redis_server
