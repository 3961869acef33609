"""Every program in examples/ runs, serves "/" on the address from AEROS_HOST/AEROS_PORT, and
exits cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.support.net import free_port, get_when_ready

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def ok_json(response: httpx.Response) -> None:
    assert response.json()["response"] == "ok"


def seed_getting_started(response: httpx.Response) -> None:
    assert response.json() == {"response": "ok"}


def global_headers(response: httpx.Response) -> None:
    ok_json(response)
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"


def no_server_header(response: httpx.Response) -> None:
    ok_json(response)
    assert "server" not in response.headers


# What "/" must answer, per example; any other example must answer 200 with a body.
CHECKS: dict[str, Callable[[httpx.Response], None]] = {
    "getting_started.py": seed_getting_started,
    "sync_to_async.py": seed_getting_started,
    "server_in_thread.py": ok_json,
    "global_headers.py": global_headers,
    "no_server_header.py": no_server_header,
    "demo.py": ok_json,
}


@pytest.mark.parametrize(
    "example", sorted(path.name for path in EXAMPLES.glob("*.py") if path.name != "__init__.py")
)
def test_example_serves_and_stops(example: str) -> None:
    """The example serves "/" on AEROS_HOST:AEROS_PORT and exits 0 on SIGTERM."""
    port = free_port()
    env = {**os.environ, "AEROS_HOST": "127.0.0.1", "AEROS_PORT": str(port), "NO_COLOR": "1"}
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLES / example)],
        cwd=EXAMPLES,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        response = get_when_ready(proc, f"http://127.0.0.1:{port}/", time.monotonic() + 30)
        assert response.status_code == 200
        assert response.content
        CHECKS.get(example, lambda _: None)(response)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    if example in CHECKS:  # these keep the default access log on
        assert '"GET / HTTP/1.1" 200' in out
