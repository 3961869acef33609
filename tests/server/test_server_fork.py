"""Workers are forked from a single-threaded process: nothing for Python 3.12+ to warn about.

CPython 3.12+ warns (DeprecationWarning) when ``os.fork()`` runs while the process has more
than one OS thread. Under ``-W error`` that warning is raised and then discarded inside
``os.fork()`` itself, so the app also reports the thread count before every fork (the number
CPython checks), and the fork warning alone is let through to stderr to be seen.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.support.server import APP as SERVER_APP
from tests.support.server import AppProcess, get, wait_until

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="workers need fork")

APP = Path(__file__).parents[1] / "apps" / "fork_app.py"
SPAWN_AND_STOP = Path(__file__).parents[1] / "apps" / "spawn_and_stop.py"
WARNINGS = ("-W", "error::DeprecationWarning", "-W", "always:This process:DeprecationWarning")


def _start(mode: str, tmp_path: Path) -> tuple[subprocess.Popen[str], Path]:
    stderr = tmp_path / "stderr"
    with stderr.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, *WARNINGS, str(APP), mode],
            stdout=subprocess.PIPE,
            stderr=sink,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"},
        )
    return proc, stderr


def _check_forks(stdout: str, stderr: str, minimum: int) -> None:
    forks = [line.split() for line in stdout.splitlines() if line.startswith("FORK ")]
    assert [threads for _fork, _pid, threads in forks] == ["1"] * len(forks), stdout
    assert len(forks) >= minimum, (stdout, stderr[-3000:])
    assert "multi-threaded" not in stderr
    assert "DeprecationWarning" not in stderr


@pytest.mark.parametrize("mode", ["serve_in_thread", "AdvancedThread", "Thread"])
def test_workers_fork_single_threaded_when_served_from_a_thread(tmp_path: Path, mode: str) -> None:
    """workers=2 started in a thread: the helper and both workers fork with one thread."""
    proc, stderr_path = _start(mode, tmp_path)
    stdout, _ = proc.communicate(timeout=45)
    stderr = stderr_path.read_text(errors="replace")
    assert proc.returncode == 0, stderr[-3000:]
    assert any(line.startswith("GOT 200 ") for line in stdout.splitlines()), stdout
    _check_forks(stdout, stderr, minimum=3)  # the helper, then two workers
    assert stdout.rstrip().endswith("EXITED")


def test_workers_fork_single_threaded_from_the_main_thread_and_on_respawn(tmp_path: Path) -> None:
    """workers=2 from the main thread, then a killed worker's replacement: one thread each time."""
    proc, stderr_path = _start("main", tmp_path)
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 30
        while not any(line.startswith("URL ") for line in lines):
            assert time.monotonic() < deadline, lines
            line = proc.stdout.readline()
            assert line, (lines, stderr_path.read_text(errors="replace")[-3000:])
            lines.append(line.rstrip("\n"))
        url = next(line[4:] for line in lines if line.startswith("URL "))
        status, victim = get(url + "/pid")
        assert status == 200
        os.kill(int(victim), signal.SIGKILL)
        seen: set[str] = set()

        def replaced() -> bool:
            with_new = {get(url + "/pid")[1] for _ in range(4)}
            seen.update(with_new)
            return len(seen - {victim}) >= 2  # the survivor and the replacement both answer

        wait_until(replaced, timeout=20, message="the killed worker was not replaced")
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    stdout = "\n".join(lines) + "\n" + rest
    stderr = stderr_path.read_text(errors="replace")
    assert proc.returncode == 0, stderr[-3000:]
    assert "starting a replacement" in stderr
    _check_forks(stdout, stderr, minimum=4)  # the helper, two workers, one replacement


def test_fork_warning_is_not_hidden_when_the_callers_thread_forks(tmp_path: Path) -> None:
    """A plain thread without prepare_workers(): Python's warning shows; workers still serve."""
    proc, stderr_path = _start("Thread-unprepared", tmp_path)
    stdout, _ = proc.communicate(timeout=45)
    stderr = stderr_path.read_text(errors="replace")
    assert proc.returncode == 0, stderr[-3000:]
    assert any(line.startswith("GOT 200 ") for line in stdout.splitlines()), stdout
    forks = [line.split()[2] for line in stdout.splitlines() if line.startswith("FORK ")]
    assert forks[0] == "2"  # the helper: forked from the caller's thread, beside the main one
    assert forks[1:] == ["1", "1"]  # the workers: from the single-threaded helper
    warned = "multi-threaded, use of fork()" in stderr
    assert warned == (sys.version_info >= (3, 12))  # the warning is new in Python 3.12


def test_a_worker_signalled_as_soon_as_it_is_forked_stops() -> None:
    """SIGTERM sent the moment ``spawn()`` gives the pid (a stop right after a replacement
    started) ends the worker at once: the helper ignores it, and a child that inherited that
    for its first instructions lost it (the supervisor then waited out the drain and killed)."""
    proc = subprocess.run(
        [sys.executable, *WARNINGS, str(SPAWN_AND_STOP), "10"],
        capture_output=True,
        text=True,
        timeout=45,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = [line.split() for line in proc.stdout.splitlines() if line.startswith("STOPPED ")]
    assert len(results) == 10, proc.stdout
    # each worker ended by the SIGTERM itself (exit code -15), well before its 10 s were up
    slow = [(code, took) for _word, code, took in results if code != "-15" or float(took) > 1.5]
    assert slow == [], proc.stdout


# Makes the fork helper's fork number N (1 and 2: the first workers) fail once with EAGAIN, as
# under RLIMIT_NPROC, a pids cgroup or memory pressure; then runs the script given after N.
FAILING_FORK = textwrap.dedent(
    """
    import errno, os, runpy, sys

    MAIN = os.getpid()
    FAILING = int(sys.argv.pop(1))
    real_fork = os.fork
    forks = 0

    def fork():
        global forks
        if os.getpid() != MAIN:  # in the fork helper
            forks += 1
            if forks == FAILING:
                raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable (test)")
        return real_fork()

    os.fork = fork
    sys.argv.pop(0)
    runpy.run_path(sys.argv[0], run_name="__main__")
    """
)

SPAWN_TWICE = textwrap.dedent(
    """
    import os, socket, time

    from aeros.server.forkserver import ForkServer

    helper = ForkServer(1, lambda start: 0)
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        for _ in range(2):
            mine, theirs = socket.socketpair()
            pid = helper.spawn(0, None, listener, theirs)
            theirs.close()
            reports, deadline = [], time.monotonic() + 10
            while not reports and time.monotonic() < deadline:
                reports = helper.exits(block=0.2) or []
            mine.close()
            codes = [os.waitstatus_to_exitcode(status) for got, status in reports if got == pid]
            try:
                os.kill(pid, 0)
                state = "exists"
            except ProcessLookupError:
                state = "none"
            print("SPAWNED", codes, state, flush=True)
        os.kill(helper.pid, 0)  # the helper is still there
        print("HELPER alive", flush=True)
    finally:
        listener.close()
        helper.close()
    """
)


def test_a_failed_fork_is_reported_as_a_worker_that_failed_to_start(tmp_path: Path) -> None:
    """fork() failing in the helper (EAGAIN) ends neither the helper nor spawn(): the pid it
    returns stands for no process and exits at once with EX_OSERR; the next spawn works."""
    wrapper, script = tmp_path / "failing_fork.py", tmp_path / "spawn_twice.py"
    wrapper.write_text(FAILING_FORK)
    script.write_text(SPAWN_TWICE)
    proc = subprocess.run(
        [sys.executable, *WARNINGS, str(wrapper), "1", str(script)],
        capture_output=True,
        text=True,
        timeout=45,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.splitlines() == ["SPAWNED [71] none", "SPAWNED [0] none", "HELPER alive"]
    assert "Could not fork worker 0" in proc.stderr
    assert "Resource temporarily unavailable (test)" in proc.stderr


def test_a_failed_respawn_fork_is_retried_and_the_server_serves_on(tmp_path: Path) -> None:
    """A worker dies and the fork of its replacement fails once: the server does not exit
    (status 3 before), the replacement is retried as a start failure and serves."""
    wrapper = tmp_path / "failing_fork.py"
    wrapper.write_text(FAILING_FORK)
    app = AppProcess(
        tmp_path, "3", str(SERVER_APP), "--workers", "2", "--graceful-timeout", "2", script=wrapper
    )
    try:
        first = app.worker_pids(2)
        url = app.url
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        replacement = {int(pid) for pid in app.wait_for("WORKER", 3)} - first
        assert len(replacement) == 1
        assert app.proc.poll() is None, app.stderr()[-3000:]
        serving: set[int] = set()

        def both_serve() -> bool:
            serving.add(int(get(url + "/pid")[1]))
            return serving >= (first - {victim}) | replacement

        wait_until(both_serve, 20, "the replacement never answered")
        app.signal(signal.SIGTERM)
        assert app.wait(30) == 0, app.stderr()[-3000:]
    finally:
        app.close()
    stderr = app.stderr()
    assert "Could not fork worker" in stderr
    assert "exited before it started serving (exit status 71)" in stderr
    assert "the helper process that forks the workers exited" not in stderr
