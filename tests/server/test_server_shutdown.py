"""Shutdown by signal in a real subprocess: a second Ctrl-C cuts requests, hooks still run."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.support.server import AppProcess, get, get_in_thread, wait_until

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX signals")


@pytest.mark.slow
def test_second_sigint_cancels_requests_and_still_runs_shutdown_hooks(tmp_path: Path) -> None:
    """Two SIGINTs during a slow request: one line says so, the request gets 503, no traceback,
    after_serving runs, and the process exits 0 at once."""
    marker = tmp_path / "after_serving"
    app = AppProcess(tmp_path, "--after-serving-file", str(marker))
    try:
        url = app.url
        client, outcome = get_in_thread(f"{url}/slow/30.0")
        wait_until(lambda: get(f"{url}/inflight")[1] == "1", 10, "the slow request never started")
        app.signal(signal.SIGINT)
        wait_until(lambda: "Shutting down" in app.stderr(), 5, "the first SIGINT was not seen")
        started = time.monotonic()
        app.signal(signal.SIGINT)
        assert app.wait(10) == 0
        elapsed = time.monotonic() - started
        client.join(10)
    finally:
        app.close()
    logs = app.stderr()
    assert elapsed < 3, f"exit took {elapsed:.1f}s after the second SIGINT"
    assert "second SIGINT: cancelling 1 in-flight request(s)" in logs
    assert "graceful_timeout" not in logs
    assert "Traceback" not in logs
    assert "CancelledError" not in logs
    assert outcome == [503]
    assert marker.read_text() == f"{app.proc.pid}\n"  # after_serving ran, once
    assert app.values("EXITED") == ["signal handlers restored"]


@pytest.mark.slow
def test_third_signal_skips_hanging_shutdown_hooks(tmp_path: Path) -> None:
    """after_serving hangs: a second SIGINT still waits for it, a third skips it, quietly."""
    marker = tmp_path / "after_serving"
    app = AppProcess(tmp_path, "--after-serving-file", str(marker), "--hang-after-serving")
    try:
        app.wait_for("URL")
        app.signal(signal.SIGINT)
        app.wait_for("HOOK", timeout=10)
        app.signal(signal.SIGINT)
        time.sleep(0.5)
        assert app.proc.poll() is None  # the second one lets the hooks run on
        app.signal(signal.SIGINT)
        assert app.wait(5) == 0
    finally:
        app.close()
    logs = app.stderr()
    assert "SIGINT again: skipping the rest of the shutdown hooks" in logs
    assert "Traceback" not in logs
    assert marker.read_text() == f"{app.proc.pid}\n"
