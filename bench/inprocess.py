"""Per-request cost in microseconds: call each ASGI app directly in a tight, bounded loop.

No sockets and no server: this isolates the framework's own work per request (routing,
request/response objects, context, hooks, JSON, the aeros layers).

    .venv/bin/python -m bench.inprocess                 # table: aeros vs stock Quart (+ bare)
    .venv/bin/python -m bench.inprocess --profile json  # cProfile of aeros on one scenario
    .venv/bin/python -m bench.inprocess --steps         # aeros' cost per step (bench/steps.py)
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import pstats
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aeros.types import HEADER_LINES, RESPONSE_DONE
from bench import apps

ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]

SCENARIOS: dict[str, tuple[str, list[tuple[bytes, bytes]]]] = {
    "plaintext": ("/plaintext", []),
    "json": ("/json", []),
    "path-param": ("/items/42", []),
    "json-20k": ("/big", []),
    "json-20k-gzip": ("/big", [(b"accept-encoding", b"gzip, deflate")]),
    "cached-hit": ("/cached", []),
    "cached-20k-gzip-hit": ("/cached-big", [(b"accept-encoding", b"gzip, deflate")]),
}


def make_scope(path: str, extra: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    """A scope as aeros' server builds it for ``GET path`` over HTTP/1.1 (uvicorn's, and the
    lists where layers put header lines for the server to write and callbacks for the end of
    the request: ``HEADER_LINES``, ``RESPONSE_DONE``)."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "scheme": "http",
        "method": "GET",
        "root_path": "",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"bench"), *extra],
        "state": {},
        HEADER_LINES: [],
        RESPONSE_DONE: [],
    }


async def run_requests(app: ASGIApp, path: str, extra: list[tuple[bytes, bytes]], n: int) -> int:
    """Serve ``n`` requests one after another; returns the status of the last one."""
    last = _Client()
    for _ in range(n):
        last = _Client()
        scope = make_scope(path, extra)
        await app(scope, last.receive, last.send)
        request_done(scope, last.status, last.size)
    return last.status


def request_done(scope: dict[str, Any], status: int, size: int) -> None:
    """What aeros' server does when a request ends: call the ``RESPONSE_DONE`` callbacks, then
    drop them (they refer to the scope: kept, each request would leave a reference cycle)."""
    done = scope[RESPONSE_DONE]
    for callback, layer_scope in done:  # (callback, the scope of the layer that added it)
        callback(layer_scope, status, size)
    done.clear()


class _Client:
    """One request's client: an empty body, then (as uvicorn does once the response is
    complete) a disconnect, which Quart 0.23 waits for before its ASGI call returns."""

    def __init__(self) -> None:
        self.status = 0
        self.size = 0
        self.body_sent = False
        self.complete = asyncio.Event()

    async def receive(self) -> dict[str, Any]:
        if not self.body_sent:
            self.body_sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self.complete.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        elif message["type"] == "http.response.body":
            self.size += len(message.get("body", b""))
            if not message.get("more_body"):
                self.complete.set()


def measure(app: ASGIApp, scenario: str, n: int) -> float:
    """Microseconds per request of ``app`` on ``scenario`` (after a warm-up)."""
    path, extra = SCENARIOS[scenario]

    async def main() -> float:
        status = await run_requests(app, path, extra, 300)  # warm-up, fills caches
        if status != 200:
            raise RuntimeError(f"{scenario}: status {status}")
        best = float("inf")
        for _ in range(3):  # best of three: the least disturbed by other work on the machine
            start = time.perf_counter()
            await run_requests(app, path, extra, n)
            best = min(best, (time.perf_counter() - start) / n * 1e6)
        return best

    return new_loop().run_until_complete(main())


def new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop is a dependency of aeros
        return asyncio.new_event_loop()


def contenders() -> dict[str, ASGIApp]:
    return {
        "bare": apps.bare_app,
        "aeros": apps.make_aeros_app(),
        "aeros+rid": apps.make_aeros_app(request_id=True),
        "aeros+metrics": apps.make_aeros_app(metrics=True),
        "aeros-ratelimit": apps.make_aeros_ratelimit_app(),
        "quart": apps.make_quart_app(),
    }


def table(n: int) -> dict[str, dict[str, float | None]]:
    results: dict[str, dict[str, float | None]] = {}
    for name, app in contenders().items():
        row: dict[str, float | None] = {}
        for scenario in SCENARIOS:
            if name == "quart" and scenario.startswith("cached"):
                row[scenario] = None
                continue
            row[scenario] = measure(app, scenario, n)
        results[name] = row
    return results


def print_table(results: dict[str, dict[str, float | None]]) -> None:
    names = list(results)
    widths = [max(10, len(n) + 2) for n in names]
    header = "".join(f"{n:>{w}}" for n, w in zip(names, widths, strict=True))
    print(f"{'scenario (us/request)':24}{header}  quart/aeros  limit/aeros")
    for scenario in SCENARIOS:
        cells = [results[n][scenario] for n in names]
        line = f"{scenario:24}" + "".join(
            f"{c:{w}.1f}" if c else f"{'-':>{w}}" for c, w in zip(cells, widths, strict=True)
        )
        aeros, quart = results["aeros"][scenario], results["quart"][scenario]
        line += f"  {quart / aeros:10.2f}x" if aeros and quart else f"  {'-':>11}"
        limited = results.get("aeros-ratelimit", {}).get(scenario)
        if aeros and limited:
            line += f"  {limited / aeros:10.3f}x"  # the rate limit's cost, as a ratio
        print(line)


def profile(scenario: str, n: int, top: int) -> str:
    app = apps.make_aeros_app()
    path, extra = SCENARIOS[scenario]
    loop = new_loop()
    loop.run_until_complete(run_requests(app, path, extra, 300))
    profiler = cProfile.Profile()
    profiler.enable()
    loop.run_until_complete(run_requests(app, path, extra, n))
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=5000, help="requests per measurement")
    parser.add_argument("--profile", metavar="SCENARIO", choices=list(SCENARIOS))
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--json", metavar="FILE", help="also write the table as JSON")
    parser.add_argument(
        "--steps",
        action="store_true",
        help="aeros' cost per step (request, routing, context, view, response, send, layers)",
    )
    parser.add_argument("--rounds", type=int, default=7, help="--steps: rounds (minimum kept)")
    parser.add_argument(
        "--scenarios", default="plaintext,json,path-param", help="--steps: comma-separated"
    )
    args = parser.parse_args()
    if args.profile:
        print(profile(args.profile, args.n, args.top))
        return
    if args.steps:
        from bench.steps import print_steps, steps_table

        steps = steps_table(args.n, args.rounds, [s for s in args.scenarios.split(",") if s])
        print_steps(steps)
        if args.json:
            with open(args.json, "w") as fh:
                json.dump(steps, fh, indent=2)
        return
    results = table(args.n)
    print_table(results)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
