"""What request ids and metrics cost per request, in microseconds, in process (no sockets).

    .venv/bin/python -m bench.observability              # table + bench/results/observability.json
    .venv/bin/python -m bench.observability --rounds 15  # more rounds on a busy machine

Two measurements, each the best of ``--rounds`` interleaved rounds (the least disturbed by
other work on the machine): the whole aeros app (:mod:`bench.inprocess`'s scenarios) plain,
with ``request_id=True``, with ``metrics=True`` and with both; and each layer alone around a
stub app that answers at once, which isolates the layer's own work from the app's noise.
Loopback throughput is ``python -m bench.run --contenders observability``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from aeros.metrics.export import Exporter
from aeros.metrics.layer import AppBytesMiddleware, MetricsMiddleware
from aeros.middleware.request_id import RequestIdMiddleware
from aeros.types import HEADER_LINES, RESPONSE_DONE, ROUTE
from bench import apps
from bench.inprocess import measure, new_loop, request_done

SCENARIOS = ("json", "path-param", "cached-hit")
OUT = Path(__file__).resolve().parent / "results" / "observability.json"

_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"application/json"), (b"content-length", b"27")],
}
_BODY = {"type": "http.response.body", "body": b'{"message":"Hello, World!"}'}


async def _stub(scope: dict[str, Any], receive: Any, send: Any) -> None:
    box = scope.get(ROUTE)
    if box is not None:  # what routing does for the metrics
        box[0] = "/json"
    await send(dict(_START))
    await send(_BODY)


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _send(message: Any) -> None:
    return None


def _scope() -> dict[str, Any]:
    return {
        "type": "http",
        "method": "GET",
        "path": "/json",
        "headers": [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"bench")],
        "client": ("127.0.0.1", 50000),
        "state": {},
        HEADER_LINES: [],  # as aeros' server makes it
        RESPONSE_DONE: [],
    }


def layer_costs(rounds: int, n: int) -> dict[str, float]:
    """Microseconds each layer adds around an app that answers at once."""
    exporter = Exporter()
    layers = {
        "stub app": _stub,
        "request id": RequestIdMiddleware(_stub, "X-Request-ID", ("127.0.0.1",)),
        "metrics": MetricsMiddleware(
            AppBytesMiddleware(_stub, exporter), exporter, "/metrics", lambda scope: "/json"
        ),
    }

    async def main() -> dict[str, float]:
        best = dict.fromkeys(layers, float("inf"))
        for _ in range(rounds):
            for name, app in layers.items():
                start = time.perf_counter()
                for _ in range(n):
                    scope = _scope()
                    await app(scope, _receive, _send)
                    request_done(scope, 200, 27)
                best[name] = min(best[name], (time.perf_counter() - start) / n * 1e6)
        return {name: cost - best["stub app"] for name, cost in best.items() if name != "stub app"}

    return new_loop().run_until_complete(main())


def app_costs(rounds: int, n: int) -> dict[str, dict[str, float]]:
    """Microseconds per request of the whole app, plain and with each feature on."""
    contenders = {
        "aeros": apps.make_aeros_app(),
        "request ids": apps.make_aeros_app(request_id=True),
        "metrics": apps.make_aeros_app(metrics=True),
        "both": apps.make_aeros_app(request_id=True, metrics=True),
    }
    best = {name: dict.fromkeys(SCENARIOS, float("inf")) for name in contenders}
    for _ in range(rounds):
        for scenario in SCENARIOS:
            for name, app in contenders.items():
                best[name][scenario] = min(best[name][scenario], measure(app, scenario, n))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("-n", type=int, default=2000, help="requests per app measurement")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()
    layers = layer_costs(args.rounds, args.n * 10)
    print(
        "layer alone (us added per request): "
        + ", ".join(f"{k} {v:.2f}" for k, v in layers.items())
    )
    whole = app_costs(args.rounds, args.n)
    print(f"{'us/request':14}" + "".join(f"{name:>16}" for name in whole))
    for scenario in SCENARIOS:
        base = whole["aeros"][scenario]
        cells = "".join(
            f"{whole[name][scenario]:9.1f} ({whole[name][scenario] / base:4.2f})" for name in whole
        )
        print(f"{scenario:14}{cells}")
    Path(args.out).write_text(json.dumps({"layers": layers, "apps": whole}, indent=2) + "\n")


if __name__ == "__main__":
    main()
