"""Re-executing the server in place (SIGUSR2) without dropping a connection: the socket and the
old workers cross the ``exec``.

On SIGUSR2 the supervisor stops supervising but leaves its workers serving, tells their fork
helper to outlive it (:meth:`~aeros.server.forkserver.ForkServer.hand_over`), and :func:`reexec`
replaces the process image with the same command line: same pid (so systemd, Docker's PID 1 and
any pid file keep tracking it), the listening socket passed as descriptor 3 with systemd's
``LISTEN_FDS`` / ``LISTEN_PID`` variables, and the old workers' pids in ``AEROS_HANDOVER``. The
new image imports the code as it is now on disk, binds nothing (:func:`inherited_socket`),
starts its own workers and, once they all accept, sends the old ones SIGTERM
(:meth:`Handover.retire`): they finish their requests in flight and exit. Connections keep
arriving on the one listening socket throughout, so none is refused.

The same ``LISTEN_FDS`` protocol makes systemd socket activation work too: a ``.socket`` unit
hands aeros its listening socket as descriptor 3.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
from dataclasses import dataclass

__all__ = ["HANDOVER_ENV", "Handover", "inherited_socket", "reexec", "start_directory"]

logger = logging.getLogger("aeros.server")

HANDOVER_ENV = "AEROS_HANDOVER"
"""``<helper pid>:<worker pid>,<worker pid>...``: the previous image's workers, to retire."""
_LISTEN_FDS_START = 3  # systemd's SD_LISTEN_FDS_START


def _start_directory() -> str:
    # $PWD keeps the path the way it was typed (a "current" symlink to the release); getcwd()
    # has it resolved to the release of the day. gunicorn re-executes from $PWD the same way.
    cwd = os.getcwd()
    pwd = os.environ.get("PWD")
    with contextlib.suppress(OSError):
        if pwd and os.path.samefile(pwd, cwd):
            return pwd
    return cwd


START_DIRECTORY = _start_directory()


def start_directory() -> str:
    """The working directory the server started in, as typed (symlinks not resolved)."""
    return START_DIRECTORY


def inherited_socket() -> socket.socket | None:
    """The listening socket passed by systemd's protocol (``LISTEN_PID`` is this process,
    ``LISTEN_FDS`` >= 1: descriptor 3), or None; the variables are removed once read, as
    ``sd_listen_fds(1)`` does, so the app's own child processes do not take it for theirs."""
    pid = os.environ.get("LISTEN_PID")
    count = os.environ.get("LISTEN_FDS")
    if pid is None or count is None or pid != str(os.getpid()):
        return None
    for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(name, None)
    if not count.isdigit() or int(count) < 1:
        return None
    try:
        sock = socket.socket(fileno=_LISTEN_FDS_START)
    except OSError as exc:
        raise OSError(
            f"LISTEN_FDS={count} and LISTEN_PID={pid} (this process) promise a listening "
            f"socket as descriptor {_LISTEN_FDS_START}, but it is not one: {exc}"
        ) from exc
    os.set_inheritable(sock.fileno(), False)
    if int(count) > 1:
        logger.warning("LISTEN_FDS=%s: serving the first socket only (descriptor 3)", count)
    return sock


@dataclass(frozen=True, slots=True)
class Handover:
    """The previous image's fork helper and workers, still serving until :meth:`retire`."""

    helper_pid: int
    worker_pids: tuple[int, ...]

    def to_env(self) -> str:
        """The value of :data:`HANDOVER_ENV` describing this handover."""
        return f"{self.helper_pid}:{','.join(map(str, self.worker_pids))}"

    @classmethod
    def from_env(cls) -> Handover | None:
        """The handover the previous image left in the environment (removed once read)."""
        value = os.environ.pop(HANDOVER_ENV, None)
        if not value:
            return None
        helper, _, workers = value.partition(":")
        try:
            return cls(int(helper), tuple(int(pid) for pid in workers.split(",") if pid))
        except ValueError:
            logger.warning("ignoring %s=%r: not <pid>:<pid>,<pid>", HANDOVER_ENV, value)
            return None

    def retire(self) -> None:
        """Tell the previous image's workers to drain (they finish their requests in flight)."""
        logger.info(
            "New workers are serving: draining the %d worker(s) of the previous code [pids %s]",
            len(self.worker_pids),
            ", ".join(map(str, self.worker_pids)),
        )
        for pid in self.worker_pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL the previous image's workers that are still there (they missed their drain
        deadline)."""
        for pid in self.worker_pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def reap(self) -> bool:
        """Whether the previous fork helper exited (it does once its workers are gone); it is
        this process's child (the pid crossed the exec), so it is waited for here."""
        try:
            pid, _status = os.waitpid(self.helper_pid, os.WNOHANG)
        except ChildProcessError:
            return True
        return pid != 0


def reexec(sock: socket.socket, handover: Handover | None) -> None:
    """Replace this process with a fresh run of its own command line; never returns.

    ``sock`` becomes descriptor 3 (``LISTEN_FDS=1``, ``LISTEN_PID`` this pid: exec keeps it),
    ``handover`` goes into :data:`HANDOVER_ENV`, and the working directory is the one the
    server started in, re-resolved (see :func:`start_directory`).

    Raises:
        OSError: the exec failed (the interpreter is gone); the caller then exits.
    """
    env = dict(os.environ)
    env["LISTEN_FDS"] = "1"
    env["LISTEN_PID"] = str(os.getpid())
    env.pop("LISTEN_FDNAMES", None)
    if handover is not None:
        env[HANDOVER_ENV] = handover.to_env()
    if sock.fileno() != _LISTEN_FDS_START:
        os.dup2(sock.fileno(), _LISTEN_FDS_START)  # inheritable by default
    else:
        os.set_inheritable(_LISTEN_FDS_START, True)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    with contextlib.suppress(OSError):
        os.chdir(START_DIRECTORY)
    argv = [sys.executable, *sys.orig_argv[1:]]
    os.execve(sys.executable, argv, env)  # noqa: S606 (this process's own command line)
