"""aeros' server enters a WebServer's layers directly, and still honours what users replace."""

from __future__ import annotations

from typing import Any

import httpx

from aeros import WebServer


def make_app(cls: type[WebServer] = WebServer) -> WebServer:
    app = cls(__name__, access_log=False)

    @app.route("/")
    async def home() -> str:
        return "home"

    return app


def test_a_plain_webserver_is_entered_at_its_layer_stack(live_server) -> None:
    app = make_app()
    entry = app.server_entry()
    assert entry.__self__ is app
    assert entry.__func__ is WebServer._enter
    with live_server(app) as url:
        assert httpx.get(url + "/").text == "home"


def test_asgi_app_wrapped_while_serving_is_honoured(live_server) -> None:
    """``app.asgi_app = Middleware(app.asgi_app)`` works as on stock Quart, even after the
    first request."""
    app = make_app()
    seen: list[str] = []
    inner = app.asgi_app

    async def wrapper(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            seen.append(scope["path"])
        await inner(scope, receive, send)

    with live_server(app) as url, httpx.Client(base_url=url) as client:
        assert client.get("/").text == "home"
        app.asgi_app = wrapper  # type: ignore[method-assign]
        assert client.get("/").text == "home"
    assert seen == ["/"]


def test_a_subclass_overriding_call_or_asgi_app_is_called_as_it_is(live_server) -> None:
    calls: list[str] = []

    class OwnCall(WebServer):
        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                calls.append("__call__")
            await super().__call__(scope, receive, send)

    class OwnAsgiApp(WebServer):
        async def asgi_app(self, scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                calls.append("asgi_app")
            await super().asgi_app(scope, receive, send)

    for cls in (OwnCall, OwnAsgiApp):
        app = make_app(cls)
        assert app.server_entry() is app
        with live_server(app) as url:
            assert httpx.get(url + "/").text == "home"
    assert calls == ["__call__", "asgi_app"]
