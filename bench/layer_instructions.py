"""Instructions the request-id and metrics layers add per request, alone, counted by valgrind.

    python -m bench.layer_instructions                 # request id, trusted, metrics
    python -m bench.layer_instructions --layers metrics -n 20000
    python -m bench.layer_instructions --opcodes --layers metrics   # bytecodes, no valgrind

The metrics layer is measured as it counts under another server (or when aeros' server does
not count: an app class with its own ``__call__``); on aeros' server the server's cycle makes
the count and the layer passes the request on (``bench.instructions --contenders
aeros,aeros-metrics`` measures that, served).

Each layer wraps :mod:`bench.observability`'s stub app (it answers at once) and serves
``-n`` requests in process after 2 000 warm ones, under ``valgrind --tool=callgrind`` twice
(``warm`` and ``warm + n``); the difference over ``n``, minus the stub's own, is the layer's
cost. Unlike a whole app's count, which a context variable's place in the context's map moves
by about 2 k between runs (docs/performance.md, round twelve), these repeat within about 30
instructions: the way to see a step of a few hundred. Needs ``valgrind`` on the PATH.

``--opcodes`` needs no valgrind: it traces ``-n`` requests after the warm ones and prints the
Python bytecodes each function ran per request, to see which of a layer's steps holds its
count (on 3.11 a bytecode cost about 50 instructions in these layers, C work included).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import Any

from bench.instructions import callgrind, totals

WARM = 2000
LAYERS = ("stub", "request-id", "request-id-trusted", "metrics")


def _layer(name: str) -> Any:
    from aeros.metrics.export import Exporter
    from aeros.metrics.layer import MetricsMiddleware
    from aeros.middleware.request_id import RequestIdMiddleware
    from bench.observability import _stub

    if name == "stub":
        return _stub
    if name == "request-id":
        return RequestIdMiddleware(_stub).__call__
    if name == "request-id-trusted":
        return RequestIdMiddleware(_stub, trusted=("127.0.0.1",)).__call__
    exporter = Exporter()  # compression counts the app's bytes in an app: no byte layer here
    # no flush a second later: under valgrind it would land in one run of the two and not the
    # other (about 300 instructions per request; at full speed it is under 100)
    exporter.scheduled = True
    return MetricsMiddleware(_stub, exporter, "/metrics", lambda scope: "/json").__call__


def serve(name: str, requests: int, trace: Any = None) -> Any:
    """Serve ``WARM + requests`` stub requests through layer ``name`` (the counted child);
    the app served. ``trace``: a ``sys.settrace`` function set around each of the last
    ``requests`` (the tracer found before is put back after each)."""
    from bench.inprocess import new_loop, request_done
    from bench.observability import _receive, _scope, _send

    app = _layer(name)

    async def run(count: int, traced: Any) -> None:
        before = sys.gettrace()  # coverage's or a debugger's
        for _ in range(count):
            scope = _scope()
            if traced is not None:
                sys.settrace(traced)
            try:
                await app(scope, _receive, _send)
                request_done(scope, 200, 27)
            finally:
                if traced is not None:
                    sys.settrace(before)

    loop = new_loop()
    try:
        loop.run_until_complete(run(WARM, None))
        loop.run_until_complete(run(requests, trace))
    finally:
        loop.close()
    return app


def opcodes(name: str, requests: int) -> Counter[tuple[str, str]]:
    """Bytecodes run per request by each function, ``(file name, function)``, over ``requests``
    stub requests through layer ``name`` after the warm ones (traced: ``sys.settrace``)."""
    counts: Counter[tuple[str, str]] = Counter()

    def trace(frame: FrameType, event: str, arg: Any) -> Any:
        frame.f_trace_opcodes = True
        if event == "opcode":
            code = frame.f_code
            counts[(Path(code.co_filename).name, code.co_name)] += 1
        return trace

    serve(name, requests, trace)
    return counts


def count(name: str, requests: int) -> int:
    """callgrind's instructions for a child serving ``requests`` after the warm ones."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        command = [*callgrind(out), "-m", "bench.layer_instructions", "--child", name]
        env = {**os.environ, "PYTHONHASHSEED": "0"}  # the same dict layouts in every run
        done = subprocess.run(
            [*command, "-n", str(requests)], capture_output=True, text=True, env=env, check=True
        )
        counts = totals(out)
    if counts is None:
        raise RuntimeError(f"no count from valgrind for {name}: {done.stderr[-500:]}")
    return counts["Ir"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", default=",".join(LAYERS[1:]))
    parser.add_argument("-n", type=int, default=10_000, help="requests counted")
    parser.add_argument(
        "--opcodes", action="store_true", help="bytecodes per function and request (no valgrind)"
    )
    parser.add_argument("--child", choices=LAYERS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        serve(args.child, args.n)
        return
    names = [name.strip() for name in args.layers.split(",") if name.strip()]
    unknown = [name for name in names if name not in LAYERS]
    if unknown:
        parser.error(f"--layers: unknown {unknown}; choose from {', '.join(LAYERS)}")
    if args.opcodes:
        for name in ["stub", *names]:
            counts = opcodes(name, args.n)
            print(f"{name}: {sum(counts.values()) / args.n:.1f} bytecodes/request")
            for (file, function), seen in counts.most_common():
                print(f"  {seen / args.n:8.1f}  {file}:{function}")
        return
    if shutil.which("valgrind") is None:
        parser.error("needs valgrind on the PATH")

    def per_request(name: str) -> float:
        return (count(name, args.n) - count(name, 0)) / args.n

    stub = per_request("stub")
    for name in names:
        print(f"{name:20} +{per_request(name) - stub:8.0f} instructions/request")


if __name__ == "__main__":
    main()
