"""Workers started from the main thread or a thread, reporting every fork and its thread count.

Run as ``python -W error::DeprecationWarning fork_app.py MODE``, MODE one of ``main``,
``serve_in_thread``, ``AdvancedThread``, ``Thread`` (a plain thread after
``app.prepare_workers()``) or ``Thread-unprepared``. stdout lines the tests read:
``FORK <pid> <threads>`` just before every ``os.fork()`` of this process or of its fork helper
(``threads``: OS threads of the forking process, the number Python 3.12+ checks before it
warns), ``URL <base url>`` once serving, ``GOT <status> <body>`` for a request the script made
itself, and ``EXITED`` at the end.
"""

from __future__ import annotations

import http.client
import os
import sys
import threading
from urllib.parse import urlsplit

from aeros import AdvancedThread, WebServer


def say(line: str) -> None:
    """One write per line: forked processes share stdout, and a pipe write this short is atomic."""
    os.write(1, (line + "\n").encode())


def threads_now() -> int:
    """OS threads of this process, as CPython counts them before it warns about fork()."""
    try:
        with open("/proc/self/stat", "rb") as stat:
            return int(stat.read().rsplit(b")", 1)[1].split()[17])  # field 20: num_threads
    except OSError:  # not Linux: what the threading module knows
        return threading.active_count()


os.register_at_fork(before=lambda: say(f"FORK {os.getpid()} {threads_now()}"))

app = WebServer(__name__, port=0, workers=2, access_log=False)


@app.route("/pid")
async def pid() -> str:
    return str(os.getpid())


def get(url: str) -> str:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        conn.request("GET", parts.path, headers={"Connection": "close"})
        response = conn.getresponse()
        return f"{response.status} {response.read().decode()}"
    finally:
        conn.close()


def serve_in(thread_class: type[threading.Thread], app: WebServer) -> threading.Thread:
    """Start ``app.run_server`` in a thread of ``thread_class``; report its URL and one GET."""
    started = threading.Event()
    urls: list[str] = []
    thread = thread_class(
        target=app.run_server,
        kwargs={"on_started": lambda url: (urls.append(url), started.set())},
    )
    thread.start()
    if not started.wait(20):
        raise SystemExit("the server did not start within 20 s")
    say(f"URL {urls[0]}")
    say(f"GOT {get(urls[0] + '/pid')}")
    return thread


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "main":
        app.run_server(on_started=lambda url: say(f"URL {url}"))  # the test sends SIGTERM
    elif mode == "serve_in_thread":
        with app.serve_in_thread() as url:
            say(f"URL {url}")
            say(f"GOT {get(url + '/pid')}")
    elif mode == "AdvancedThread":
        thread = serve_in(AdvancedThread, app)
        thread.stop()
        thread.join(30)
    elif mode in ("Thread", "Thread-unprepared"):
        if mode == "Thread":
            app.prepare_workers()  # before the thread exists
        thread = serve_in(threading.Thread, app)
        app.stop()
        thread.join(30)
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    say("EXITED")
