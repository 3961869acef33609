"""Micro benchmark: cost of compressing a 20 KB JSON body, and of the compression layer itself.

Bounded and in-process (each case runs for about ``--seconds``). Measures:

1. one-shot gzip-compatible encoders at the default level (stdlib zlib, and isal / zlib-ng
   when installed: ``pip install isal zlib-ng``), plus brotli and zstd for reference:
   microseconds per body, MB/s of input, and ratio (identity size / encoded size);
2. the compression layer on a raw ASGI app: per-request overhead on a response it leaves
   alone (``image/png``), on a small JSON it only tags with ``Vary``, and the full cost on the
   20 KB JSON; next to a no-op layer that only wraps ``send`` (the floor for any layer);
3. the whole app in-process: a ``@app.cache`` route serving the 20 KB JSON from the response
   cache against an uncached route, counting how often gzip runs (a hit must not compress).

Run: ``.venv/bin/python bench/compression_codecs.py [--seconds 0.5] [--json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import random
import sys
import time
import zlib
from collections.abc import Callable
from typing import Any

from aeros import SimpleCache, WebServer
from aeros.compression import Br, Gzip, Zstd
from aeros.compression.layer import CompressionMiddleware


def make_json(size: int = 20_000, seed: int = 7) -> bytes:
    """A realistic API payload: a list of records with ids, names, tags and prose."""
    rng = random.Random(seed)
    words = ["alpha", "beta", "gamma", "delta", "kappa", "lambda", "omega", "sigma", "tau"]
    items = []
    body = b""
    while len(body) < size:
        n = len(items)
        items.append(
            {
                "id": n,
                "name": f"item {n} {rng.choice(words)}",
                "price": round(rng.uniform(1, 500), 2),
                "tags": rng.sample(words, 3),
                "in_stock": rng.random() < 0.7,
                "description": " ".join(rng.choice(words) for _ in range(rng.randint(5, 15))),
            }
        )
        body = json.dumps({"items": items}).encode()
    return body


def measure(fn: Callable[[], object], seconds: float) -> float:
    """Return seconds per call: best of 3 rounds of a loop sized to ``seconds`` / 3."""
    fn()
    start = time.perf_counter()
    loops = 0
    while time.perf_counter() - start < 0.02:
        fn()
        loops += 1
    per = (time.perf_counter() - start) / max(loops, 1)
    n = max(1, int(seconds / 3 / per))
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t0) / n)
    return best


def gzip_cases() -> list[tuple[str, Callable[[bytes], bytes]]]:
    cases: list[tuple[str, Callable[[bytes], bytes]]] = [
        ("zlib level 1", lambda d: zlib.compress(d, 1, wbits=31)),
        ("zlib level 2 (default)", lambda d: zlib.compress(d, 2, wbits=31)),
        ("zlib level 6", lambda d: zlib.compress(d, 6, wbits=31)),
    ]
    try:
        isal_zlib: Any = importlib.import_module("isal.isal_zlib")
        for level in (0, 1, 2, 3):
            cases.append(
                (f"isal level {level}", lambda d, lv=level: isal_zlib.compress(d, lv, wbits=31))
            )
    except ImportError:
        print("isal not installed: pip install isal", file=sys.stderr)
    try:
        zng: Any = importlib.import_module("zlib_ng.zlib_ng")
        for level in (1, 2, 6):
            cases.append(
                (f"zlib-ng level {level}", lambda d, lv=level: zng.compress(d, lv, wbits=31))
            )
    except ImportError:
        print("zlib-ng not installed: pip install zlib-ng", file=sys.stderr)
    br, zstd = Br(), Zstd()
    cases.append(("brotli quality 4 (Br default)", br.compress))
    cases.append(("zstd level 3 (Zstd default)", zstd.compress))
    return cases


def bench_codecs(body: bytes, seconds: float) -> list[dict[str, Any]]:
    rows = []
    for name, fn in gzip_cases():
        encoded = fn(body)
        if name.startswith(("zlib", "isal")):
            assert zlib.decompress(encoded, 47) == body, name
        per = measure(lambda fn=fn: fn(body), seconds)
        rows.append(
            {
                "case": name,
                "us": per * 1e6,
                "mb_s": len(body) / per / 1e6,
                "ratio": len(body) / len(encoded),
                "bytes": len(encoded),
            }
        )
    return rows


def asgi_app(content_type: bytes, body: bytes) -> Any:
    start = {
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-type", content_type), (b"content-length", b"%d" % len(body))],
    }

    async def app(scope: Any, receive: Any, send: Any) -> None:
        # fresh messages each time, as Quart builds them
        await send({**start, "headers": list(start["headers"])})
        await send({"type": "http.response.body", "body": body, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    return app


def bench_layer(body: bytes, seconds: float) -> list[dict[str, Any]]:
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "headers": [
            (b"host", b"localhost"),
            (b"accept", b"*/*"),
            (b"accept-encoding", b"gzip, deflate, br, zstd"),
            (b"user-agent", b"bench"),
        ],
    }

    async def receive() -> Any:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        return None

    cases = [
        ("image/png 20 KB (left alone)", b"image/png", body),
        ("application/json 100 B (under min_size)", b"application/json", body[:100]),
        ("application/json 20 KB (gzip level 2)", b"application/json", body),
    ]

    class NoopLayer:
        """The least any send-wrapping layer costs: one extra coroutine per message."""

        def __init__(self, app: Any) -> None:
            self.app = app

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            async def wrapped(message: Any) -> None:
                await send(message)

            await self.app(scope, receive, wrapped)

    rows = []
    loop = asyncio.new_event_loop()
    try:
        for name, ctype, payload in cases:
            inner = asgi_app(ctype, payload)
            layer = CompressionMiddleware(inner, (Gzip(),))

            def run(app: Any = inner, n: int = 200) -> None:
                async def many() -> None:
                    for _ in range(n):
                        await app(scope, receive, send)

                loop.run_until_complete(many())

            noop = NoopLayer(inner)
            bare = measure(lambda run=run, inner=inner: run(inner), seconds) / 200
            minimal = measure(lambda run=run, noop=noop: run(noop), seconds) / 200
            wrapped = measure(lambda run=run, layer=layer: run(layer), seconds) / 200
            rows.append(
                {
                    "case": name,
                    "bare_us": bare * 1e6,
                    "noop_layer_us": minimal * 1e6,
                    "layer_us": wrapped * 1e6,
                    "overhead_us": (wrapped - bare) * 1e6,
                }
            )
    finally:
        loop.close()
    return rows


def bench_cached(body: bytes, seconds: float) -> list[dict[str, Any]]:
    calls = [0]

    class CountingGzip(Gzip):
        def compress(self, data: bytes) -> bytes:
            calls[0] += 1
            return Gzip.compress(self, data)

    app = WebServer(
        __name__, access_log=False, cache=SimpleCache(timeout=600), compression=CountingGzip()
    )
    headers = {"Content-Type": "application/json"}

    @app.route("/cached")
    @app.cache(timeout=600)
    async def cached() -> Any:
        return body, 200, headers

    @app.route("/fresh")
    async def fresh() -> Any:
        return body, 200, headers

    async def receive() -> Any:
        return {"type": "http.request", "body": b"", "more_body": False}

    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    rows = []
    loop = asyncio.new_event_loop()
    try:
        for path in ("/cached", "/fresh"):
            scope = {
                "type": "http",
                "asgi": {"version": "3.0"},
                "http_version": "1.1",
                "method": "GET",
                "scheme": "http",
                "path": path,
                "raw_path": path.encode(),
                "root_path": "",
                "query_string": b"",
                "headers": [(b"host", b"bench"), (b"accept-encoding", b"gzip")],
                "server": ("127.0.0.1", 80),
                "client": ("127.0.0.1", 1),
            }

            served = [0]

            def run(scope: Any = scope, served: list[int] = served, n: int = 20) -> None:
                async def many() -> None:
                    for _ in range(n):
                        sent.clear()
                        await app.asgi_app(dict(scope), receive, send)

                loop.run_until_complete(many())
                served[0] += n

            run(n=1)  # fills the cache (and its gzip variant) for /cached
            before, served[0] = calls[0], 0
            per = measure(run, seconds) / 20
            start = next(m for m in sent if m["type"] == "http.response.start")
            assert (b"content-encoding", b"gzip") in start["headers"], path
            rows.append(
                {
                    "case": f"GET {path} (gzip accepted)",
                    "us": per * 1e6,
                    "gzip_calls_per_request": (calls[0] - before) / served[0],
                }
            )
    finally:
        loop.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.5, help="time per case (default 0.5)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    args = parser.parse_args()
    body = make_json()
    codecs = bench_codecs(body, args.seconds)
    layer = bench_layer(body, args.seconds)
    cached = bench_cached(body, args.seconds)
    if args.json:
        result = {"body_bytes": len(body), "codecs": codecs, "layer": layer, "cached": cached}
        print(json.dumps(result, indent=2))
        return
    print(f"one-shot encoding of a {len(body)} byte JSON body (python {sys.version.split()[0]})")
    print(f"{'case':34} {'us/body':>9} {'MB/s':>8} {'ratio':>6} {'bytes':>7}")
    for row in codecs:
        print(
            f"{row['case']:34} {row['us']:9.1f} {row['mb_s']:8.1f} "
            f"{row['ratio']:6.2f} {row['bytes']:7d}"
        )
    print("\ncompression layer, raw ASGI app, per request")
    print(f"{'case':42} {'bare us':>8} {'no-op us':>9} {'layer us':>9} {'overhead':>9}")
    for row in layer:
        print(
            f"{row['case']:42} {row['bare_us']:8.2f} {row['noop_layer_us']:9.2f} "
            f"{row['layer_us']:9.2f} {row['overhead_us']:9.2f}"
        )
    print("(no-op: a layer that only wraps send; overhead: layer minus bare app)")
    print("\nwhole app in-process (Quart included), 20 KB JSON")
    print(f"{'case':42} {'us/request':>10} {'gzip calls/request':>19}")
    for row in cached:
        print(f"{row['case']:42} {row['us']:10.1f} {row['gzip_calls_per_request']:19.2f}")


if __name__ == "__main__":
    main()
