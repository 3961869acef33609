"""What an app-wide rate limit costs per request: aeros with and without ``RateLimit``.

    .venv/bin/python -m bench.ratelimit            # in process, interleaved rounds
    .venv/bin/python -m bench.run --contenders ratelimit --scenarios json,cached-hit --workers ''

The two apps (:func:`bench.apps.make_aeros_app` and :func:`bench.apps.make_aeros_ratelimit_app`,
``RateLimit("1000000000/minute")`` in memory, counted per client address, never refusing) serve
the same requests in alternating rounds in one process, so drift on a shared machine hits both
alike; the best round of each is the least disturbed estimate of its cost. The layer alone
(around an app that answers at once) is measured the same way.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from aeros.types import HEADER_LINES, RESPONSE_DONE
from bench import apps
from bench.inprocess import SCENARIOS, make_scope, new_loop, run_requests


async def _answer(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"x", "more_body": False})


def layer_alone() -> Any:
    """The rate-limit layer around an app that answers at once, as the app builds it."""
    from aeros import RateLimit, WebServer
    from aeros.ratelimit.layer import rate_limit_layer

    app = WebServer("bench_ratelimit", rate_limit=RateLimit("1000000000/minute"))
    return rate_limit_layer(_answer, app.rate_limits, None)


def rounds(pair: dict[str, Any], scenario: str, n: int, count: int) -> dict[str, list[float]]:
    """Microseconds per request of each app, ``count`` alternating rounds of ``n``."""
    path, extra = SCENARIOS[scenario]
    loop = new_loop()
    times: dict[str, list[float]] = {name: [] for name in pair}
    for app in pair.values():
        loop.run_until_complete(run_requests(app, path, extra, 300))  # warm-up
    for _ in range(count):
        for name, app in pair.items():
            start = time.perf_counter()
            loop.run_until_complete(run_requests(app, path, extra, n))
            times[name].append((time.perf_counter() - start) / n * 1e6)
    return times


def layer_rounds(n: int, count: int) -> dict[str, list[float]]:
    """The layer alone against the bare answer, alternating rounds."""
    layer = layer_alone()
    loop = new_loop()
    scope = make_scope("/json", [])

    async def run(app: Any) -> None:
        for _ in range(n):
            await app({**scope, HEADER_LINES: [], RESPONSE_DONE: []}, None, _discard)  # as served

    times: dict[str, list[float]] = {"answer": [], "layer+answer": []}
    for _ in range(count):
        for name, app in (("answer", _answer), ("layer+answer", layer)):
            start = time.perf_counter()
            loop.run_until_complete(run(app))
            times[name].append((time.perf_counter() - start) / n * 1e6)
    return times


async def _discard(message: Any) -> None:
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    pair = {"aeros": apps.make_aeros_app(), "aeros-ratelimit": apps.make_aeros_ratelimit_app()}
    print(f"{'scenario (us/request)':22}{'aeros':>16}{'+ RateLimit':>16}{'cost':>9}{'ratio':>8}")
    for scenario in ("json", "plaintext", "cached-hit"):
        times = rounds(pair, scenario, args.n, args.rounds)
        plain, limited = min(times["aeros"]), min(times["aeros-ratelimit"])
        median = (statistics.median(times["aeros"]), statistics.median(times["aeros-ratelimit"]))
        print(
            f"{scenario:22}{plain:8.1f} ({median[0]:5.1f}){limited:8.1f} ({median[1]:5.1f})"
            f"{limited - plain:9.1f}{limited / plain:8.3f}"
        )
    times = layer_rounds(args.n * 5, args.rounds)
    print(
        f"the layer alone: {min(times['layer+answer']) - min(times['answer']):.2f} us per request"
        " (best rounds; medians in parentheses above)"
    )


if __name__ == "__main__":
    main()
