"""Helpers for tests that run ``python -m aeros`` in a subprocess and talk HTTP to it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import httpx

from tests.support.net import free_port


def start_cli(
    cwd: Path, *argv: str, env: Mapping[str, str] | None = None, port: int | None = None
) -> tuple[subprocess.Popen[str], str]:
    """Start ``python -m aeros run ARGV --port N`` in ``cwd``; the process and its base URL."""
    port = free_port() if port is None else port
    proc = subprocess.Popen(
        [sys.executable, "-m", "aeros", "run", *argv, "--port", str(port)],
        cwd=cwd,
        env={**os.environ, "NO_COLOR": "1", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc, f"http://127.0.0.1:{port}/"


def stop_cli(proc: subprocess.Popen[str]) -> tuple[str, str]:
    """SIGTERM the process and return its (stdout, stderr); kill it if it hangs."""
    try:
        proc.send_signal(signal.SIGTERM)
        return proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def wait_for(
    proc: subprocess.Popen[str],
    fetch: Callable[[], httpx.Response],
    wanted: Callable[[httpx.Response], bool],
    timeout: float = 30.0,
) -> httpx.Response:
    """Call ``fetch`` until ``wanted`` holds; fail if ``proc`` exits or at the deadline."""
    deadline = time.monotonic() + timeout
    last: httpx.Response | None = None
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"exited early with {proc.returncode}: {proc.communicate()}")
        try:
            last = fetch()
            if wanted(last):
                return last
        except httpx.TransportError:
            pass  # not listening yet, or between an old server and a restarted one
        if time.monotonic() > deadline:
            shown = None if last is None else (last.status_code, last.text[:200])
            raise AssertionError(f"no wanted answer in {timeout}s; last: {shown}")
        time.sleep(0.05)
