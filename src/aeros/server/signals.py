"""Signal handling for the server: install only on the main thread, restore the old handlers."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from types import FrameType
from typing import Any

__all__ = [
    "IGNORED_SIGNALS",
    "IGNORED_WARNING",
    "RESTART_SIGNALS",
    "RETIRE_SIGNAL",
    "SHUTDOWN_SIGNALS",
    "capture",
    "signal_name",
]

SHUTDOWN_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM)
"""Signals that start a graceful shutdown (Ctrl-C, ``kill``; Ctrl-Break on Windows)."""
if sys.platform == "win32":  # pragma: no cover (no Windows CI)
    SHUTDOWN_SIGNALS += (signal.SIGBREAK,)

RESTART_SIGNALS: tuple[signal.Signals, ...] = ()
"""Signals the supervisor restarts on: SIGHUP replaces the workers one by one, SIGUSR2 re-executes
the server (new code) keeping its listening socket (POSIX only)."""
if sys.platform != "win32":
    RESTART_SIGNALS = (signal.SIGHUP, signal.SIGUSR2)

RETIRE_SIGNAL: int = getattr(signal, "SIGUSR1", signal.SIGTERM)
"""What the supervisor sends a worker it replaces (recycled, SIGHUP, the previous image after
SIGUSR2): drain now, without ``shutdown_delay`` and without the health endpoint saying
draining, since the server as a whole keeps serving (SIGTERM where there is no SIGUSR1)."""

IGNORED_SIGNALS: tuple[signal.Signals, ...] = ()
"""Signals the server's main process logs and otherwise ignores (the supervisor, or the one
process of ``workers=1``; the fork helper ignores them silently): SIGUSR1, the workers' retire
signal, is sent to the main pid by habit (gunicorn reopens its log files on it); its default
action would end the server (POSIX only)."""
if sys.platform != "win32":
    IGNORED_SIGNALS = (signal.SIGUSR1,)
IGNORED_WARNING = (
    "Ignoring %s: the server reopens no log files on it (each process opens them when it "
    "starts: SIGUSR2 re-executes the server with workers >= 2); it drains a worker of a "
    "supervisor, not the server"
)
"""The warning logged for one of :data:`IGNORED_SIGNALS` (its name filled in)."""

Handler = Callable[[int, FrameType | None], Any]


@contextlib.contextmanager
def capture(signals: Sequence[int], handler: Handler) -> Iterator[bool]:
    """Route ``signals`` to ``handler`` for the ``with`` block; yields whether it could.

    Python lets only the main thread install handlers, so elsewhere this installs nothing and
    yields False (the caller then relies on ``stop()``). The previous handlers come back on exit,
    so a server run inside a larger program leaves that program's handling as it found it.
    """
    if threading.current_thread() is not threading.main_thread():
        yield False
        return
    previous = {sig: signal.signal(sig, handler) for sig in signals}
    try:
        yield True
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def signal_name(sig: int) -> str:
    """``SIGTERM`` for 15; the number itself for a signal Python has no name for."""
    try:
        return signal.Signals(sig).name
    except ValueError:
        return str(sig)
