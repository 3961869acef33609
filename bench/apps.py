"""The benchmark contenders: one app per framework, each serving the same routes.

Routes (every contender that can, answers each of them with the same bytes):

- ``/plaintext``      ``Hello, World!`` as text/plain
- ``/json``           ``{"message": "Hello, World!"}``
- ``/items/<int:id>`` ``{"id": id}`` (path parameter parsed by the router)
- ``/big``            a 20 KB JSON document, serialised per request (gzip when accepted)
- ``/sleep``          ``await asyncio.sleep(0.01)`` then plaintext (concurrency)
- ``/cached``         ``@app.cache()`` small JSON (aeros; the bare app serves constant bytes)
- ``/cached-big``     ``@app.cache()`` 20 KB JSON (aeros; the bare app serves constant bytes)
- ``/coalesce``       ``@app.cache()`` view that counts its calls and sleeps 50 ms
- ``/calls``          how many times ``/coalesce`` ran (not cached)

Importing this module builds every app; the launchers in :mod:`bench.serve` pick one.
"""

from __future__ import annotations

import asyncio
import gzip
import time
from typing import Any

import orjson

MESSAGE = {"message": "Hello, World!"}
PLAINTEXT = b"Hello, World!"


def make_big_document() -> list[dict[str, Any]]:
    """A deterministic JSON document of about 20 KB (list of product records)."""
    return [
        {
            "id": i,
            "name": f"product-{i:04d}",
            "price": round(i * 1.37, 2),
            "tags": ["alpha", "beta", "gamma"][: 1 + i % 3],
            "in_stock": i % 2 == 0,
        }
        for i in range(230)
    ]


BIG = make_big_document()
BIG_BYTES = orjson.dumps(BIG)
BIG_GZIP = gzip.compress(BIG_BYTES, compresslevel=2)
COALESCE_DELAY = 0.05

# ---------------------------------------------------------------------------------------------
# bare ASGI: the ceiling. Constant bytes where a perfect cache would serve constant bytes.


def _ae_gzip(scope: dict[str, Any]) -> bool:
    for name, value in scope["headers"]:
        if name == b"accept-encoding":
            return b"gzip" in value
    return False


async def bare_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A hand-written ASGI app: routing by a dict lookup, orjson, no framework."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    path = scope["path"]
    ctype = b"application/json"
    extra: list[tuple[bytes, bytes]] = []
    if path == "/plaintext":
        body, ctype = PLAINTEXT, b"text/plain; charset=utf-8"
    elif path == "/json":
        body = orjson.dumps(MESSAGE)
    elif path.startswith("/items/"):
        body = orjson.dumps({"id": int(path[7:])})
    elif path == "/big":
        body = orjson.dumps(BIG)
        if _ae_gzip(scope):
            body = gzip.compress(body, compresslevel=2)
            extra = [(b"content-encoding", b"gzip"), (b"vary", b"Accept-Encoding")]
    elif path == "/cached":
        body = b'{"message":"Hello, World!"}'
    elif path == "/cached-big":
        body = BIG_BYTES
        if _ae_gzip(scope):
            body = BIG_GZIP
            extra = [(b"content-encoding", b"gzip"), (b"vary", b"Accept-Encoding")]
    elif path == "/sleep":
        await asyncio.sleep(0.01)
        body, ctype = PLAINTEXT, b"text/plain; charset=utf-8"
    else:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    headers = [(b"content-type", ctype), (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# ---------------------------------------------------------------------------------------------
# aeros and stock Quart: the same view code.


def _quart_routes(app: Any, jsonify: Any = None) -> None:
    """The uncached routes, written as Quart's docs write them; ``jsonify``: the framework's
    own (aeros passes ``aeros.jsonify``, as its README writes it)."""
    if jsonify is None:
        from quart import jsonify

    @app.route("/plaintext")
    async def plaintext() -> Any:
        return PLAINTEXT, 200, {"content-type": "text/plain; charset=utf-8"}

    @app.route("/json")
    async def json_() -> Any:
        return jsonify(MESSAGE)

    @app.route("/items/<int:item_id>")
    async def item(item_id: int) -> Any:
        return jsonify({"id": item_id})

    @app.route("/big")
    async def big() -> Any:
        return jsonify(BIG)

    @app.route("/sleep")
    async def sleep() -> Any:
        await asyncio.sleep(0.01)
        return PLAINTEXT, 200, {"content-type": "text/plain; charset=utf-8"}


def make_aeros_app(cache: Any = None, **options: Any) -> Any:
    """aeros as a user would write it: cache and default compression on, access log off.

    ``cache``: the store (default a SimpleCache; bench.serve's ``aeros-redis`` passes a
    RedisCache). ``options`` are more WebServer options (``request_id=True``,
    ``metrics=True``: the contenders that measure what those cost)."""
    from aeros import SimpleCache, WebServer, jsonify

    app = WebServer(
        "bench_aeros",
        cache=cache if cache is not None else SimpleCache(timeout=3600, threshold=100_000),
        # no contender logs requests (aeros' log is on by default: aeros-access-log)
        access_log=options.pop("access_log", False),
        log_level=options.pop("log_level", "warning"),
        **options,
    )
    _quart_routes(app, jsonify)
    calls = [0]

    @app.route("/cached")
    @app.cache(timeout=3600)
    async def cached() -> Any:
        return jsonify(MESSAGE)

    @app.route("/cached-big")
    @app.cache(timeout=3600)
    async def cached_big() -> Any:
        return jsonify(BIG)

    @app.route("/coalesce")
    @app.cache(timeout=3600)
    async def coalesce() -> Any:
        calls[0] += 1
        await asyncio.sleep(COALESCE_DELAY)
        return jsonify({"calls": calls[0]})

    @app.route("/calls")
    async def count_calls() -> Any:
        return jsonify({"calls": calls[0]})

    return app


def make_aeros_ratelimit_app() -> Any:
    """:func:`make_aeros_app` with an app-wide rate limit in memory, per client address, high
    enough never to refuse: what counting every request costs (issue 14's <= 5 % target)."""
    from aeros import RateLimit

    return make_aeros_app(rate_limit=RateLimit("1000000000/minute"))


def make_quart_app() -> Any:
    """Stock Quart, defaults untouched."""
    from quart import Quart

    app = Quart("bench_quart")
    _quart_routes(app)
    return app


def make_fastapi_app() -> Any:
    """FastAPI as its docs write it (views return dicts), with GZipMiddleware at aeros' defaults."""
    from fastapi import FastAPI
    from fastapi.middleware.gzip import GZipMiddleware
    from fastapi.responses import PlainTextResponse

    app = FastAPI()
    app.add_middleware(GZipMiddleware, minimum_size=500, compresslevel=2)

    @app.get("/plaintext", response_class=PlainTextResponse)
    async def plaintext() -> PlainTextResponse:
        return PlainTextResponse(PLAINTEXT)

    @app.get("/json")
    async def json_() -> dict[str, Any]:
        return MESSAGE

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, Any]:
        return {"id": item_id}

    @app.get("/big")
    async def big() -> list[dict[str, Any]]:
        return BIG

    @app.get("/sleep", response_class=PlainTextResponse)
    async def sleep() -> PlainTextResponse:
        await asyncio.sleep(0.01)
        return PlainTextResponse(PLAINTEXT)

    return app


def make_flask_app() -> Any:
    """Flask, defaults untouched (served by Gunicorn's threaded worker)."""
    from flask import Flask, jsonify

    app = Flask("bench_flask")

    @app.route("/plaintext")
    def plaintext() -> Any:
        return PLAINTEXT, 200, {"content-type": "text/plain; charset=utf-8"}

    @app.route("/json")
    def json_() -> Any:
        return jsonify(MESSAGE)

    @app.route("/items/<int:item_id>")
    def item(item_id: int) -> Any:
        return jsonify({"id": item_id})

    @app.route("/big")
    def big() -> Any:
        return jsonify(BIG)

    @app.route("/sleep")
    def sleep() -> Any:
        time.sleep(0.01)
        return PLAINTEXT, 200, {"content-type": "text/plain; charset=utf-8"}

    return app


def __getattr__(name: str) -> Any:
    """Build an app on first access (``uvicorn bench.apps:quart_app``), not at import."""
    makers = {
        "aeros_app": make_aeros_app,
        "quart_app": make_quart_app,
        "fastapi_app": make_fastapi_app,
        "flask_app": make_flask_app,
    }
    if name in makers:
        app = makers[name]()
        globals()[name] = app
        return app
    raise AttributeError(name)
