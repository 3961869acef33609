"""A TieredCache local-tier hit against a SimpleCache hit, in process (no sockets).

``python -m bench.tiered_inprocess [-n 5000] [--rounds 5]``: starts its own redis-server on a
free loopback port (the shared tier), then measures microseconds per cached request through
aeros' whole ASGI stack for the same app on each store, interleaved, best of three per round
(the least disturbed by other work on the machine), and prints each round and the ratio of the
medians. docs/performance.md cites it.
"""

from __future__ import annotations

import argparse
import os
import statistics

from bench import apps
from bench.inprocess import measure
from bench.redis_server import start_bench_redis
from bench.serve import REDIS_URL_VARIABLE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=5000, help="requests per measurement")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    from aeros import RedisCache, SimpleCache, TieredCache

    start_bench_redis(list(os.sched_getaffinity(0)))
    url = os.environ[REDIS_URL_VARIABLE]
    simple = apps.make_aeros_app()
    tiered = apps.make_aeros_app(
        TieredCache(
            local=SimpleCache(timeout=3600, threshold=100_000),
            shared=RedisCache(url=url, timeout=3600),
        )
    )
    results: dict[str, list[float]] = {"SimpleCache": [], "TieredCache": []}
    for round_ in range(args.rounds):
        for name, app in (("SimpleCache", simple), ("TieredCache", tiered)):
            results[name].append(measure(app, "cached-hit", args.n))
        print(
            f"round {round_ + 1}: SimpleCache {results['SimpleCache'][-1]:.1f} us, "
            f"TieredCache {results['TieredCache'][-1]:.1f} us",
            flush=True,
        )
    simple_us = statistics.median(results["SimpleCache"])
    tiered_us = statistics.median(results["TieredCache"])
    print(
        f"median: SimpleCache hit {simple_us:.1f} us, TieredCache local hit {tiered_us:.1f} us: "
        f"{simple_us / tiered_us:.2f}x the SimpleCache hit's throughput"
    )


if __name__ == "__main__":
    main()
