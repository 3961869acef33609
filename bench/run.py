"""The aeros benchmark: every contender, every scenario, one command, a few minutes, loopback.

    .venv/bin/python -m bench.run                      # full run (about 9 minutes)
    .venv/bin/python -m bench.run --quick              # 1 s per scenario, to try the harness
    .venv/bin/python -m bench.run --field --repeat 5   # the field, uncached (about 18 minutes)

Each contender starts in turn on a free 127.0.0.1 port, one worker process pinned to the server
CPU; ``wrk -t1 -c64`` pinned to the client CPU drives each scenario after a warm-up. The table
gives req/s, p50/p99 latency and the ratio to the bare ASGI app on uvicorn (the ceiling) from
the same run, and the ratio to the bare app on the contender's own server where the run has it
(``bare-aeros`` is the bare app on aeros' server). Then a worker-scaling run of aeros (1, 2,
4, 8 workers) and two checks: a cache hit is served from the cache (``Age`` header), and 100
concurrent misses on one key call the view once. Results go to
``bench/results/results.json``; ``python -m bench.charts`` draws them.

``--field`` compares aeros with the frameworks users pick instead (:mod:`bench.field`: Sanic,
Litestar, Starlette, BlackSheep, Falcon, Robyn, with FastAPI, Quart and Flask) on the plaintext,
JSON and path-parameter scenarios, the only ones they serve, and skips the worker scaling.
``--contenders`` takes names and the groups of :data:`bench.catalog.GROUPS`.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.catalog import (
    BARE,
    FIELDS_VARIABLE,
    GROUPS,
    LABELS,
    SAME_SERVER,
    SCENARIOS,
    UNCACHED,
    Scenario,
    add_fields_option,
    expand_contenders,
    load_fields,
)
from bench.redis_server import redis_hit_ratio, start_bench_redis, tiered_hit_ratio

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Result:
    """One wrk measurement."""

    contender: str
    scenario: str
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    workers: int = 1
    ratio: float | None = None  # to the bare app on stock uvicorn
    same_server_ratio: float | None = None  # to the bare app on the contender's own server
    probe: dict[str, str] = field(default_factory=dict)
    cpu_us: float | None = None  # server CPU time (user+sys, all its processes) per request
    samples: list[float] = field(default_factory=list)  # req/s of each repeat (median is rps)


def cpu_seconds(pid: int) -> float:
    """User+system CPU seconds of process ``pid`` and its children (Linux /proc)."""
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    ticks = 0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def median_result(runs: list[Result]) -> Result:
    """The run with the median req/s, carrying every run's req/s as samples."""
    ordered = sorted(runs, key=lambda r: r.rps)
    mid = ordered[len(ordered) // 2]
    mid.samples = [round(r.rps, 1) for r in runs]
    return mid


# ---- processes -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pinned(cpus: list[int]) -> Any:
    def pin() -> None:
        os.sched_setaffinity(0, cpus)

    return pin


def get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}
    finally:
        conn.close()


def start_server(
    contender: str, workers: int, cpus: list[int]
) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "src"), env.get("PYTHONPATH", "")])
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.serve", contender, str(port), str(workers)],
        cwd=ROOT,
        env=env,
        preexec_fn=pinned(cpus),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            if get(port, "/plaintext")[0] == 200:
                return process, port
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            stop_server(process)
            err = process.stderr.read().decode(errors="replace") if process.stderr else ""
            raise RuntimeError(f"{contender} did not start:\n{err[-2000:]}")
        time.sleep(0.1)


def stop_server(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


# ---- wrk -------------------------------------------------------------------------------------

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if match is None:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(match[1]) * _UNITS[match[2]]


def parse_wrk(output: str) -> tuple[float, float, float, int]:
    """(req/s, p50 ms, p99 ms, errors) from ``wrk --latency`` output."""
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output)[1])  # type: ignore[index]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", output)[1])  # type: ignore[index]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", output)[1])  # type: ignore[index]
    errors = 0
    if match := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output):
        errors += int(match[1])
    if match := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    ):
        errors += sum(int(g) for g in match.groups())
    return rps, p50, p99, errors


def wrk(
    wrk_bin: str,
    port: int,
    scenario: Scenario,
    seconds: float,
    cpus: list[int],
    threads: int,
    conns: int,
) -> str:
    cmd = [
        wrk_bin,
        f"-t{threads}",
        f"-c{conns}",
        f"-d{max(1, round(seconds))}s",
        "--latency",
        "--timeout",
        "5s",
    ]
    for line in load_fields(scenario.header):  # the scenario's field, then --fields'
        cmd += ["-H", line]
    cmd.append(f"http://127.0.0.1:{port}{scenario.path}")
    done = subprocess.run(
        cmd,
        preexec_fn=pinned(cpus),
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=True,
    )
    return done.stdout


# ---- checks ----------------------------------------------------------------------------------


async def _one_get(port: int, path: str) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    return int(data.split(b" ", 2)[1])


def coalescing_check(port: int, n: int = 100) -> dict[str, Any]:
    """``n`` concurrent misses on one fresh key: how often did the view run?"""

    def calls() -> int:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/calls")
        value = int(json.loads(conn.getresponse().read())["calls"])
        conn.close()
        return value

    path = f"/coalesce?k={uuid.uuid4().hex}"
    before = calls()

    async def burst() -> list[int]:
        return await asyncio.gather(*(_one_get(port, path) for _ in range(n)))

    statuses = asyncio.run(burst())
    return {
        "requests": n,
        "ok": sum(s == 200 for s in statuses),
        "view_calls": calls() - before,
    }


def probe(port: int, scenario: Scenario) -> dict[str, str]:
    """Headers of the second response (the first fills a cache), to show what was measured."""
    headers = dict([scenario.header.split(": ", 1)]) if scenario.header else {}
    get(port, scenario.path, headers)
    status, got = get(port, scenario.path, headers)
    keep = ("content-type", "content-encoding", "age", "content-length", "x-cache", "etag", "vary")
    return {"status": str(status), **{k: got[k] for k in keep if k in got}}


# ---- the run ---------------------------------------------------------------------------------


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {
        "python": platform.python_version(),
        "machine": platform.processor() or platform.machine(),
    }
    for dist in (
        "quart",
        "uvicorn",
        "uvloop",
        "httptools",
        "hypercorn",
        "fastapi",
        "flask",
        "gunicorn",
        "orjson",
        "sanic",
        "litestar",
        "msgspec",
        "starlette",
        "blacksheep",
        "falcon",
        "robyn",
    ):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "-"
    try:
        model = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
        out["cpu"] = model
    except (OSError, StopIteration):
        pass
    out["cpus"] = str(os.cpu_count())
    return out


def print_table(results: list[Result]) -> None:
    print(
        f"\n{'scenario':22} {'contender':24} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8}"
        f" {'x bare':>7} {'x same':>7} {'cpu us':>7} err"
    )
    for scenario in SCENARIOS:
        for r in results:
            if r.scenario == scenario.name and r.workers == 1:
                ratio = f"{r.ratio:.2f}" if r.ratio is not None else "-"
                same = f"{r.same_server_ratio:.2f}" if r.same_server_ratio is not None else "-"
                cpu = f"{r.cpu_us:.1f}" if r.cpu_us else "-"
                print(
                    f"{scenario.name:22} {LABELS[r.contender]:24} {r.rps:10.0f} "
                    f"{r.p50_ms:8.2f} {r.p99_ms:8.2f} {ratio:>7} {same:>7} {cpu:>7} {r.errors}"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of warm-up per scenario")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument(
        "--contenders",
        help=f"names or groups ({', '.join(GROUPS)}), comma-separated; default all, or field",
    )
    parser.add_argument(
        "--scenarios", help="comma-separated; default all, or plaintext,json,path-param for --field"
    )
    parser.add_argument(
        "--workers", help="aeros worker counts to scale ('' skips); default 1,2,4,8, '' for --field"
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per measurement (median)")
    parser.add_argument("--quick", action="store_true", help="1 s per scenario, no warm-up")
    parser.add_argument(
        "--field",
        action="store_true",
        help="the frameworks users pick instead: field group, uncached scenarios, no scaling",
    )
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "results.json"))
    add_fields_option(parser)
    args = parser.parse_args()
    os.environ[FIELDS_VARIABLE] = args.fields
    if args.quick:
        args.duration, args.warmup = 1.0, 0.0
    if args.contenders is None:
        args.contenders = "field" if args.field else "all"
    if args.scenarios is None:
        args.scenarios = ",".join(UNCACHED if args.field else (s.name for s in SCENARIOS))
    if args.workers is None:
        args.workers = "" if args.field else "1,2,4,8"
    try:
        contenders = expand_contenders(args.contenders)
    except ValueError as exc:
        parser.error(f"--contenders: {exc}")
    wanted = {n for n in args.scenarios.split(",") if n}
    if unknown := wanted - {s.name for s in SCENARIOS}:
        parser.error(
            f"--scenarios: unknown {', '.join(sorted(unknown))!r};"
            f" choose from {', '.join(s.name for s in SCENARIOS)}"
        )

    wrk_bin = os.environ.get("WRK") or shutil.which("wrk")
    if wrk_bin is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    scenarios = [s for s in SCENARIOS if s.name in wanted]
    server_cpus, client_cpus = [args.server_cpu], [args.client_cpu]
    started = time.monotonic()
    checks: dict[str, Any] = {}
    if "aeros-redis" in contenders or "aeros-tiered" in contenders:
        start_bench_redis(client_cpus)  # Redis shares the client's CPU, not the server's

    runs: dict[tuple[str, str], list[Result]] = {}
    for round_ in range(args.repeat):  # repeats interleave contenders, so drift hits them alike
        # and each round starts with the next one, so none is always first (after a pause,
        # with the CPU at its coolest) or always right after the same neighbour
        shift = round_ % len(contenders)
        for contender in contenders[shift:] + contenders[:shift]:
            try:
                process, port = start_server(contender, 1, server_cpus)
            except RuntimeError as exc:
                print(f"!! {exc}", file=sys.stderr)
                continue
            try:
                for scenario in scenarios:
                    if scenario.only is not None and contender not in scenario.only:
                        continue
                    seen = probe(port, scenario)
                    if args.warmup:
                        wrk(wrk_bin, port, scenario, args.warmup, client_cpus, 1, args.connections)
                    before = cpu_seconds(process.pid)
                    out = wrk(
                        wrk_bin, port, scenario, args.duration, client_cpus, 1, args.connections
                    )
                    used = cpu_seconds(process.pid) - before
                    rps, p50, p99, errors = parse_wrk(out)
                    cpu_us = used / (rps * args.duration) * 1e6 if rps else None
                    result = Result(
                        contender, scenario.name, rps, p50, p99, errors, probe=seen, cpu_us=cpu_us
                    )
                    runs.setdefault((contender, scenario.name), []).append(result)
                    print(
                        f"{contender:16} {scenario.name:22} {rps:10.0f} req/s"
                        f"  p50 {p50:.2f} ms  p99 {p99:.2f} ms  cpu {cpu_us or 0:.1f} us/req",
                        flush=True,
                    )
                if contender == "aeros" and "coalescing" not in checks:
                    checks["coalescing"] = coalescing_check(port)
                    print(f"coalescing: {checks['coalescing']}", flush=True)
            finally:
                stop_server(process)
    results = [median_result(group) for group in runs.values()]

    bare = {(r.contender, r.scenario): r.rps for r in results if r.contender in BARE}
    for r in results:
        if ("bare", r.scenario) in bare:
            r.ratio = r.rps / bare["bare", r.scenario]
        same = bare.get((SAME_SERVER.get(r.contender, ""), r.scenario))
        if same:
            r.same_server_ratio = r.rps / same

    scaling: list[Result] = []
    worker_counts = [int(w) for w in args.workers.split(",") if w]
    total_cpus = os.cpu_count() or 2
    json_scenario = next(s for s in SCENARIOS if s.name == "json")
    for n in worker_counts:
        if 2 * n > total_cpus and n > 1:
            print(f"skipping {n} workers: {total_cpus} CPUs", file=sys.stderr)
            continue
        cpus = list(range(n))
        clients = list(range(n, min(total_cpus, n + max(2, min(4, total_cpus - n)))))
        process, port = start_server("aeros", n, cpus)
        try:
            threads = len(clients)
            conns = max(args.connections, 64 * n)
            if args.warmup:
                wrk(wrk_bin, port, json_scenario, args.warmup, clients, threads, conns)
            out = wrk(wrk_bin, port, json_scenario, args.duration, clients, threads, conns)
            rps, p50, p99, errors = parse_wrk(out)
            scaling.append(Result("aeros", "json", rps, p50, p99, errors, workers=n))
            print(
                f"aeros x{n} workers json {rps:10.0f} req/s  p50 {p50:.2f} ms  p99 {p99:.2f} ms",
                flush=True,
            )
        finally:
            stop_server(process)

    print_table(results)
    if (redis_ratio := redis_hit_ratio(results)) is not None:
        checks["redis_hit_over_json"] = round(redis_ratio, 2)
        print(f"\nRedisCache hit / uncached JSON (aeros): {redis_ratio:.2f}x")
    if (tiered_ratio := tiered_hit_ratio(results)) is not None:
        checks["tiered_hit_over_simple_hit"] = round(tiered_ratio, 2)
        print(f"\nTieredCache local hit / SimpleCache hit (aeros): {tiered_ratio:.2f}x")
    if scaling:
        print("\naeros worker scaling (JSON):")
        for r in scaling:
            print(
                f"  {r.workers} workers: {r.rps:10.0f} req/s"
                f"  p50 {r.p50_ms:.2f} ms  p99 {r.p99_ms:.2f} ms"
            )
    if "coalescing" in checks:
        c = checks["coalescing"]
        print(
            f"\n{c['requests']} concurrent misses on one cached key -> view ran "
            f"{c['view_calls']} time(s), {c['ok']} x 200"
        )

    doc = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seconds": round(time.monotonic() - started, 1),
        "settings": {
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "connections": args.connections,
            "repeat": args.repeat,
            "wrk_threads": 1,
            "fields": args.fields,
            "server_cpus": server_cpus,
            "client_cpus": client_cpus,
        },
        "environment": versions(),
        "scenarios": [asdict(s) for s in scenarios],
        "labels": LABELS,
        "results": [asdict(r) for r in results],
        "scaling": [asdict(r) for r in scaling],
        "checks": checks,
    }
    out_path = Path(args.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"\nwrote {out_path} in {doc['seconds']} s")


if __name__ == "__main__":
    main()
