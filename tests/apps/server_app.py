"""A small app for the server's subprocess tests: prints its URL, its workers and their fate.

stdout lines the tests read: ``URL <base url>`` once serving, ``WORKER <pid>`` from each
worker's startup, ``BLOCK <pid>`` before /block freezes a worker's event loop, and
``EXITED <...>`` after ``run_server()`` returned (saying whether signal handlers were restored).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing
import os
import signal
import time

from aeros import WebServer

parser = argparse.ArgumentParser()
parser.add_argument("--workers", type=int, default=1)
parser.add_argument("--graceful-timeout", type=float, default=30.0)
parser.add_argument("--healthcheck-timeout", type=float, default=30.0)
parser.add_argument("--crash-at-start", action="store_true")
parser.add_argument("--no-freeze-gc", action="store_true")
parser.add_argument("--after-serving-file", help="after_serving writes its pid to this file")
parser.add_argument("--hang-after-serving", action="store_true", help="then sleeps 60 s")
parser.add_argument("--max-requests", type=int, default=0)
parser.add_argument("--max-requests-jitter", type=int, default=0)
parser.add_argument("--shutdown-delay", type=float, default=0.0)
parser.add_argument("--health-path", help="WebServer(health_path=...)")
parser.add_argument("--fail-start-file", help="a worker's startup fails while this file exists")
options = parser.parse_args()

PARENT = os.getpid()
FROZEN_AT_START = gc.get_freeze_count()  # not always 0: Python 3.12.1 starts with 375 frozen


def say(line: str) -> None:
    """One write per line: forked workers share stdout, and a pipe write this short is atomic."""
    os.write(1, (line + "\n").encode())


IN_FLIGHT = multiprocessing.Value("i", 0)  # shared by forked workers: /inflight sees them all

app = WebServer(
    __name__,
    port=0,
    workers=options.workers,
    graceful_timeout=options.graceful_timeout,
    access_log=False,
    freeze_gc=not options.no_freeze_gc,
    max_requests=options.max_requests,
    max_requests_jitter=options.max_requests_jitter,
    shutdown_delay=options.shutdown_delay,
    health_path=options.health_path,
)
app.server_config = app.server_config.replace(
    worker_healthcheck_timeout=options.healthcheck_timeout
)


@app.before_serving
async def announce() -> None:
    if options.crash_at_start and os.getpid() != PARENT:
        os._exit(1)
    if options.fail_start_file and os.path.exists(options.fail_start_file):
        raise ConnectionRefusedError("the database is down")  # a dependency, briefly
    say(f"WORKER {os.getpid()}")


@app.after_serving
async def record_after_serving() -> None:
    if options.after_serving_file:
        with open(options.after_serving_file, "a") as file:
            file.write(f"{os.getpid()}\n")
    if options.hang_after_serving:
        say("HOOK hanging")
        await asyncio.sleep(60)


@app.route("/pid")
async def pid() -> str:
    return str(os.getpid())


@app.route("/slow/<float:seconds>")
async def slow(seconds: float) -> str:
    with IN_FLIGHT.get_lock():
        IN_FLIGHT.value += 1
    try:
        await asyncio.sleep(seconds)
    finally:
        with IN_FLIGHT.get_lock():
            IN_FLIGHT.value -= 1
    return str(os.getpid())


@app.route("/frozen")
async def frozen() -> str:
    """Objects frozen since the interpreter started (gc.freeze() by the server, or none)."""
    return str(gc.get_freeze_count() - FROZEN_AT_START)


@app.route("/inflight")
async def inflight() -> str:
    return str(IN_FLIGHT.value)


@app.route("/block/<float:seconds>")
async def block(seconds: float) -> str:
    say(f"BLOCK {os.getpid()}")
    time.sleep(seconds)  # freezes this worker's event loop on purpose
    return str(os.getpid())


if __name__ == "__main__":
    before = [signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)]
    app.run_server(on_started=lambda url: say(f"URL {url}"))
    after = [signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)]
    say("EXITED " + ("signal handlers restored" if after == before else f"{before} -> {after}"))
