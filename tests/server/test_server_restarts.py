"""Restarts without failed requests, under load from wrk against real subprocess servers:
worker recycling (max_requests), SIGHUP rolling restarts, SIGUSR2 re-exec with new code."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import textwrap
import threading
import time
from pathlib import Path

import pytest

from tests.support.net import require
from tests.support.server import alive, get, wait_until

pytestmark = [
    pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="POSIX signals and fork"),
    pytest.mark.slow,
]

LOAD_SECONDS = 5


class Load:
    """``wrk -t1 -c16`` against ``url`` for a bounded time, in a thread; its summary after."""

    def __init__(self, url: str, seconds: int = LOAD_SECONDS) -> None:
        wrk = shutil.which("wrk")
        require(wrk is not None, "wrk is not installed")
        assert wrk is not None
        self.command = [wrk, "-t1", "-c16", f"-d{seconds}s", "--timeout", "10s", url]
        self.output = ""
        self._thread = threading.Thread(target=self._run)
        self._thread.start()

    def _run(self) -> None:
        done = subprocess.run(self.command, capture_output=True, text=True, timeout=60, check=False)
        self.output = done.stdout + done.stderr

    def result(self) -> tuple[int, str]:
        """(requests served, the error lines: empty when no request failed)."""
        self._thread.join(90)
        served = re.search(r"(\d+) requests in", self.output)
        assert served is not None, self.output
        errors = [
            line.strip()
            for line in self.output.splitlines()
            if "Socket errors" in line or "Non-2xx or 3xx responses" in line
        ]
        return int(served.group(1)), "\n".join(errors)


def _pids_answering(url: str, count: int = 20) -> set[str]:
    return {get(f"{url}/pid")[1] for _ in range(count)}


def test_server_max_requests_recycles_workers_without_failed_requests(start_app) -> None:
    """workers=2, max_requests=300 (+ jitter): under wrk every worker is replaced, each after
    its replacement accepts, and not one request fails."""
    app = start_app("--workers", "2", "--max-requests", "300", "--max-requests-jitter", "30")
    url = app.url
    first = app.worker_pids(2)
    for _round in range(3):  # bounded: a slow machine serves fewer requests per round
        load = Load(f"{url}/pid", seconds=4)
        served, errors = load.result()
        assert errors == "", f"{errors}\n{load.output}"
        assert served > 0, load.output
        started = {int(pid) for pid in app.values("WORKER")}
        if len(started - first) >= 2 and not any(map(alive, first)):
            break
    assert len(started - first) >= 2, app.stderr()[-3000:]
    logs = app.stderr()
    assert "requests (max_requests): asking for a replacement" in logs
    assert "(max_requests): draining it" in logs
    wait_until(lambda: not any(map(alive, first)), 15, "the recycled workers never exited")
    # 2 workers serve now, none of the first ones
    assert not _pids_answering(url) & {str(pid) for pid in first}
    app.signal(signal.SIGTERM)
    assert app.wait(20) == 0


def test_server_sighup_replaces_workers_one_by_one_without_failed_requests(start_app) -> None:
    """SIGHUP under wrk: each worker's replacement starts and accepts before that worker
    drains, one worker at a time; no request fails; the old pids are gone after."""
    app = start_app("--workers", "2")
    url = app.url
    first = app.worker_pids(2)
    load = Load(f"{url}/pid")
    time.sleep(1.0)
    app.signal(signal.SIGHUP)
    app.wait_for("WORKER", 4, timeout=30)
    served, errors = load.result()
    assert errors == "", f"{errors}\n{load.output}"
    assert served > 0
    logs = app.stderr()
    assert "Received SIGHUP: replacing 2 worker(s) one by one" in logs
    # one by one: the second replacement starts only after the first old worker drains
    events = re.findall(r"Started worker (\d+)|replaced \(SIGHUP\): draining it", logs)
    # "" is a drain: start, drain, start, drain (the initial two starts first)
    assert [bool(slot) for slot in events] == [True, True, True, False, True, False], events
    wait_until(lambda: not any(map(alive, first)), 15, "the old workers never exited")
    assert not _pids_answering(url) & {str(pid) for pid in first}
    app.signal(signal.SIGTERM)
    assert app.wait(20) == 0


DEPLOY_APP = """
import os

from aeros import WebServer

VERSION = {version!r}

app = WebServer(__name__, port=0, workers=2, access_log=False)


def say(line):
    os.write(1, (line + "\\n").encode())


@app.before_serving
async def announce():
    say(f"WORKER {{os.getpid()}} {{VERSION}}")


@app.route("/version")
async def version():
    return VERSION


if __name__ == "__main__":
    app.run_server(on_started=lambda url: say(f"URL {{url}} {{os.getpid()}}"))
    say("EXITED " + VERSION)
"""


def test_server_sigusr2_reexecs_new_code_without_failed_requests(tmp_path: Path, start_app):
    """New code on disk, then SIGUSR2 under wrk: the same process (same pid, same socket)
    runs the new code, the old workers drain after the new ones accept, no request fails."""
    script = tmp_path / "deploy_app.py"
    script.write_text(textwrap.dedent(DEPLOY_APP.format(version="v1")))
    app = start_app(script=script)
    url, master = app.wait_for("URL")[0].split()
    assert int(master) == app.proc.pid
    old = {int(line.split()[0]) for line in app.wait_for("WORKER", 2)}
    assert get(f"{url}/version")[1] == "v1"
    script.write_text(textwrap.dedent(DEPLOY_APP.format(version="v2-deployed")))
    load = Load(f"{url}/version")
    time.sleep(1.0)
    app.signal(signal.SIGUSR2)
    urls = app.wait_for("URL", 2, timeout=30)
    served, errors = load.result()
    assert errors == "", f"{errors}\n{load.output}\n{app.stderr()[-3000:]}"
    assert served > 0
    assert urls[1] == f"{url} {app.proc.pid}"  # same process, same address
    new = [line.split() for line in app.values("WORKER")[2:]]
    assert [version for _pid, version in new] == ["v2-deployed", "v2-deployed"]
    wait_until(lambda: not any(map(alive, old)), 15, "the old workers never exited")
    assert {get(f"{url}/version")[1] for _ in range(10)} == {"v2-deployed"}
    assert "draining the 2 worker(s) of the previous code" in app.stderr()
    assert not app.values("EXITED")  # run_server() never returned into the old code
    # the re-executed server (socket inherited as descriptor 3) deploys the next release too
    script.write_text(textwrap.dedent(DEPLOY_APP.format(version="v3")))
    app.signal(signal.SIGUSR2)
    assert app.wait_for("URL", 3, timeout=30)[2] == f"{url} {app.proc.pid}"
    wait_until(lambda: get(f"{url}/version")[1] == "v3", 15, "v3 never answered")
    app.signal(signal.SIGTERM)
    assert app.wait(20) == 0
    assert app.wait_for("EXITED") == ["v3"]


def test_server_one_process_ignores_restart_signals(start_app) -> None:
    """workers=1: SIGHUP and SIGUSR2 are refused with a warning; the server serves on (their
    default action would have ended it)."""
    app = start_app()
    url = app.url
    for sig in (signal.SIGHUP, signal.SIGUSR2):
        app.signal(sig)
        name = signal.Signals(sig).name
        wait_until(lambda name=name: f"Ignoring {name}" in app.stderr(), 10, f"{name} unseen")
    assert get(f"{url}/pid")[0] == 200
    assert app.proc.poll() is None
    app.signal(signal.SIGTERM)
    assert app.wait(20) == 0


def test_server_sigusr2_with_broken_new_code_drains_the_old_workers(tmp_path: Path, start_app):
    """SIGUSR2 when the new code cannot even import: the process exits non-zero and the old
    workers, left serving across the exec, are told to drain and exit (no orphans)."""
    script = tmp_path / "deploy_app.py"
    script.write_text(textwrap.dedent(DEPLOY_APP.format(version="v1")))
    app = start_app(script=script)
    url = app.wait_for("URL")[0].split()[0]
    old = {int(line.split()[0]) for line in app.wait_for("WORKER", 2)}
    assert get(f"{url}/version")[1] == "v1"
    script.write_text("raise ImportError('release 42 is broken')\n")
    app.signal(signal.SIGUSR2)
    assert app.wait(20) != 0
    assert "release 42 is broken" in app.stderr()
    wait_until(lambda: not any(map(alive, old)), 20, "the old workers were left running")


LAUNCHER = """
import os
import socket
import sys

# what systemd does for a .socket unit: bind, pass the socket as descriptor 3 with
# LISTEN_FDS=1 and LISTEN_PID=<the server's pid>, then run the server (exec keeps the pid)
sock = socket.socket()
sock.bind(("127.0.0.1", 0))
sock.listen(128)
os.write(1, f"BOUND {{sock.getsockname()[1]}}\\n".encode())
os.dup2(sock.fileno(), 3)  # a no-op when the socket is descriptor 3 already
os.set_inheritable(3, True)
os.environ["LISTEN_FDS"] = "1"
os.environ["LISTEN_PID"] = str(os.getpid())
os.execv(sys.executable, [sys.executable, {app!r}, *sys.argv[1:]])
"""


@pytest.mark.parametrize("workers", [pytest.param("1", id="1-process"), pytest.param("2", id="2")])
def test_server_serves_a_socket_passed_by_listen_fds(tmp_path: Path, start_app, workers) -> None:
    """Socket activation (systemd's LISTEN_FDS / LISTEN_PID): the server binds nothing and
    serves descriptor 3, the socket its launcher bound."""
    from tests.support.server import APP

    launcher = tmp_path / "launcher.py"
    launcher.write_text(textwrap.dedent(LAUNCHER.format(app=str(APP))))
    app = start_app("--workers", workers, script=launcher)
    port = app.wait_for("BOUND")[0]
    assert app.url == f"http://127.0.0.1:{port}"
    assert get(f"{app.url}/pid")[0] == 200
    assert "Serving the inherited listening socket (LISTEN_FDS)" in app.stderr()
    app.signal(signal.SIGTERM)
    assert app.wait(20) == 0


RELEASE_APP = """
import os

from aeros import WebServer

VERSION = {version!r}
app = WebServer(__name__, access_log=False)


@app.before_serving
async def announce():
    os.write(1, f"WORKER {{os.getpid()}} {{VERSION}}\\n".encode())


@app.route("/version")
async def version():
    return VERSION
"""

RELEASE_LAUNCHER = """
import os
import socket
import sys

# the operator's shell: `cd /srv/app/current && aeros run ...` ($PWD names the symlink), with
# the socket passed as systemd would (so the test knows the port without a race)
sock = socket.socket()
sock.bind(("127.0.0.1", 0))
sock.listen(128)
os.write(1, f"BOUND {{sock.getsockname()[1]}}\\n".encode())
os.dup2(sock.fileno(), 3)
os.set_inheritable(3, True)
os.chdir({current!r})
os.environ["PWD"] = {current!r}
os.environ["LISTEN_FDS"] = "1"
os.environ["LISTEN_PID"] = str(os.getpid())
command = ["-m", "aeros", "run", "release_app:app", "--workers", "2", "--no-access-log"]
os.execv(sys.executable, [sys.executable, *command])
"""


def test_server_sigusr2_follows_a_switched_release_symlink(tmp_path: Path, start_app) -> None:
    """The README's deploy recipe with `aeros run`: started in /srv/app/current (a symlink to
    release 1), switch the symlink to release 2 and send SIGUSR2: release 2 answers."""
    for number, version in ((1, "release-one"), (2, "release-two")):
        release = tmp_path / "releases" / str(number)
        release.mkdir(parents=True)
        (release / "release_app.py").write_text(
            textwrap.dedent(RELEASE_APP.format(version=version))
        )
    current = tmp_path / "current"
    current.symlink_to(tmp_path / "releases" / "1")
    launcher = tmp_path / "launcher.py"
    launcher.write_text(textwrap.dedent(RELEASE_LAUNCHER.format(current=str(current))))
    app = start_app(script=launcher)
    url = f"http://127.0.0.1:{app.wait_for('BOUND')[0]}"
    assert {line.split()[1] for line in app.wait_for("WORKER", 2)} == {"release-one"}
    assert get(f"{url}/version")[1] == "release-one"
    switch = tmp_path / "current.new"
    switch.symlink_to(tmp_path / "releases" / "2")
    switch.replace(current)  # atomic, as `mv -T` does
    app.signal(signal.SIGUSR2)
    new = app.wait_for("WORKER", 4, timeout=30)[2:]
    assert {line.split()[1] for line in new} == {"release-two"}
    wait_until(lambda: get(f"{url}/version")[1] == "release-two", 15, "release 2 silent")
    app.signal(signal.SIGTERM)
    assert app.wait(20) == 0


def test_server_recycling_outlives_replacements_that_fail_to_start(
    tmp_path: Path, start_app
) -> None:
    """Replacements that fail at start (a dependency briefly down) while workers recycle: the
    workers they would replace serve on and the replacement is tried again; the server never
    stops (five failures in a row stopped the whole, healthy server), and recycling goes on
    once starts succeed."""
    down = tmp_path / "database-down"
    app = start_app("--workers", "2", "--max-requests", "20", "--fail-start-file", str(down))
    url = app.url
    first = app.worker_pids(2)
    down.touch()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and app.stderr().count("start failure(s) in a row") < 6:
        assert get(f"{url}/pid")[0] == 200  # every request is still served
    assert app.stderr().count("start failure(s) in a row") >= 6, app.stderr()[-3000:]
    assert app.proc.poll() is None  # still running
    down.unlink()
    for _ in range(200):  # bounded: recycling resumes, the old workers are replaced
        assert get(f"{url}/pid")[0] == 200
        if not any(map(alive, first)):
            break
        time.sleep(0.02)
    wait_until(lambda: not any(map(alive, first)), 15, "the old workers were never replaced")
    app.signal(signal.SIGTERM)
    assert app.wait(20) == 0


def test_server_sighup_replaces_workers_without_their_shutdown_delay(start_app) -> None:
    """With ``shutdown_delay`` (for a balancer to see the health endpoint say draining before
    the server stops accepting), a worker replaced by SIGHUP drains at once: the server stays
    up, so its health never says 503, no request fails, and the old workers are gone well
    before the delay (they served it out, then were killed mid-drain at graceful_timeout + 5 s,
    and their health answered 503 meanwhile)."""
    app = start_app(
        "--workers",
        "2",
        "--shutdown-delay",
        "30",
        "--graceful-timeout",
        "2",
        "--health-path",
        "/healthz",
    )
    url = app.url
    first = app.worker_pids(2)
    load = Load(f"{url}/pid", seconds=4)
    time.sleep(0.5)
    started = time.monotonic()
    app.signal(signal.SIGHUP)
    health: list[int] = []
    while time.monotonic() - started < 3.5:
        health.append(get(f"{url}/healthz")[0])
        time.sleep(0.02)
    served, errors = load.result()
    assert errors == "", f"{errors}\n{load.output}"
    assert served > 0
    assert set(health) == {200}, health
    wait_until(lambda: not any(map(alive, first)), 10, "the old workers never exited")
    assert time.monotonic() - started < 15  # not the 30 s shutdown_delay
    assert "killing it" not in app.stderr()
    app.signal(signal.SIGTERM)
    assert app.wait(60) == 0
