"""The layer stack: one ordered list, and app.add_middleware's place in it (over real HTTP)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from quart import Quart

from aeros import CORS, ConfigurationError, SimpleCache, WebServer
from aeros.compression.layer import CompressionMiddleware
from aeros.middleware.access_log import AccessLogMiddleware
from aeros.middleware.concurrency_limit import ConcurrencyLimitMiddleware
from aeros.middleware.cors import CORSMiddleware
from aeros.middleware.headers import HeadersMiddleware
from aeros.stack import HeadNotesDropped


class Recorder:
    """A user's pure-ASGI layer: records each HTTP request it sees and tags the response."""

    def __init__(self, app: Any, seen: list[tuple[str, str]], tag: str = "yes") -> None:
        self.app = app
        self.seen = seen
        self.tag = tag.encode()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.seen.append((scope["method"], scope["path"]))
        if scope["path"] == "/blocked":  # answered by the user layer itself
            await send({"type": "http.response.start", "status": 403, "headers": []})
            await send({"type": "http.response.body", "body": b"no"})
            return

        async def tagged(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), (b"x-user-layer", self.tag)]
            await send(message)

        await self.app(scope, receive, tagged)


def test_layers_follow_the_documented_order() -> None:
    """layers() is DESIGN.md's order: access log, limit, CORS, user, cache, headers, compression."""
    app = WebServer(
        __name__,
        cache=SimpleCache(),
        cors=CORS(origins=["https://a.example"]),
        global_headers={"X-Frame-Options": "DENY"},
        max_concurrent_requests=5,
    )
    app.add_middleware(Recorder, [])
    names = [getattr(layer.factory, "__name__", "") for layer in app.layers()]
    assert names == [
        AccessLogMiddleware.__name__,
        ConcurrencyLimitMiddleware.__name__,
        CORSMiddleware.__name__,
        HeadNotesDropped.__name__,  # the user's layers may change the fields: none trusted
        Recorder.__name__,
        "wrap",  # the response cache (ResponseCache.wrap builds its layer)
        HeadersMiddleware.__name__,
        CompressionMiddleware.__name__,
    ]


def test_layers_leave_out_what_has_nothing_to_do() -> None:
    """Without logging, limit, CORS, headers or compression only the cache's slot remains."""
    app = WebServer(__name__, access_log=False, compression=None, include_server_header=False)
    assert [getattr(layer.factory, "__name__", "") for layer in app.layers()] == ["wrap"]


def test_add_middleware_sits_inside_access_log_and_cors_outside_the_cache(
    live_server, tmp_path: Path
) -> None:
    """The user layer sees cache hits, never a preflight; its header is sent; its calls logged."""
    log = tmp_path / "access.log"
    app = WebServer(
        __name__,
        cache=SimpleCache(),
        cors=CORS(origins=["https://a.example"]),
        access_log_format="common",
        access_log_file=str(log),
    )
    seen: list[tuple[str, str]] = []
    app.add_middleware(Recorder, seen, tag="outer")
    calls = 0

    @app.route("/item")
    @app.cache(timeout=60)
    async def item() -> str:
        nonlocal calls
        calls += 1
        return "cached body"

    with live_server(app) as url:
        first = httpx.get(url + "/item")
        second = httpx.get(url + "/item")
        blocked = httpx.get(url + "/blocked")
        preflight = httpx.options(
            url + "/item",
            headers={
                "Origin": "https://a.example",
                "Access-Control-Request-Method": "GET",
            },
        )
    assert calls == 1  # the second answer was a cache hit ...
    assert seen == [("GET", "/item"), ("GET", "/item"), ("GET", "/blocked")]  # saw the hit
    assert blocked.status_code == 403
    for response in (first, second):
        assert response.text == "cached body"
        assert response.headers["x-user-layer"] == "outer"
    assert preflight.status_code in (200, 204)
    assert preflight.headers["access-control-allow-origin"] == "https://a.example"
    assert "x-user-layer" not in preflight.headers  # CORS answered it before the user layer
    lines = log.read_text().splitlines()
    assert [line.split('"')[1:] for line in lines] == [
        ["GET /item HTTP/1.1", " 200 11"],
        ["GET /item HTTP/1.1", " 200 11"],
        ["GET /blocked HTTP/1.1", " 403 2"],  # the user layer's own answer is logged
        ["OPTIONS /item HTTP/1.1", " 204 -"],
    ]


async def test_add_middleware_last_added_runs_first() -> None:
    """Each add_middleware call wraps the layers added before it (Starlette's order)."""
    app = WebServer(__name__, access_log=False)
    seen: list[tuple[str, str]] = []
    order: list[str] = []

    class Named(Recorder):
        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            order.append(self.tag.decode())
            await super().__call__(scope, receive, send)

    app.add_middleware(Named, seen, tag="first")
    app.add_middleware(Named, seen, tag="second")

    @app.route("/")
    async def home() -> str:
        return "hi"

    response = await app.test_client().get("/")
    assert await response.get_data(as_text=True) == "hi"
    assert order == ["second", "first"]


async def test_add_middleware_refused_once_the_stack_is_built() -> None:
    """After the first request built the stack, add_middleware raises instead of being ignored."""
    app = WebServer(__name__, access_log=False)

    @app.route("/")
    async def home() -> str:
        return "hi"

    assert (await app.test_client().get("/")).status_code == 200
    with pytest.raises(RuntimeError, match=r"add_middleware\(Recorder\) after the layer stack"):
        app.add_middleware(Recorder, [])


def test_add_middleware_refused_once_serving_started(live_server) -> None:
    """run_server() seals the stack even before any request arrives."""
    app = WebServer(__name__, access_log=False)
    with live_server(app), pytest.raises(RuntimeError, match="before serving"):
        app.add_middleware(Recorder, [])


def test_add_middleware_refuses_a_non_callable() -> None:
    """A middleware that cannot be called is refused, naming the value."""
    with pytest.raises(ConfigurationError, match=r"add_middleware\('gzip'\)"):
        WebServer(__name__).add_middleware("gzip")  # type: ignore[arg-type]


async def test_concurrency_limit_is_a_layer_of_the_stack() -> None:
    """max_concurrent_requests is enforced by the app's own stack (also under other servers)."""
    app = WebServer(__name__, access_log=False, max_concurrent_requests=1)
    entered = asyncio.Event()
    release = asyncio.Event()

    @app.route("/slow")
    async def slow() -> str:
        entered.set()
        await release.wait()
        return "done"

    client = app.test_client()
    first = asyncio.ensure_future(client.get("/slow"))
    await entered.wait()  # the first request is in flight now
    refused = await client.get("/slow")
    release.set()
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    assert (await first).status_code == 200


class _OwnAsgiApp(Quart):
    """A class between aeros and Quart with an ``asgi_app`` of its own."""

    seen: ClassVar[list[str]] = []

    async def asgi_app(self, scope: Any, receive: Any, send: Any) -> None:
        self.seen.append(scope["type"])
        await super().asgi_app(scope, receive, send)


class _Mixed(WebServer, _OwnAsgiApp):
    pass


@pytest.mark.parametrize("app_class", [WebServer, _Mixed], ids=["quarts", "a-class-own"])
async def test_the_stack_ends_in_quarts_asgi_app_or_a_class_own(app_class: type[Any]) -> None:
    """The stack's innermost app is Quart's ``asgi_app``, without its coroutine for HTTP: the
    app's ``asgi_http_class`` (read per request) serves the request. A class between aeros and
    Quart with an ``asgi_app`` of its own keeps it for every request."""
    _OwnAsgiApp.seen = []
    app = app_class(__name__, access_log=False)

    @app.route("/")
    async def index() -> str:
        return "ok"

    made: list[str] = []

    class Counted(app.asgi_http_class):  # type: ignore[misc, name-defined]
        def __init__(self, *args: Any) -> None:
            made.append("http")
            super().__init__(*args)

    app.asgi_http_class = Counted  # set after construction: read per request
    client = app.test_client()
    for _ in range(2):
        answer = await client.get("/")
        assert (answer.status_code, await answer.get_data()) == (200, b"ok")
    assert made == ["http", "http"]
    assert _OwnAsgiApp.seen == ([] if app_class is WebServer else ["http", "http"])


def test_a_connection_class_whose_call_returns_a_value_serves_as_under_quart(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Another ``asgi_http_class`` goes through Quart's ``asgi_app``, which returns None
    whatever the class's ``__call__`` returns: aeros' server sees a proper ASGI app and keeps
    the connection open (a value returned would be an error: a 500 and a close)."""
    from tests.server.hardening.wire import connect, read_responses

    app = WebServer(__name__, access_log=False)

    @app.route("/")
    async def index() -> str:
        return "ok"

    class Returning(app.asgi_http_class):  # type: ignore[misc, name-defined]
        async def __call__(self, receive: Any, send: Any) -> Any:
            await super().__call__(receive, send)
            return "a value"

    app.asgi_http_class = Returning
    request = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"
    with app.serve_in_thread(host="127.0.0.1", port=0, timeout=10.0) as url, connect(url) as sock:
        for _ in range(2):  # the same connection: still open after the first answer
            sock.sendall(request)
            answer = read_responses(sock, 1)[0]
            assert (answer.status, answer.body) == (200, b"ok")
    assert "should return None" not in caplog.text
