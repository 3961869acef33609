"""Instructions per served request by Python function, inclusive (Python 3.12+, valgrind).

    python3.13 -m bench.pyprofile                      # aeros, JSON, the 40 costliest
    python3.13 -m bench.pyprofile --contender aeros-metrics --top 80

:mod:`bench.instructions` counts a whole request; this says where it goes. The server runs
under callgrind with ``-X perf``: Python 3.12+ then calls each Python function through a
trampoline of its own (for ``perf``), which callgrind sees as a function at its own address,
and writes ``/tmp/perf-PID.map`` naming each address. The calls into a trampoline carry the
inclusive cost of that Python function; two runs (``--warm`` and ``--warm`` + ``--requests``
requests) give the cost per request. Read it as a map, not a tally:

- a coroutine is entered once when called (it returns at once) and once per resumption, so
  ``calls`` reads 2 for an ``async def`` that never waits;
- a function that calls itself (or is reached again through its callees) is counted at each
  level;
- ``-X perf`` adds about 300 instructions to each call (bench.instructions has no such cost).
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from collections import Counter
from pathlib import Path

from bench.catalog import SCENARIOS, choose_scenario
from bench.instructions import serve_counted

__all__ = ["by_function", "inclusive_by_address", "per_function"]

_NAMED = re.compile(r"^c?fn=\((\d+)\)(?: (.*))?$")
_ADDRESS = re.compile(r"^0x([0-9a-f]+)")


def inclusive_by_address(out: Path) -> tuple[Counter[int], Counter[int]]:
    """The inclusive cost and the calls of every call into an unnamed address (a trampoline)
    in callgrind's ``out`` file, summed per address."""
    names: dict[str, str] = {}
    cost: Counter[int] = Counter()
    calls: Counter[int] = Counter()
    callee: str | None = None
    pending: int | None = None
    with out.open() as lines:
        for line in lines:
            if pending is not None:  # the line after "calls=": position, then inclusive cost
                fields = line.split()
                address = _ADDRESS.match(names.get(callee or "", ""))
                if address is not None and len(fields) > 1:
                    cost[int(address.group(1), 16)] += int(fields[1])
                    calls[int(address.group(1), 16)] += pending
                pending = None
            elif line.startswith(("fn=", "cfn=")):
                named = _NAMED.match(line.rstrip("\n"))
                if named is not None:
                    if named.group(2):
                        names[named.group(1)] = named.group(2)
                    if line.startswith("cfn="):
                        callee = named.group(1)
            elif line.startswith("calls="):
                pending = int(line.split()[0][len("calls=") :])
    return cost, calls


def _perf_map(path: Path) -> dict[int, str]:
    """``/tmp/perf-PID.map``: trampoline address -> ``py::qualname:file``."""
    names = {}
    for line in path.read_text().splitlines():
        start, _, name = line.split(" ", 2)
        names[int(start, 16)] = name.removeprefix("py::")
    return names


def by_function(out: Path, perf_map: Path) -> dict[str, tuple[int, int]]:
    """One run's inclusive cost and calls per Python function, named by that run's map (the
    addresses differ from run to run)."""
    names = _perf_map(perf_map)
    cost, calls = inclusive_by_address(out)
    totals: dict[str, tuple[int, int]] = {}
    for address in cost:
        name = names.get(address, hex(address))
        known = totals.get(name, (0, 0))
        totals[name] = (known[0] + cost[address], known[1] + calls[address])
    return totals


def per_function(
    before: tuple[Path, Path], after: tuple[Path, Path], requests: int
) -> list[tuple[float, float, str]]:
    """(inclusive instructions, calls, function) per request, costliest first: the difference
    of the ``after`` and ``before`` runs (each its callgrind file and perf map) over
    ``requests``."""
    first, second = by_function(*before), by_function(*after)
    rows = []
    for name in set(first) | set(second):
        cost_a, calls_a = first.get(name, (0, 0))
        cost_b, calls_b = second.get(name, (0, 0))
        rows.append(((cost_b - cost_a) / requests, (calls_b - calls_a) / requests, name))
    return sorted(rows, reverse=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contender", default="aeros")
    parser.add_argument("--scenario", default="json", choices=[s.name for s in SCENARIOS])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--warm", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    if sys.version_info < (3, 12):
        sys.exit("bench.pyprofile needs Python 3.12+ (-X perf)")
    path = choose_scenario(args.scenario)
    with tempfile.TemporaryDirectory() as tmp:
        runs = []
        for count in (args.warm, args.warm + args.requests):
            out = Path(tmp) / f"callgrind.{count}"
            pid, _ = serve_counted(
                args.contender, path, count, args.connections, out, python_options=("-X", "perf")
            )
            # where CPython writes it (perf's convention), not a file of ours
            runs.append((out, Path(f"/tmp/perf-{pid}.map")))  # noqa: S108
        rows = per_function(runs[0], runs[1], args.requests)
        for map_file in {perf_map for _, perf_map in runs}:
            map_file.unlink(missing_ok=True)
    print(f"{'instructions':>12} {'calls':>6}  function  ({args.contender}, {args.scenario})")
    for cost, calls, name in rows[: args.top]:
        print(f"{cost:12.0f} {calls:6.2f}  {name}")


if __name__ == "__main__":
    main()
