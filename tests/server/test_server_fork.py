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
import time
from pathlib import Path

import pytest

from tests.support.server import get, wait_until

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
