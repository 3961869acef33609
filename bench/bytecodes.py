"""Python bytecodes per served request, by function, counted by tracing the server (no valgrind).

    python -m bench.bytecodes                              # aeros and Sanic, the JSON scenario
    python -m bench.bytecodes --contenders aeros,aeros-metrics --top 20
    python -m bench.bytecodes --contenders aeros --lines _start_head,send   # per source line

Each contender is served by ``bench.serve`` (one process) with a trace function installed
(``sys.settrace`` with ``f_trace_opcodes``); it counts nothing until told to (a real-time
signal), so the warm-up requests and the start are left out. ``--warm`` requests go first,
then the tracing is switched on for ``--requests`` more over ``--connections`` keep-alive
connections, and off, and the counts are written out. Tracing makes the server about 20 times
slower, so the requests are few; the counts repeat to the bytecode between runs (a timer of
the app, like the metrics' flush a second, lands in more of them than at full speed).

Why bytecodes: at equal instructions aeros ran as fast as it executed Python bytecode and
touched memory, not as its instruction count says (docs/performance.md, round nineteen: the
same instructions as Sanic on 3.13, twice its bytecodes, 1.55 times its first-level data-cache
misses). With ``--compare`` (the default when two or more contenders are named) the first
contender is the baseline and each other's difference is listed by function.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import Any

from bench.catalog import FIELDS_VARIABLE, SCENARIOS, add_fields_option, choose_scenario
from bench.instructions import _load, read_when_written, served_child, write_whole
from bench.run import free_port

ON, OFF = signal.SIGRTMIN + 3, signal.SIGRTMIN + 4
"""Signals that switch the counting on and off (and write the counts): aeros' server handles
SIGHUP, SIGUSR1 and SIGUSR2 itself."""


def _place(code: Any, line: int | None, lines: frozenset[str]) -> str:
    path = Path(code.co_filename)
    where = f"{path.parent.name}/{path.name}:{code.co_name}"
    return f"{where}:{line}" if line is not None and code.co_name in lines else where


def _serve_traced(contender: str, port: int, out: str, lines: frozenset[str]) -> None:
    """The server process: ``bench.serve``'s contender, its bytecodes counted between the
    two signals, then written to ``out`` as JSON (place -> bytecodes)."""
    counting = [False]
    counts: Counter[str] = Counter()

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        if event == "opcode":
            counts[_place(frame.f_code, frame.f_lineno, lines)] += 1
        return local

    def calls(frame: FrameType, event: str, arg: Any) -> Any:
        if not counting[0]:
            return None
        frame.f_trace_opcodes = True
        return local

    def on(*_: Any) -> None:
        counting[0] = True
        # Python 3.12.1 sends opcode events only from the next settrace after some frame asked
        # for them (a frame's f_trace_opcodes set in a call event is otherwise ignored)
        here = sys._getframe()
        here.f_trace_opcodes = True
        sys.settrace(calls)

    def off(*_: Any) -> None:
        counting[0] = False
        write_whole(out, json.dumps(counts))

    signal.signal(ON, on)
    signal.signal(OFF, off)
    sys.settrace(calls)
    threading.settrace(calls)
    from bench.serve import serve

    serve(contender, port, 1)


def count(
    contender: str, path: str, warm: int, requests: int, connections: int, lines: frozenset[str]
) -> Counter[str]:
    """Bytecodes per request of ``contender`` serving ``path``, by function (or line)."""
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "counts.json"
        code = (
            "import sys; from bench.bytecodes import _serve_traced; "
            "_serve_traced(sys.argv[1], int(sys.argv[2]), sys.argv[3], "
            "frozenset(filter(None, sys.argv[4].split(','))))"
        )
        arguments = [contender, str(port), str(out), ",".join(lines)]
        with served_child(code, arguments, port, path, contender) as process:
            asyncio.run(_load(port, path, warm, connections))
            process.send_signal(ON)
            time.sleep(0.2)
            asyncio.run(_load(port, path, requests, connections))
            process.send_signal(OFF)
            counts = json.loads(read_when_written(out, 30))
    return Counter({place: n / requests for place, n in counts.items()})


def _report(name: str, counts: Counter[str], top: int) -> None:
    print(f"{name}: {sum(counts.values()):.0f} bytecodes a request")
    for place, n in counts.most_common(top):
        print(f"  {n:8.1f}  {place}")


def _difference(name: str, base: Counter[str], counts: Counter[str], top: int) -> None:
    total = sum(counts.values()) - sum(base.values())
    print(f"{name}: {total:+.0f} bytecodes a request against the first")
    changes = {place: counts[place] - base[place] for place in set(counts) | set(base)}
    for place, n in sorted(changes.items(), key=lambda item: -abs(item[1]))[:top]:
        if abs(n) >= 0.5:
            print(f"  {n:+8.1f}  {place}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contenders", default="aeros,sanic")
    parser.add_argument("--scenario", default="json", choices=[s.name for s in SCENARIOS])
    parser.add_argument("--warm", type=int, default=1600)
    parser.add_argument("--requests", type=int, default=800)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--lines", default="", help="functions counted per source line")
    parser.add_argument("--out", type=Path, help="the counts as JSON")
    add_fields_option(parser)
    args = parser.parse_args()
    os.environ[FIELDS_VARIABLE] = args.fields
    path = choose_scenario(args.scenario)
    lines = frozenset(filter(None, args.lines.split(",")))
    names = args.contenders.split(",")
    results = {
        name: count(name, path, args.warm, args.requests, args.connections, lines) for name in names
    }
    for name in names:
        _report(name, results[name], args.top)
    for name in names[1:]:
        _difference(name, results[names[0]], results[name], args.top)
    if args.out:
        meta = {"python": sys.version.split()[0], "scenario": args.scenario, "fields": args.fields}
        args.out.write_text(json.dumps({**meta, "bytecodes": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
