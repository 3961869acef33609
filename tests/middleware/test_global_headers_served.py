"""On aeros' server the global headers are written by the server (``HEADER_LINES``) only where
no layer outside the headers layer looks at a response's headers; where one does (user
middleware, CORS, an ``asgi_app`` replaced on the instance), it still sees them on the response
start, as under any other server. Over real HTTP."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from aeros import CORS, WebServer
from aeros.types import ASGIApp, Message, Receive, Scope, Send


def served(app: WebServer, *requests: tuple[str, dict[str, str]]) -> list[httpx.Response]:
    with (
        app.serve_in_thread(host="127.0.0.1", port=0, timeout=10.0) as url,
        httpx.Client(base_url=url) as client,
    ):
        return [client.get(path, headers=headers) for path, headers in requests]


def make_app(**options: Any) -> WebServer:
    app = WebServer(
        __name__,
        access_log=False,
        global_headers={"X-Frame-Options": "DENY", "Vary": "Accept-Language"},
        **options,
    )

    @app.route("/page")
    async def page() -> str:
        return "page"

    @app.route("/own")
    async def own() -> tuple[str, dict[str, str]]:
        return "own", {"X-Frame-Options": "SAMEORIGIN"}

    return app


def stripping(app: ASGIApp) -> Callable[[Scope, Receive, Send], Any]:
    """A user layer that removes X-Frame-Options from what it sends and notes what it saw."""

    async def layer(scope: Scope, receive: Receive, send: Send) -> None:
        async def strip(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = [name for name, _ in message.get("headers", ())]
                layer.seen.append(names)  # type: ignore[attr-defined]
                message["headers"] = [
                    pair for pair in message["headers"] if pair[0] != b"x-frame-options"
                ]
            await send(message)

        await app(scope, receive, strip)

    layer.seen = []  # type: ignore[attr-defined]
    stripping.last = layer  # type: ignore[attr-defined]
    return layer


def test_global_headers_alone_are_written_once_and_give_way_to_the_views() -> None:
    page, own = served(make_app(), ("/page", {}), ("/own", {}))
    assert page.headers.get_list("x-frame-options") == ["DENY"]
    assert page.headers.get_list("server") == ["aeros"]
    assert own.headers.get_list("x-frame-options") == ["SAMEORIGIN"]


def test_user_middleware_sees_and_changes_the_global_headers() -> None:
    app = make_app()
    app.add_middleware(stripping)
    (page,) = served(app, ("/page", {}))
    assert b"x-frame-options" in stripping.last.seen[0]  # type: ignore[attr-defined]
    assert "x-frame-options" not in page.headers
    assert page.headers.get_list("server") == ["aeros"]


def test_an_asgi_app_replaced_on_the_instance_sees_the_global_headers() -> None:
    app = make_app()
    app.asgi_app = stripping(app.asgi_app)  # type: ignore[method-assign]
    (page,) = served(app, ("/page", {}))
    assert b"x-frame-options" in stripping.last.seen[0]  # type: ignore[attr-defined]
    assert "x-frame-options" not in page.headers


def test_cors_merges_its_vary_with_the_global_one() -> None:
    app = make_app(cors=CORS(["https://a.example"]), compression=None)
    (page,) = served(app, ("/page", {"Origin": "https://a.example"}))
    vary = {token.strip().lower() for token in page.headers["vary"].split(",")}
    assert {"accept-language", "origin"} <= vary
    assert page.headers.get_list("x-frame-options") == ["DENY"]
