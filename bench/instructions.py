"""CPU instructions per served request, counted by valgrind (deterministic, unlike req/s).

    python -m bench.instructions                       # aeros plain, request ids, metrics, limit
    python -m bench.instructions --contenders aeros,aeros-metrics --scenario plaintext
    python -m bench.instructions --contenders sanic,aeros      # issue 12: against Sanic

Each contender is served by ``bench.serve`` (one process, aeros' server) under ``valgrind
--tool=callgrind`` twice: once given ``--warm`` requests, once ``--warm`` + ``--requests``;
the difference of the two totals over ``--requests`` is what one more request costs in user
space (the server's Python, uvloop and httptools; not the kernel's socket work, about 15 % of
the server's CPU time in the loopback runs of bench.run). The counts repeat within 0.3 %
between runs on a busy machine, where req/s of two runs of the same code differ by 10 %: the
way to see a cost of 1-3 % of a request. Each run takes about 30 s (valgrind runs Python
50 times slower); needs ``valgrind`` on the PATH.

``--cache`` also simulates the caches (callgrind's ``--cache-sim=yes``, the host's cache
sizes, no prefetching; about twice as slow) and reports the first-level instruction and data
cache misses per request (``I1mr``, ``D1mr``, ``D1mw``). No hardware counters are readable in
this VM; the misses show what instructions alone miss: a step that brings new code or data into
the request costs more time than its instructions (docs/performance.md, round eleven).

The server runs with address-space randomisation off (``setarch -R``, where it exists): a
context variable's place in the context's map follows its address, so with random addresses
a contender that sets one (request ids) read 306.4 k and 309.0 k instructions per request in
two runs of one connection, and 308.0 k and 308.3 k with them fixed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.catalog import (
    FIELDS_VARIABLE,
    SCENARIO_FIELD_VARIABLE,
    SCENARIOS,
    add_fields_option,
    choose_scenario,
    load_fields,
)
from bench.run import ROOT, free_port, get
from bench.serve import FLUSH_VARIABLE

DEFAULT = ("aeros", "aeros-request-id", "aeros-metrics", "aeros-ratelimit")
# served in one process that exits cleanly on SIGINT (callgrind writes its counts then):
# aeros' server, and Sanic's own (issue 12's yardstick)
COUNTABLE = ("bare-aeros", *DEFAULT, "aeros-access-log", "quart-aeros", "fastapi-aeros", "sanic")
OUT = Path(__file__).resolve().parent / "results" / "instructions.json"
_EVENTS = re.compile(rb"^events:\s+(.+)$", re.MULTILINE)
_TOTALS = re.compile(rb"^totals:\s+(.+)$", re.MULTILINE)
MISSES = ("I1mr", "D1mr", "D1mw")
"""First-level cache misses ``--cache`` reports: instruction reads, data reads, data writes."""
# the same addresses in every run (see the module docstring); nothing where setarch is missing
_FIXED_ADDRESSES = ("setarch", platform.machine(), "-R") if shutil.which("setarch") else ()


def request_head(path: str, port: int) -> bytes:
    """The head of each request of the load: ``Host``, the scenario's own field and those
    ``--fields`` chose (:func:`bench.catalog.load_fields`)."""
    fields = load_fields(os.environ.get(SCENARIO_FIELD_VARIABLE))
    more = "".join(f"{field}\r\n" for field in fields)
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{more}\r\n".encode()


async def _load(port: int, path: str, requests: int, connections: int) -> None:
    """``requests`` GETs of ``path`` over ``connections`` keep-alive connections."""
    line = request_head(path, port)

    async def one(count: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(count):
            writer.write(line)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"{path}: {head.splitlines()[0]!r}")
            length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
            if length is None:
                raise RuntimeError(f"{path}: no Content-Length")
            await reader.readexactly(int(length.group(1)))
        writer.close()

    share, rest = divmod(requests, connections)
    await asyncio.gather(*(one(share + (i < rest)) for i in range(connections)))


def served_env(seed: str) -> dict[str, str]:
    """The environment of a contender's server process: hash seed ``seed``, and this
    checkout's bench and source first on the path."""
    env = dict(os.environ, PYTHONHASHSEED=seed)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "src"), env.get("PYTHONPATH", "")])
    return env


def wait_until_served(
    process: subprocess.Popen[bytes], port: int, path: str, name: str, seconds: float, pause: float
) -> None:
    """Wait until ``path`` on ``port`` answers 200 (one request); raise if ``process`` ends
    first or ``seconds`` pass."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if get(port, path)[0] == 200:
                return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not start")
        time.sleep(pause)


@contextmanager
def served_child(
    code: str, arguments: list[str], port: int, path: str, name: str
) -> Iterator[subprocess.Popen[bytes]]:
    """``python -c code *arguments`` serving on ``port`` (hash seed 0, this checkout first
    on the path), once ``path`` answers 200; killed when the block ends."""
    process = subprocess.Popen(
        [sys.executable, "-c", code, *arguments],
        cwd=ROOT,
        env=served_env("0"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until_served(process, port, path, name, 60, 0.3)
        yield process
    finally:
        process.kill()
        process.communicate(timeout=30)


def write_whole(out: str, text: str) -> None:
    """Write ``text`` to ``out`` beside it, then rename it into place: a reader waiting with
    :func:`read_when_written` finds the whole file or none."""
    part = Path(out + ".part")
    part.write_text(text)
    part.replace(out)


def read_when_written(out: Path, seconds: float) -> str:
    """``out``'s text once it exists (written by :func:`write_whole`), waiting at most
    ``seconds``."""
    deadline = time.monotonic() + seconds
    while not out.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    return out.read_text()


def callgrind(out: Path, *, cache: bool = False) -> list[str]:
    """The command that runs this Python under callgrind (fixed addresses where ``setarch``
    exists), writing its counts to ``out``; the module and its arguments follow."""
    return [
        *_FIXED_ADDRESSES,
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={out}",
        *(["--cache-sim=yes"] if cache else []),
        sys.executable,
    ]


def totals(out: Path) -> dict[str, int] | None:
    """callgrind's totals by event name (``Ir``, ...) from its ``out`` file; None if it has
    none (the run failed)."""
    data = out.read_bytes() if out.exists() else b""
    events, found = _EVENTS.search(data), _TOTALS.search(data)
    if events is None or found is None:
        return None
    names = events.group(1).decode().split()
    return dict(zip(names, map(int, found.group(1).split()), strict=True))


def instructions(
    contender: str, path: str, requests: int, connections: int, *, cache: bool = False
) -> dict[str, int]:
    """callgrind's totals for the server's whole life, serving ``requests`` of ``path``:
    ``Ir`` (instructions), and with ``cache`` the simulated cache events too."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        return serve_counted(contender, path, requests, connections, out, cache=cache)[1]


def serve_counted(
    contender: str,
    path: str,
    requests: int,
    connections: int,
    out: Path,
    *,
    cache: bool = False,
    python_options: tuple[str, ...] = (),
) -> tuple[int, dict[str, int]]:
    """Serve ``requests`` of ``path`` to ``contender`` run under callgrind, its counts written
    to ``out``; returns the server's process id and callgrind's totals (:func:`totals`).
    ``python_options`` go to its interpreter (``-X perf``: :mod:`bench.pyprofile`)."""
    port = free_port()
    # the same dict layouts in every run; another seed (AEROS_BENCH_HASHSEED) moves a count by
    # up to about 2 k (where context variables fall in a context's map): compare several
    env = served_env(os.environ.get("AEROS_BENCH_HASHSEED", "0"))
    # no flush of the metrics a second during the run (one at its end, in both runs): at full
    # speed a flush is under 100 instructions a request, under valgrind it read 2-10 k
    env[FLUSH_VARIABLE] = "3600"
    process = subprocess.Popen(
        [
            *callgrind(out, cache=cache),
            *python_options,
            "-m",
            "bench.serve",
            contender,
            str(port),
            "1",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        # one request answers the probe: the same in every run
        wait_until_served(process, port, path, f"{contender} under valgrind", 300, 1.0)
        if requests:
            asyncio.run(_load(port, path, requests, connections))
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)  # a clean exit writes the counts
        _, err = process.communicate(timeout=300)
    counts = totals(out)
    if counts is None:
        raise RuntimeError(f"{contender}: no callgrind totals\n{err.decode()[-2000:]}")
    return process.pid, counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contenders", default=",".join(DEFAULT))
    parser.add_argument("--scenario", default="json", choices=[s.name for s in SCENARIOS])
    parser.add_argument("--requests", type=int, default=2000, help="the requests measured")
    parser.add_argument("--warm", type=int, default=1000, help="requests in both runs")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument(
        "--cache", action="store_true", help="also the simulated L1 cache misses per request"
    )
    add_fields_option(parser)
    args = parser.parse_args()
    os.environ[FIELDS_VARIABLE] = args.fields
    contenders = [name.strip() for name in args.contenders.split(",") if name.strip()]
    unknown = [name for name in contenders if name not in COUNTABLE]
    if unknown:
        parser.error(f"--contenders: {unknown} are not among {', '.join(COUNTABLE)}")
    if args.requests < 1 or args.warm < 0:
        parser.error("--requests must be at least 1 and --warm at least 0")
    if shutil.which("valgrind") is None:
        sys.exit("bench.instructions needs valgrind (apt-get install valgrind)")
    path = choose_scenario(args.scenario)
    per_request: dict[str, float] = {}
    misses: dict[str, dict[str, float]] = {}
    for contender in contenders:
        base = instructions(contender, path, args.warm, args.connections, cache=args.cache)
        more = instructions(
            contender, path, args.warm + args.requests, args.connections, cache=args.cache
        )
        each = {name: (more[name] - base[name]) / args.requests for name in more}
        per_request[contender] = each["Ir"]
        line = f"{contender:20} {each['Ir']:10.0f} instructions/request"
        if args.cache:
            misses[contender] = {name: each[name] for name in MISSES}
            line += "".join(f"  {name} {each[name]:6.0f}" for name in MISSES)
        print(line, flush=True)
    first = contenders[0]
    for contender in contenders[1:]:
        extra = per_request[contender] - per_request[first]
        line = f"{contender:20} {extra:+10.0f} ({extra / per_request[first]:+.1%} of {first})"
        for name in MISSES if args.cache else ():
            more_misses = misses[contender][name] - misses[first][name]
            line += f"  {name} {more_misses:+5.0f} ({more_misses / misses[first][name]:+.1%})"
        print(line)
    result: dict[str, object] = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": sys.version.split()[0],
        "scenario": args.scenario,
        "fields": args.fields,
        "requests": args.requests,
        "warm": args.warm,
        "instructions_per_request": per_request,
    }
    if args.cache:
        result["misses_per_request"] = misses
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
