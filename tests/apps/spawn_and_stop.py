"""Fork N workers through aeros' fork helper, each sent SIGTERM the moment its pid is known.

Run as ``python spawn_and_stop.py N``. A worker here sleeps 10 s unless a signal ends it; for
each one stdout gets ``STOPPED <exit code> <seconds from the SIGTERM to its exit report>``
(exit code -15: the SIGTERM ended it; ``none``: no exit within 2 s).
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time

from aeros.server.forkserver import ForkServer, WorkerStart


def serve_on(start: WorkerStart) -> int:
    """A worker that serves on: only a signal ends it before its 10 s are up."""
    time.sleep(10)
    return 0


def main(count: int) -> None:
    helper = ForkServer(1, serve_on)
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        for _ in range(count):
            mine, theirs = socket.socketpair()
            pid = helper.spawn(0, None, listener, theirs)
            theirs.close()
            os.kill(pid, signal.SIGTERM)
            sent = time.monotonic()
            reports: list[tuple[int, int]] = []
            while not reports and time.monotonic() - sent < 2:
                reports = helper.exits(block=0.2) or []
            took = time.monotonic() - sent
            mine.close()
            codes = [os.waitstatus_to_exitcode(status) for got, status in reports if got == pid]
            print("STOPPED", codes[0] if codes else "none", f"{took:.2f}", flush=True)
            if not codes:  # lost the signal: end it so the helper can exit
                os.kill(pid, signal.SIGKILL)
                while not helper.exits(block=0.2):
                    pass
    finally:
        listener.close()
        helper.close()


if __name__ == "__main__":
    main(int(sys.argv[1]))
