"""aeros' layers whose ``__call__`` is a plain function still look like ASGI 3 to servers and
middleware that tell ASGI 3 from ASGI 2 by asking ``iscoroutinefunction``."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import uvicorn
from asgiref.compatibility import guarantee_single_callable

from aeros import RateLimit, SimpleCache, WebServer
from aeros.asgi_entry import asgi3


def full_stack_app(**options: Any) -> WebServer:
    chosen: dict[str, Any] = {
        "cache": SimpleCache(),
        "request_id": True,
        "metrics": True,
        "rate_limit": RateLimit("1000/minute"),
        **options,
    }
    app = WebServer(__name__, **chosen)

    @app.route("/")
    async def home() -> str:
        return "home"

    return app


def layers_of(app: WebServer) -> list[Any]:
    found = []
    layer: Any = app.build_stack()
    while hasattr(layer, "app") and layer is not app:
        found.append(layer)
        layer = getattr(layer.app, "__self__", layer.app)  # the inner layer's __call__, bound
    return found


def test_every_layer_is_seen_as_asgi3_by_uvicorn_and_asgiref() -> None:
    """uvicorn's ``interface="auto"`` and asgiref's check call each layer ASGI 3."""
    # with compression off the metrics count the app's bytes in a layer of their own; two
    # windows take the general rate-limit layer
    layers = [
        *layers_of(full_stack_app()),
        *layers_of(full_stack_app(compression=None)),
        *layers_of(full_stack_app(rate_limit=RateLimit("10/second;1000/minute"))),
    ]
    names = {type(layer).__name__ for layer in layers}
    # the plain-function layers are all there
    assert {
        "RequestIdMiddleware",
        "MetricsMiddleware",
        "AccessLogMiddleware",
        "AppLimitMiddleware",  # the app-wide limit in memory
        "RateLimitMiddleware",
        "CacheMiddleware",
        "CompressionMiddleware",
        "AppBytesMiddleware",
    } <= names
    for layer in layers:
        config = uvicorn.Config(layer)
        config.load()
        assert config.interface == "asgi3", type(layer).__name__
        assert guarantee_single_callable(layer) is layer, type(layer).__name__


def test_a_marked_plain_function_serves_under_an_asgi3_detecting_wrapper() -> None:
    """An ASGI-2-or-3 guessing wrapper (asgiref's) around a marked plain function serves."""

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    @asgi3
    def plain(scope: Any, receive: Any, send: Any) -> Any:
        return inner(scope, receive, send)

    app = guarantee_single_callable(plain)

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.get("/")

    response = asyncio.run(call())
    assert response.status_code == 200
    assert response.text == "ok"
