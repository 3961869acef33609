"""A single-threaded helper process that forks the workers (multiprocessing's forkserver idea).

Python 3.12+ warns when ``os.fork()`` runs in a process with more than one OS thread (it reads
the thread count of ``/proc/self/stat``), because a lock held by another thread at that moment
stays locked forever in the child. The supervisor's process has threads (aeros' log listener,
and the caller's thread when ``run_server()`` runs in one), so it never forks a worker itself.
It forks this helper first, while the process still has one thread; the helper keeps that
state (the app as it was, nothing running) and forks every worker, the first ones and each
replacement, from a process that has only one thread.

The helper is driven over a private socket pair: the supervisor asks for a worker for a slot,
passing the listening socket and the worker's channel as file descriptors; the helper answers
with the pid and later reports that pid's exit status (the workers are its children, so only it
can ``waitpid`` them). It exits when the supervisor closes the pair or goes away.

A fork that fails in the helper (EAGAIN under ``RLIMIT_NPROC`` or a pids cgroup, ENOMEM) ends
neither the helper nor the server: :meth:`ForkServer.spawn` logs it and reports a worker that
exited at once with :data:`FORK_FAILED_STATUS`, so the supervisor counts a start failure and
tries again later, as for a worker that died before it served.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import socket
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from multiprocessing.sharedctypes import RawArray
from typing import Any, NoReturn

from aeros.server.frames import recv_frame, send_frame

__all__ = ["FORK_FAILED_STATUS", "ForkServer", "WorkerStart"]

logger = logging.getLogger("aeros.server")

FORK_FAILED_STATUS = getattr(os, "EX_OSERR", 71)
"""Exit status reported for a worker the helper could not fork (sysexits' "can't fork")."""
_NO_PROCESS = 0x7FFF0000
"""First stand-in pid of a failed fork: above every pid a kernel hands out (Linux's ``pid_max``
is at most 2**22, macOS' and the BSDs' 99999), so a signal sent to one finds no process."""

_REAP_INTERVAL = 0.5
"""Seconds between checks that the supervisor still exists (besides EOF on the pair)."""
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
"""The stop signals: the helper ignores them (the supervisor stops the workers); a worker is
forked with them blocked and at their default action (:func:`_fork_stoppable`)."""


@dataclass(slots=True)
class WorkerStart:
    """What a freshly forked worker gets: its slot, the run's settings and its sockets."""

    slot: int
    settings: Any
    """The supervisor's per-run settings (a ServerConfig), sent with every spawn request."""
    sock: socket.socket
    """The listening socket."""
    channel: socket.socket
    """This worker's end of its message channel with the supervisor (:mod:`.peers`)."""
    beats: Any
    ready: Any
    retiring: Any
    """Shared flags, one per slot: a worker sets its own when it served its ``max_requests``."""
    helper_pid: int
    """The helper's pid: the worker's parent; a different parent means the helper is gone."""


class ForkServer:
    """Fork the helper now; :meth:`spawn` then asks it for workers.

    Create it while the process has no threads but the calling one: in ``run_server()`` before
    the log listener starts, or in ``AdvancedThread.start()`` / ``serve_in_thread()`` before the
    server's thread exists. Every worker runs ``target(start)`` in the helper's copy of the
    process as it was at this moment, and exits with the status it returns.

    Args:
        slots: how many workers run at once (sizes the shared heartbeat arrays).
        target: the worker's body; gets a :class:`WorkerStart`, returns an exit status.
    """

    def __init__(self, slots: int, target: Callable[[WorkerStart], int]) -> None:
        self.slots = slots
        self.beats: Any = RawArray("d", slots)
        self.ready: Any = RawArray("b", slots)
        self.retiring: Any = RawArray("b", slots)
        self._target = target
        self._inbox: list[tuple[str, int, int]] = []
        self._closed = False
        self._children: set[int] = set()  # the helper's own bookkeeping (its workers)
        self._handing_over = False
        self._kill_at: dict[int, float] = {}  # after a handover: when to SIGKILL a worker
        self._orphan_drain: float | None = None  # its bound should the supervisor die
        self._failed_forks = 0
        self._wake: tuple[int, int] = (-1, -1)  # the helper's signal wake-up pipe
        mine, helpers = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()  # or buffered output would be written twice
        pid = os.fork()
        if pid == 0:
            mine.close()
            self._helper_main(helpers)
        helpers.close()
        self.pid = pid
        self._sock = mine

    # ---- supervisor side ----------------------------------------------------------------

    def fileno(self) -> int:
        """The pair's descriptor: readable when the helper reported an exit (for selectors)."""
        return self._sock.fileno()

    def spawn(self, slot: int, settings: Any, sock: socket.socket, channel: socket.socket) -> int:
        """Fork a worker for ``slot``; returns its pid.

        When the helper's ``fork()`` fails (EAGAIN, ENOMEM) the failure is logged and the pid
        returned stands for no process (signals sent to it find none); :meth:`exits` reports it
        at once as exited with :data:`FORK_FAILED_STATUS`, a worker that failed to start.

        Raises:
            OSError: the helper is gone.
        """
        send_frame(self._sock, ("spawn", slot, settings), (sock.fileno(), channel.fileno()))
        while True:
            frame = recv_frame(self._sock)
            if frame is None:
                raise OSError("the worker fork helper exited")
            message = frame[0]
            if message[0] == "pid":
                return int(message[2])
            if message[0] == "failed":
                return self._failed_fork(slot, str(message[2]))
            self._inbox.append(message)

    def _failed_fork(self, slot: int, error: str) -> int:
        self._failed_forks += 1
        pid = _NO_PROCESS + self._failed_forks % 0xFFFF
        logger.error(
            "Could not fork worker %d (%s): it counts as a worker that failed to start (pid %d "
            "stands for it, exit status %d) and is tried again later",
            slot,
            error,
            pid,
            FORK_FAILED_STATUS,
        )
        self._inbox.append(("exit", pid, FORK_FAILED_STATUS << 8))  # a wait status
        return pid

    def exits(self, block: float = 0.0) -> list[tuple[int, int]] | None:
        """``(pid, wait status)`` of the workers that exited since the last call.

        Waits up to ``block`` seconds for the first report. None once the helper is gone.
        """
        reports = [(pid, status) for _kind, pid, status in self._inbox]
        self._inbox.clear()
        deadline = time.monotonic() + block
        while True:
            readable, _, _ = select.select(
                [self._sock], [], [], 0 if reports else max(0.0, deadline - time.monotonic())
            )
            if not readable:
                return reports
            frame = recv_frame(self._sock)
            if frame is None:
                return reports or None
            kind, pid, status = frame[0]
            if kind == "exit":
                reports.append((int(pid), int(status)))

    def close(self) -> None:
        """Let the helper exit (its workers should be gone by now) and reap it; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._sock.close()
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)

    def hand_over(
        self, draining: Mapping[int, float] | None = None, drain: float | None = None
    ) -> int:
        """Leave the workers serving past this process's ``exec`` (SIGUSR2): the helper stops
        taking requests and exits once its last worker has, or SIGTERMs them should this
        process die instead. Returns the helper's pid and nothing is waited for: after the
        ``exec`` the new image retires the workers and reaps the helper (still its child).

        ``draining`` maps the workers already draining (replaced), which the new image is not
        told of, to the seconds left before their drain deadline: the helper SIGKILLs each one
        still there then. It is their parent, so the pid cannot be another process's by then.
        ``drain`` bounds the same way the drain of the others, should this process die and the
        helper SIGTERM them (None: unbounded).
        """
        if not self._closed:
            self._closed = True
            with contextlib.suppress(OSError):
                send_frame(self._sock, ("handover", dict(draining or {}), drain))
            self._sock.close()
        return self.pid

    # ---- the helper -----------------------------------------------------------------------

    def _helper_main(self, sock: socket.socket) -> NoReturn:
        code = 0
        try:
            # Ctrl-C, or a service manager's SIGTERM, may reach the whole process group: the
            # supervisor decides what happens, and the helper must outlive the workers' drain to
            # report their exits. It ends when the supervisor closes the pair or is gone.
            # SIGHUP and SIGUSR2 are the supervisor's restart signals: a group-wide one (a closed
            # terminal) must not end the helper, nor the workers, which inherit the SIG_IGN.
            # SIGUSR1 is a worker's "drain now" (their servers handle it once they run); sent
            # to the helper, by a group-wide kill or by mistake, it would end it and the server.
            for sig in (
                signal.SIGINT,
                signal.SIGTERM,
                signal.SIGHUP,
                signal.SIGUSR2,
                signal.SIGUSR1,
            ):
                signal.signal(sig, signal.SIG_IGN)
            wake_r, wake_w = self._wake = os.pipe()
            os.set_blocking(wake_w, False)
            signal.set_wakeup_fd(wake_w)
            signal.signal(signal.SIGCHLD, lambda _sig, _frame: None)  # wakes select() below
            supervisor = os.getppid()
            while os.getppid() == supervisor:
                readable, _, _ = select.select([sock.fileno(), wake_r], [], [], _REAP_INTERVAL)
                if wake_r in readable:
                    os.read(wake_r, 512)
                self._report_exits(sock)
                if sock.fileno() in readable:
                    frame = recv_frame(sock)
                    if frame is None:
                        break
                    if frame[0][0] == "handover":
                        self._handing_over = True
                        now = time.monotonic()
                        _kind, draining, self._orphan_drain = frame[0]
                        self._kill_at = {pid: now + left for pid, left in draining.items()}
                        continue
                    self._fork_worker(sock, frame[0], frame[1])
            if self._handing_over:
                self._outlive_workers(supervisor)
        except BaseException:  # the helper must never return into the caller's stack
            code = 1
            with contextlib.suppress(BaseException):
                import traceback

                traceback.print_exc()
        finally:
            os._exit(code)

    def _outlive_workers(self, supervisor: int) -> None:
        """After a handover: wait for every worker to exit (the next image retires them; those
        already draining are killed at their deadline, :meth:`hand_over`); if the supervisor's
        process dies instead (the new code failed to start), drain them, within ``drain``."""
        told = False
        while self._children:
            if not told and os.getppid() != supervisor:
                told = True
                for pid in self._children:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGTERM)
                    if self._orphan_drain is not None and pid not in self._kill_at:
                        self._kill_at[pid] = time.monotonic() + self._orphan_drain
            self._kill_late()
            now = time.monotonic()
            wait = min([_REAP_INTERVAL, *(when - now for when in self._kill_at.values())])
            readable, _, _ = select.select([self._wake[0]], [], [], max(0.0, wait))
            if readable:  # a SIGCHLD
                os.read(self._wake[0], 512)
            while True:
                try:
                    pid, _status = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    return
                if pid == 0:
                    break
                self._children.discard(pid)

    def _kill_late(self) -> None:
        """SIGKILL the workers still there at their deadline (not reaped yet, so each pid is
        still this helper's child)."""
        now = time.monotonic()
        for pid, when in list(self._kill_at.items()):
            if pid in self._children and when > now:
                continue
            del self._kill_at[pid]
            if pid in self._children:
                logger.warning("Worker [pid %d] did not drain in time; killing it", pid)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    def _report_exits(self, sock: socket.socket) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self._children.discard(pid)
            with contextlib.suppress(OSError):
                send_frame(sock, ("exit", pid, status))

    def _fork_worker(self, sock: socket.socket, message: Any, fds: list[int]) -> None:
        _kind, slot, settings = message
        listen_fd, channel_fd = fds
        try:
            pid = _fork_stoppable()
        except OSError as exc:  # EAGAIN, ENOMEM: this worker only; the supervisor retries
            os.close(listen_fd)
            os.close(channel_fd)
            send_frame(sock, ("failed", slot, str(exc)))
            return
        if pid == 0:
            sock.close()
            self._worker_main(slot, settings, listen_fd, channel_fd)
        self._children.add(pid)
        os.close(listen_fd)
        os.close(channel_fd)
        send_frame(sock, ("pid", slot, pid))

    def _worker_main(self, slot: int, settings: Any, listen_fd: int, channel_fd: int) -> NoReturn:
        code = 1
        try:
            signal.set_wakeup_fd(-1)
            for fd in self._wake:
                os.close(fd)
            # Until the server installs its own handlers a signal ends the worker outright
            # (nothing is in flight yet): SIGINT and SIGTERM are at their default action since
            # the fork (_fork_stoppable); the helper's SIGCHLD handler is not the worker's.
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            start = WorkerStart(
                slot=slot,
                settings=settings,
                sock=socket.socket(fileno=listen_fd),
                channel=socket.socket(fileno=channel_fd),
                beats=self.beats,
                ready=self.ready,
                retiring=self.retiring,
                helper_pid=os.getppid(),
            )
            code = self._target(start)
        except BaseException:
            with contextlib.suppress(BaseException):
                import traceback

                traceback.print_exc()
        finally:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(BaseException):
                    stream.flush()
            os._exit(code)


def _fork_stoppable() -> int:
    """``os.fork()`` in the helper, the child taking SIGINT and SIGTERM at their default action
    from its first instruction.

    The helper ignores both, and a child inherits that until it resets them: a SIGTERM the
    supervisor sent a new worker in between was lost (98 of 100 sent as ``spawn()`` returned),
    so a stop right after a replacement started waited ``graceful_timeout`` + ``KILL_MARGIN``
    and SIGKILLed it. Forking with both blocked and at their default action closes that gap
    (the child unblocks them: one sent meanwhile ends it, as before its server starts); the
    helper ignores them again, which discards any it got meanwhile, before unblocking.
    """
    signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    pid = -1
    try:
        for sig in _STOP_SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        pid = os.fork()
    finally:
        if pid != 0:  # the helper (or a failed fork)
            for sig in _STOP_SIGNALS:
                signal.signal(sig, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
    return pid
