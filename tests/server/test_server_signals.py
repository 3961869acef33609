"""Signals the supervisor gets that are not its everyday ones, against real subprocess servers:
SIGUSR2 while a replaced worker is still draining, and SIGUSR1 sent to the supervisor itself
(a worker's "drain now" signal; gunicorn users send it to the main pid to reopen logs)."""

from __future__ import annotations

import contextlib
import os
import signal
import textwrap
import time
from pathlib import Path

import pytest

from tests.support.server import AppProcess, alive, get, get_in_thread, wait_until

pytestmark = [
    pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="POSIX signals and fork"),
    pytest.mark.slow,
]

GRACEFUL_TIMEOUT = 3.0
KILL_MARGIN = 5.0  # aeros.server.reaping.KILL_MARGIN


@pytest.mark.timeout(150)
def test_server_sigusr2_kills_a_draining_worker_at_its_deadline(start_app) -> None:
    """A worker replaced by SIGHUP is draining but stuck (its event loop blocked for 120 s) when
    SIGUSR2 re-executes the server: it is not left behind, it is SIGKILLed once its drain
    deadline (graceful_timeout + the kill margin) has passed, and the server stops cleanly."""
    app = start_app("--workers", "2", "--graceful-timeout", str(GRACEFUL_TIMEOUT))
    url = app.url
    app.worker_pids(2)
    client, _outcome = get_in_thread(f"{url}/block/120.0", timeout=150)
    stuck = int(app.wait_for("BLOCK")[0])
    try:
        app.signal(signal.SIGHUP)
        draining = f"Worker [pid {stuck}] replaced (SIGHUP): draining it"
        wait_until(lambda: draining in app.stderr(), 30, "the stuck worker was never replaced")
        drain_started = time.monotonic()
        app.signal(signal.SIGUSR2)  # well within its deadline: the old image cannot kill it
        app.wait_for("URL", 2, timeout=60)  # the new image serves
        wait_until(lambda: not alive(stuck), 45, "the draining worker outlived its deadline")
        lived = time.monotonic() - drain_started
        assert lived > GRACEFUL_TIMEOUT, lived  # its deadline, not at once
        assert f"Worker [pid {stuck}] did not drain in time; killing it" in app.stderr()
        assert get(f"{url}/pid")[0] == 200
        app.signal(signal.SIGTERM)
        assert app.wait(60) == 0
        workers = {int(pid) for pid in app.values("WORKER")}
        assert not any(map(alive, workers)), "a worker outlived the server"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(stuck, signal.SIGKILL)
        client.join(10)


STUCK_APP = """
import os
import time

from aeros import WebServer

app = WebServer(__name__, port=0, workers=2, graceful_timeout={graceful!r}, access_log=False)


@app.before_serving
async def announce():
    os.write(1, f"WORKER {{os.getpid()}}\\n".encode())


@app.route("/block")
async def block():
    os.write(1, f"BLOCK {{os.getpid()}}\\n".encode())
    time.sleep(120)  # freezes this worker's event loop on purpose
    return "never"


if __name__ == "__main__":
    app.run_server(on_started=lambda url: os.write(1, f"URL {{url}}\\n".encode()))
"""


@pytest.mark.timeout(150)
def test_server_sigusr2_with_broken_new_code_kills_a_stuck_worker(tmp_path: Path) -> None:
    """SIGUSR2 when the new code cannot import, with a worker stuck in a request (its event
    loop blocked for 120 s): the server exits, the old workers are told to drain, and the stuck
    one is SIGKILLed once graceful_timeout + the kill margin have passed."""
    script = tmp_path / "stuck_app.py"
    script.write_text(textwrap.dedent(STUCK_APP.format(graceful=GRACEFUL_TIMEOUT)))
    app = AppProcess(tmp_path, script=script)
    stuck, client = 0, None
    try:
        url = app.url
        workers = app.worker_pids(2)
        client, _outcome = get_in_thread(f"{url}/block", timeout=150)
        stuck = int(app.wait_for("BLOCK")[0])
        script.write_text("raise ImportError('release 42 is broken')\n")
        app.signal(signal.SIGUSR2)
        assert app.wait(60) != 0
        exited = time.monotonic()
        wait_until(lambda: not any(map(alive, workers)), 45, "a worker outlived the server")
        assert time.monotonic() - exited > GRACEFUL_TIMEOUT  # its deadline, not at once
    finally:
        if stuck:
            with contextlib.suppress(ProcessLookupError):
                os.kill(stuck, signal.SIGKILL)
        if client is not None:
            client.join(10)
        app.close()


def _send_sigusr1_and_see_it_ignored(app: AppProcess) -> None:
    """``kill -USR1`` the server's main pid; it logs that it ignores it and keeps running."""
    app.signal(signal.SIGUSR1)
    wait_until(
        lambda: "Ignoring SIGUSR1" in app.stderr() or app.proc.poll() is not None,
        15,
        "no word of SIGUSR1",
    )
    assert app.proc.poll() is None, f"SIGUSR1 ended the server: exit {app.proc.poll()}"


def test_server_supervisor_survives_sigusr1(start_app) -> None:
    """``kill -USR1 <server pid>`` with workers: the supervisor logs that it ignores it and
    serves on with the same workers (the default action ended it, orphaning them)."""
    app = start_app("--workers", "2")
    url = app.url
    workers = app.worker_pids(2)
    _send_sigusr1_and_see_it_ignored(app)
    assert get(f"{url}/pid")[0] == 200
    assert all(map(alive, workers))
    assert len(app.values("WORKER")) == 2  # none replaced
    app.signal(signal.SIGTERM)
    assert app.wait(30) == 0


def _parent(pid: int) -> int:
    """The parent of process ``pid`` (Linux: ``/proc``)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def test_server_fork_helper_survives_sigusr1(start_app) -> None:
    """SIGUSR1 reaching the fork helper (a group-wide ``kill -USR1``) leaves it, and so the
    server, running: its default action ended the helper, and with it the server."""
    app = start_app("--workers", "2")
    url = app.url
    workers = app.worker_pids(2)
    helper = _parent(next(iter(workers)))
    assert helper != app.proc.pid  # the workers' parent is the helper, not the supervisor
    os.kill(helper, signal.SIGUSR1)
    time.sleep(1.0)
    assert alive(helper), "SIGUSR1 ended the fork helper"
    assert app.proc.poll() is None
    assert get(f"{url}/pid")[0] == 200
    assert all(map(alive, workers))
    app.signal(signal.SIGTERM)
    assert app.wait(30) == 0


def test_server_one_process_ignores_sigusr1(start_app) -> None:
    """workers=1 (the default; the main pid is the server): SIGUSR1 (a logrotate's "reopen
    logs") is logged and ignored like with workers, not a stop; SIGTERM still drains it."""
    app = start_app()
    url = app.url
    pid = get(f"{url}/pid")[1]
    _send_sigusr1_and_see_it_ignored(app)
    assert get(f"{url}/pid") == (200, pid)
    app.signal(signal.SIGTERM)
    assert app.wait(30) == 0
    assert app.wait_for("EXITED") == ["signal handlers restored"]
