"""A SimpleCache lives once per worker: clears, purges and write invalidations reach them all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.server import get

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="workers need fork")

APP = Path(__file__).parents[1] / "apps" / "memory_cache_app.py"


class TwoWorkers:
    """The app in a subprocess; its stdout lines are read on demand."""

    def __init__(self, tmp_path: Path) -> None:
        self.data = tmp_path / "data.txt"
        self.data.write_text("v0")
        self.stderr = tmp_path / "stderr.txt"
        with self.stderr.open("wb") as sink:
            self.proc = subprocess.Popen(
                [sys.executable, str(APP), str(self.data)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=sink,
                text=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"},
            )
        self.url = self.read_line("URL ")

    def read_line(self, prefix: str) -> str:
        assert self.proc.stdout is not None
        while True:
            line = self.proc.stdout.readline()
            assert line, f"the app exited: {self.stderr.read_text(errors='replace')[-3000:]}"
            if line.startswith(prefix):
                return line[len(prefix) :].strip()

    def bodies_from_both_workers(self) -> dict[str, set[str]]:
        """GET /thing on fresh connections until both workers answered: values by pid."""
        seen: dict[str, set[str]] = {}
        for _ in range(400):
            status, body = get(self.url + "/thing")
            assert status == 200, body
            pid, value = body.split(" ", 1)
            seen.setdefault(pid, set()).add(value)
            if len(seen) == 2:
                return seen
        raise AssertionError(f"400 GETs reached one worker only: {seen}")

    def all_serve(self, value: str) -> None:
        seen = self.bodies_from_both_workers()
        assert all(values == {value} for values in seen.values()), seen

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[TwoWorkers]:
    app = TwoWorkers(tmp_path)
    try:
        yield app
    finally:
        app.close()


def _through_a_worker(action: str) -> Callable[[TwoWorkers], None]:
    def act(app: TwoWorkers) -> None:
        response = httpx.post(f"{app.url}/admin/{action}", headers={"Connection": "close"})
        assert response.status_code == 200, response.text

    return act


def _put(app: TwoWorkers) -> None:
    response = httpx.put(app.url + "/thing", content=b"v2", headers={"Connection": "close"})
    assert response.status_code == 200, response.text


def _clear_in_the_supervisors_process(app: TwoWorkers) -> None:
    assert app.proc.stdin is not None
    app.proc.stdin.write("clear\n")
    app.proc.stdin.flush()
    app.read_line("CLEARED")


@pytest.mark.slow
@pytest.mark.parametrize(
    "act",
    [
        pytest.param(_put, id="PUT-write-invalidation"),
        pytest.param(_through_a_worker("clear"), id="clear"),
        pytest.param(_through_a_worker("clear-sync"), id="clear_cache-in-a-sync-view"),
        pytest.param(_through_a_worker("purge-path"), id="purge-path"),
        pytest.param(_through_a_worker("purge-endpoint"), id="purge-endpoint"),
        pytest.param(_through_a_worker("purge-tag"), id="purge-tag"),
        pytest.param(_clear_in_the_supervisors_process, id="clear_cache-outside-the-workers"),
    ],
)
def test_simplecache_invalidation_reaches_every_worker(
    two_workers: TwoWorkers, act: Callable[[TwoWorkers], None]
) -> None:
    """After a PUT, clear or purge through one worker (or the parent), both workers serve fresh."""
    app = two_workers
    app.all_serve("v0")  # each worker has cached v0
    app.data.write_text("v2")
    app.all_serve("v0")  # changed behind the cache's back: both still answer from it
    act(app)
    app.all_serve("v2")
    app.close()
    assert app.proc.returncode == 0
    logs = app.stderr.read_text(errors="replace")
    assert "reached not every worker" not in logs
    assert "Traceback" not in logs
