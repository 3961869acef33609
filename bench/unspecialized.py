"""Where a served contender's code stays unspecialized: instructions the adaptive interpreter
keeps trying, and failing, to specialize (Python 3.13+; no valgrind).

    python -m bench.unspecialized                          # aeros, the JSON scenario
    python -m bench.unspecialized --contender aeros-request-id --under aeros/

The contender is served by ``bench.serve`` (one process) and given ``--requests`` requests;
then a signal makes it list, for every function it holds (the ones frozen by ``gc.freeze``
too), the instructions still in their generic form (``LOAD_ATTR``, ``STORE_ATTR``, ``CALL``,
``BINARY_SUBSCR``, ...) whose inline cache counter has backed off at least ``--backoff``
times: run often, specialization attempted and refused each time. Each such instruction does
the generic work every time it runs (an attribute load through the type's lookup cache, a
bound method made and dropped). A site run a few times only keeps its first counter and is
not listed.

Why: round twenty-one found about 60 such instructions in a served JSON request on 3.13,
most of them from a class attribute shadowing an instance attribute, a ``__getattr__`` on the
request context, and methods called on from-imported objects (docs/performance.md).
"""

from __future__ import annotations

import argparse
import asyncio
import dis
import gc
import opcode
import signal
import sys
import tempfile
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.catalog import SCENARIOS, choose_scenario
from bench.instructions import _load, read_when_written, served_child, write_whole
from bench.run import free_port

LIST = signal.SIGRTMIN + 5
"""The signal that makes the served process write its list (aeros' server handles SIGHUP,
SIGUSR1 and SIGUSR2 itself; bench.bytecodes uses +3 and +4)."""
_WARMUP_COUNTER = b"\x11\x00"  # a cache counter never decremented: the instruction never ran
_FAMILIES = frozenset(getattr(opcode, "_specializations", ()))
"""The instructions the interpreter specializes (3.13: ``LOAD_ATTR``, ``CALL``, ...); a jump's
cache is a branch record, not a counter of attempts."""


def code_objects(code: types.CodeType) -> Iterator[types.CodeType]:
    """``code`` and every code object nested in it (functions, classes, comprehensions)."""
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from code_objects(const)


def _all_functions() -> list[types.FunctionType]:
    frozen = gc.get_freeze_count()
    if frozen:
        gc.unfreeze()  # the functions frozen after start-up (aeros' server) are the app's
    try:
        return [o for o in gc.get_objects() if isinstance(o, types.FunctionType)]
    finally:
        if frozen:
            gc.freeze()


def refused(backoff: int, functions: list[types.FunctionType] | None = None) -> list[str]:
    """``path:line function OPNAME argument`` of each generic instruction of ``functions``
    (default: every function of this process) whose specialization was refused at least
    ``backoff`` times (its counter's backoff)."""
    if functions is None:
        functions = _all_functions()
    seen: set[int] = set()
    found: list[str] = []
    for function in functions:
        for code in code_objects(function.__code__):
            if id(code) in seen:
                continue
            seen.add(id(code))
            for step in dis.get_instructions(code, adaptive=True):
                caches = step.cache_info
                if step.opname not in _FAMILIES or not caches or caches[0][0] != "counter":
                    continue  # specialized, or nothing to specialize
                counter = caches[0][2]
                if counter == _WARMUP_COUNTER or counter[0] & 0xF < backoff:
                    continue
                found.append(
                    f"{code.co_filename}:{step.positions.lineno if step.positions else '?'} "
                    f"{code.co_qualname} {step.opname} {step.argrepr}".rstrip()
                )
    return sorted(set(found))


def _serve_listing(contender: str, port: int, out: str, backoff: int) -> None:
    """The server process: ``bench.serve``'s contender; on :data:`LIST` its refused
    instructions are written to ``out``, one a line."""

    def write(*_: Any) -> None:
        write_whole(out, "\n".join(refused(backoff)) + "\n")

    signal.signal(LIST, write)
    from bench.serve import serve

    serve(contender, port, 1)


def listed(contender: str, path: str, requests: int, connections: int, backoff: int) -> list[str]:
    """The refused instructions of ``contender`` after serving ``requests`` of ``path``."""
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "refused.txt"
        code = (
            "import sys; from bench.unspecialized import _serve_listing; "
            "_serve_listing(sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]))"
        )
        arguments = [contender, str(port), str(out), str(backoff)]
        with served_child(code, arguments, port, path, contender) as process:
            asyncio.run(_load(port, path, requests, connections))
            process.send_signal(LIST)
            lines = read_when_written(out, 60).splitlines()
    return [line for line in lines if line]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contender", default="aeros")
    parser.add_argument("--scenario", default="json", choices=[s.name for s in SCENARIOS])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--backoff", type=int, default=4, help="refusals, as the counter's")
    parser.add_argument("--under", default="", help="only files whose path contains this")
    args = parser.parse_args()
    if sys.version_info < (3, 13):
        sys.exit("bench.unspecialized reads inline caches as Python 3.13's dis shows them")
    path = choose_scenario(args.scenario)
    found = listed(args.contender, path, args.requests, args.connections, args.backoff)
    for line in found:
        if args.under in line.split(" ", 1)[0]:
            print(line)


if __name__ == "__main__":
    main()
