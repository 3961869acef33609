"""A redis-server for the ``aeros-redis`` contender of :mod:`bench.run`: started on a free
loopback port, pinned to the given CPUs, named to the servers through the environment, and
stopped when the run ends."""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import tempfile
import time
from typing import Any

from bench.serve import REDIS_URL_VARIABLE


def start_redis(cpus: list[int] | None = None) -> tuple[subprocess.Popen[bytes], int]:
    """Start redis-server (no persistence) on a free loopback port, pinned to ``cpus`` when
    given; return it and its port once it accepts. It stops when the bench exits."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("this bench needs redis-server (apt-get install redis)")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    workdir = tempfile.mkdtemp(prefix="aeros-bench-redis-")

    def pin() -> None:
        if cpus is not None:
            os.sched_setaffinity(0, cpus)

    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", workdir],
        preexec_fn=pin,  # only sets the CPU affinity
        stdout=subprocess.DEVNULL,
    )
    atexit.register(_stop, process, workdir)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit("redis-server did not start") from None
            time.sleep(0.02)
    return process, port


def start_bench_redis(cpus: list[int]) -> subprocess.Popen[bytes]:
    """Start :func:`start_redis` and set ``AEROS_BENCH_REDIS_URL`` for the servers
    :mod:`bench.run` starts after this."""
    process, port = start_redis(cpus)
    os.environ[REDIS_URL_VARIABLE] = f"redis://127.0.0.1:{port}/0"
    return process


def _stop(process: subprocess.Popen[Any], workdir: str) -> None:
    if process.poll() is None:
        process.terminate()
        process.wait(10)
    shutil.rmtree(workdir, ignore_errors=True)


def redis_hit_ratio(results: list[Any]) -> float | None:
    """A RedisCache hit over aeros' uncached JSON in the same run (issue 15: >= 1.5)."""
    rps = {(r.contender, r.scenario): r.rps for r in results}
    hit, json_ = rps.get(("aeros-redis", "cached-hit-redis")), rps.get(("aeros", "json"))
    return hit / json_ if hit and json_ else None


def tiered_hit_ratio(results: list[Any]) -> float | None:
    """A TieredCache (local tier) hit over a SimpleCache hit in the same run (issue 15:
    >= 0.9)."""
    rps = {(r.contender, r.scenario): r.rps for r in results}
    hit, simple = rps.get(("aeros-tiered", "cached-hit-tiered")), rps.get(("aeros", "cached-hit"))
    return hit / simple if hit and simple else None
