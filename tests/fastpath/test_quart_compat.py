"""Quart behaviour on WebServer's lean request path: what works on Quart works on aeros.

Most tests run a real server (``live_server``) and a real client; the ones about the shape of
the ASGI conversation (one body message, no tasks) drive the app in-process.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import decimal
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import websockets.sync.client
from quart import (
    Blueprint,
    Quart,
    Response,
    abort,
    after_this_request,
    copy_current_request_context,
    g,
    jsonify,
    make_response,
    request,
    session,
    stream_with_context,
    websocket,
)

from aeros import WebServer
from aeros.fastpath.http import LeanHTTPConnection
from aeros.fastpath.json import OrjsonProvider
from tests.support.asgi import drive, http_scope


def make_app(**kwargs: Any) -> WebServer:
    return WebServer(__name__, access_log=False, **kwargs)


# ---- the ASGI conversation ----------------------------------------------------------------


async def call_asgi(
    app: Any, path: str, *, method: str = "GET", body: bytes = b"", headers: Any = ()
) -> list[dict[str, Any]]:
    """Drive ``app``'s Quart part (no aeros layers) with one request; every message it sent."""
    hdrs = [(b"host", b"test"), *headers]
    if body:
        hdrs.append((b"content-length", str(len(body)).encode()))
    scope = http_scope(path, method=method, headers=hdrs)

    async def quart_part(scope: Any, receive: Any, send: Any) -> None:
        await Quart.asgi_app(app, scope, receive, send)

    return await drive(quart_part, scope, body=body)


async def test_lean_connection_is_webservers_http_class() -> None:
    """WebServer serves HTTP through the lean connection, and stock Quart is untouched."""
    assert WebServer.asgi_http_class is LeanHTTPConnection
    assert Quart.asgi_http_class is not LeanHTTPConnection


async def test_lean_connection_complete_body_is_one_message() -> None:
    """A bytes response is one http.response.start and one final http.response.body."""
    app = make_app()

    @app.route("/")
    async def index() -> str:
        return "hello"

    sent = await call_asgi(app, "/")
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[1]["body"] == b"hello"
    assert sent[1]["more_body"] is False


async def test_lean_connection_starts_no_task_per_request() -> None:
    """A GET and a small POST run in the caller's task: no task is created for them."""
    app = make_app()

    @app.route("/", methods=["GET", "POST"])
    async def index() -> str:
        return request.method  # reading the body is the view's business (Quart's wait_for)

    created: list[Any] = []
    loop = asyncio.get_running_loop()
    old = loop.get_task_factory()

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        created.append(coro)
        return asyncio.Task(coro, loop=loop, **kwargs)

    await call_asgi(app, "/")  # warm-up: first-call work (the layer stack) may start tasks
    loop.set_task_factory(factory)  # type: ignore[arg-type]
    try:
        got = await call_asgi(app, "/")
        posted = await call_asgi(app, "/", method="POST", body=b"abc")
    finally:
        loop.set_task_factory(old)
    assert got[1]["body"] == b"GET"
    assert posted[1]["body"] == b"POST"
    assert created == []


async def test_lean_connection_no_timeout_when_none() -> None:
    """RESPONSE_TIMEOUT=None sends without a timeout scope and still answers."""
    app = make_app()
    app.config["RESPONSE_TIMEOUT"] = None

    @app.route("/")
    async def index() -> str:
        return "ok"

    sent = await call_asgi(app, "/")
    assert sent[-1]["body"] == b"ok"


async def test_lean_connection_range_request_sends_the_slice() -> None:
    """A conditional (Range) response sends only the requested bytes, as Quart does."""
    app = make_app()

    @app.route("/")
    async def index() -> Response:
        response = await make_response(b"0123456789")
        await response.make_conditional(request, accept_ranges=True, complete_length=10)
        return response

    sent = await call_asgi(app, "/", headers=[(b"range", b"bytes=2-4")])
    assert sent[0]["status"] == 206
    assert sent[1]["body"] == b"234"


# ---- requests ---------------------------------------------------------------------------


def test_request_args_headers_json_form(live_server) -> None:
    """Query args, headers, get_json and form data reach the view as on Quart."""
    app = make_app()

    @app.route("/echo", methods=["POST"])
    async def echo() -> dict[str, Any]:
        form = await request.form
        return {
            "q": request.args.get("q"),
            "header": request.headers.get("X-Thing"),
            "json": await request.get_json(silent=True),
            "form": form.get("a"),
            "method": request.method,
            "remote": request.remote_addr,
        }

    with live_server(app) as url, httpx.Client(base_url=url) as client:
        as_json = client.post("/echo?q=1", json={"k": [1, 2]}, headers={"X-Thing": "yes"}).json()
        as_form = client.post("/echo", data={"a": "b"}).json()
    assert as_json == {
        "q": "1",
        "header": "yes",
        "json": {"k": [1, 2]},
        "form": None,
        "method": "POST",
        "remote": "127.0.0.1",
    }
    assert as_form["form"] == "b"


@pytest.mark.parametrize(
    "size",
    [
        pytest.param(10, id="small-inline"),
        pytest.param(300_000, id="large-content-length"),
        pytest.param(2_000_000, id="large-chunked"),
    ],
)
def test_request_body_sizes(live_server, size: int) -> None:
    """Small, large and chunked bodies arrive whole (the large ones take Quart's path)."""
    app = make_app()

    @app.route("/len", methods=["POST"])
    async def length() -> dict[str, int]:
        data = await request.get_data()
        return {"len": len(data), "sum": sum(data[:1000])}

    payload = bytes(range(256)) * (size // 256) + b"x" * (size % 256)

    def chunked() -> Any:
        for i in range(0, len(payload), 65536):
            yield payload[i : i + 65536]

    content: Any = chunked() if size >= 1_000_000 else payload
    with live_server(app) as url:
        got = httpx.post(url + "/len", content=content, timeout=30).json()
    assert got == {"len": size, "sum": sum(payload[:1000])}


def test_request_body_iterated_in_parts(live_server) -> None:
    """``async for chunk in request.body`` streams a chunked upload."""
    app = make_app()

    @app.route("/count", methods=["POST"])
    async def count() -> dict[str, int]:
        total = 0
        async for chunk in request.body:
            total += len(chunk)
        return {"total": total}

    def parts() -> Any:
        for _ in range(20):
            yield b"a" * 10_000

    with live_server(app) as url:
        assert httpx.post(url + "/count", content=parts()).json() == {"total": 200_000}


def test_request_max_content_length_is_413(live_server) -> None:
    """A body above MAX_CONTENT_LENGTH answers 413, inline-read or not."""
    app = make_app()
    app.config["MAX_CONTENT_LENGTH"] = 100

    @app.route("/up", methods=["POST"])
    async def up() -> str:
        await request.get_data()
        return "ok"

    with live_server(app) as url:
        assert httpx.post(url + "/up", content=b"x" * 50).status_code == 200
        assert httpx.post(url + "/up", content=b"x" * 500).status_code == 413


# ---- responses --------------------------------------------------------------------------


def test_response_return_types(live_server) -> None:
    """str, bytes, dict, list, tuples with status and headers, and Response all work."""
    app = make_app()

    @app.route("/str")
    async def as_str() -> Any:
        return "text", 201, {"X-A": "1"}

    @app.route("/dict")
    async def as_dict() -> Any:
        return {"b": 1, "a": [1, 2]}

    @app.route("/list")
    async def as_list() -> Any:
        return [1, "two"]

    @app.route("/response")
    async def as_response() -> Any:
        return Response("made", status=202, headers={"X-B": "2"}, mimetype="text/plain")

    with live_server(app) as url, httpx.Client(base_url=url) as client:
        r_str = client.get("/str")
        r_dict = client.get("/dict")
        r_list = client.get("/list")
        r_resp = client.get("/response")
        r_head = client.head("/str")
    assert (r_str.status_code, r_str.text, r_str.headers["x-a"]) == (201, "text", "1")
    assert r_dict.content == b'{"a":[1,2],"b":1}\n'
    assert r_dict.headers["content-type"] == "application/json"
    assert r_list.json() == [1, "two"]
    assert (r_resp.status_code, r_resp.text, r_resp.headers["x-b"]) == (202, "made", "2")
    assert (r_head.status_code, r_head.content) == (201, b"")


def test_jsonify_matches_quart_output() -> None:
    """orjson output equals stock Quart's byte for byte (sorted keys, HTTP dates, Decimal, UUID)."""
    value = {
        "z": 1,
        "a": [1.5, None, True],
        "when": datetime.datetime(2024, 1, 2, 3, 4, 5),
        "day": datetime.date(2024, 1, 2),
        "price": decimal.Decimal("9.99"),
        "id": uuid.UUID(int=7),
        "big": 2**70,
    }

    async def body(app: Quart) -> bytes:
        async with app.app_context():
            return await jsonify(value).get_data()  # type: ignore[no-any-return]

    ours = asyncio.run(body(make_app()))
    theirs = asyncio.run(body(Quart(__name__)))
    assert isinstance(make_app().json, OrjsonProvider)
    assert ours == theirs


def test_json_loads_and_dumps_fallbacks() -> None:
    """app.json.loads accepts what json accepts (NaN) and dumps honours json-only kwargs."""
    provider = make_app().json
    assert provider.loads('{"a": NaN}')["a"] != provider.loads('{"a": NaN}')["a"]
    assert provider.loads(b'{"a": [1]}') == {"a": [1]}
    assert provider.dumps({"b": 1, "a": 2}) == '{"a": 2, "b": 1}'  # json's spacing, as Quart
    assert provider.dumps({"a": 1}, indent=1) == json.dumps({"a": 1}, indent=1, sort_keys=True)
    with pytest.raises(TypeError):
        provider.dumps({"a": object()})


def test_streaming_response_arrives_in_parts(live_server) -> None:
    """An async generator streams; each chunk is on the wire before the next is made."""
    app = make_app(compression=None)

    @app.route("/stream")
    async def stream() -> Any:
        @stream_with_context
        async def gen() -> AsyncIterator[bytes]:
            for i in range(3):
                yield f"{request.args['p']}{i};".encode()
                await asyncio.sleep(0.05)

        return gen(), {"Content-Type": "text/plain"}

    with live_server(app) as url, httpx.stream("GET", url + "/stream?p=x") as response:
        parts = list(response.iter_raw())
    assert b"".join(parts) == b"x0;x1;x2;"
    assert len(parts) >= 2


def test_streaming_response_stops_when_client_leaves(live_server) -> None:
    """An endless event stream ends (its generator closes) when the client disconnects."""
    app = make_app(compression=None)
    closed = threading.Event()

    @app.route("/events")
    async def events() -> Any:
        async def gen() -> AsyncIterator[bytes]:
            try:
                while True:
                    yield b"data: tick\n\n"
                    await asyncio.sleep(0.02)
            finally:
                closed.set()

        return gen(), {"Content-Type": "text/event-stream"}

    with live_server(app) as url:
        with httpx.stream("GET", url + "/events") as response:
            next(response.iter_raw())
        assert closed.wait(10)


# ---- hooks, context, errors -------------------------------------------------------------


def test_hooks_run_in_quart_order(live_server) -> None:
    """before_request, after_this_request, after_request and teardown run in Quart's order."""
    app = make_app()
    calls: list[str] = []
    torn_down = threading.Event()

    @app.before_request
    async def before() -> None:
        g.user = "ann"
        calls.append("before")

    @app.after_request
    async def after(response: Response) -> Response:
        calls.append("after")
        response.headers["X-After"] = "1"
        return response

    @app.teardown_request
    async def teardown(exc: BaseException | None) -> None:
        calls.append("teardown")
        torn_down.set()

    @app.route("/")
    async def index() -> str:
        @after_this_request
        async def this_one(response: Response) -> Response:
            calls.append("after_this_request")
            return response

        calls.append("view")
        return g.user  # type: ignore[no-any-return]

    with live_server(app) as url:
        response = httpx.get(url + "/")
        assert torn_down.wait(5)
    assert (response.text, response.headers["x-after"]) == ("ann", "1")
    assert calls == ["before", "view", "after_this_request", "after", "teardown"]


def test_before_request_can_answer(live_server) -> None:
    """A before_request function that returns a value answers instead of the view."""
    app = make_app()

    @app.before_request
    async def gate() -> Any:
        if request.args.get("block"):
            return "blocked", 403
        return None

    @app.route("/")
    async def index() -> str:
        return "open"

    with live_server(app) as url:
        assert httpx.get(url + "/").text == "open"
        blocked = httpx.get(url + "/?block=1")
    assert (blocked.status_code, blocked.text) == (403, "blocked")


def test_blueprint_hooks_and_error_handlers(live_server) -> None:
    """Blueprint-level hooks and error handlers apply to the blueprint's routes only."""
    app = make_app()
    bp = Blueprint("api", __name__, url_prefix="/api")

    @bp.after_request
    async def tag(response: Response) -> Response:
        response.headers["X-Api"] = "yes"
        return response

    @bp.errorhandler(404)
    async def api_404(error: Exception) -> Any:
        return {"error": "not here"}, 404

    @bp.route("/missing")
    async def missing() -> Any:
        abort(404)

    @app.route("/plain")
    async def plain() -> str:
        return "plain"

    app.register_blueprint(bp)
    with live_server(app) as url:
        api = httpx.get(url + "/api/missing")
        plain = httpx.get(url + "/plain")
    assert (api.status_code, api.json(), api.headers["x-api"]) == (
        404,
        {"error": "not here"},
        "yes",
    )
    assert "x-api" not in plain.headers


def test_error_handlers_and_500(live_server) -> None:
    """Handlers for HTTP errors and exceptions answer; an unhandled error is a plain 500."""
    app = make_app()

    @app.errorhandler(404)
    async def not_found(error: Exception) -> Any:
        return "custom 404", 404

    @app.errorhandler(ValueError)
    async def bad_value(error: Exception) -> Any:
        return {"error": str(error)}, 400

    @app.route("/value")
    async def value() -> str:
        raise ValueError("nope")

    @app.route("/boom")
    async def boom() -> str:
        raise RuntimeError("boom")

    app.logger.disabled = True  # the 500 below is expected; keep the test log quiet
    with live_server(app) as url, httpx.Client(base_url=url) as client:
        missing = client.get("/nowhere")
        handled = client.get("/value")
        crashed = client.get("/boom")
    assert (missing.status_code, missing.text) == (404, "custom 404")
    assert (handled.status_code, handled.json()) == (400, {"error": "nope"})
    assert crashed.status_code == 500


def _count_in_session(app: WebServer) -> None:
    """``/count``: the number of requests so far, kept in the session."""

    @app.route("/count")
    async def count() -> str:
        session["n"] = session.get("n", 0) + 1
        return str(session["n"])


def test_session_cookie_round_trip(live_server) -> None:
    """With a secret key, the session is saved in a cookie and read back next request."""
    app = make_app()
    app.secret_key = "test-secret"  # noqa: S105 - a throwaway key for the test
    _count_in_session(app)
    with live_server(app) as url, httpx.Client(base_url=url) as client:
        assert [client.get("/count").text for _ in range(3)] == ["1", "2", "3"]


def test_a_secret_key_set_while_serving_opens_sessions(live_server) -> None:
    """The key is read on every request (the lean dispatch reads the config, as Quart's
    ``secret_key`` does): set after the first request, the next one saves its session."""
    app = make_app()

    @app.route("/count")
    async def count() -> str:
        if not app.secret_key:
            return "null"
        session["n"] = session.get("n", 0) + 1
        return str(session["n"])

    with live_server(app) as url, httpx.Client(base_url=url) as client:
        before = client.get("/count").text
        app.config["SECRET_KEY"] = "test-secret"  # noqa: S105 - a throwaway key for the test
        after = [client.get("/count").text for _ in range(2)]
    assert before == "null"
    assert after == ["1", "2"]


def test_a_class_with_its_own_secret_key_runs_quarts_dispatch(live_server, fastpath_log) -> None:
    """A subclass whose ``secret_key`` is its own (a property) runs Quart's dispatch, logged
    once, and its key signs the session."""

    class OwnKey(WebServer):
        @property
        def secret_key(self) -> str:  # type: ignore[override]
            return "from-the-property"

    app = OwnKey(__name__, access_log=False)
    _count_in_session(app)
    with live_server(app) as url, httpx.Client(base_url=url) as client:
        assert [client.get("/count").text for _ in range(3)] == ["1", "2", "3"]
    assert len(fastpath_log) == 1, fastpath_log
    assert "OwnKey.secret_key is not Quart's own" in fastpath_log[0]


@pytest.mark.parametrize(
    "key",
    [
        None,  # no secret_key on Quart
        "SECRET_KEY",  # not a descriptor
        "converted",  # a ConfigAttribute with a converter: reading the config would differ
        "other",  # a ConfigAttribute of another config key
    ],
)
def test_a_quart_whose_secret_key_reads_otherwise_turns_the_lean_dispatch_off(
    key: str | None, monkeypatch
) -> None:
    """The lean dispatch reads ``config["SECRET_KEY"]`` where Quart's ``secret_key`` does:
    a Quart whose ``secret_key`` is anything else is reported missing (Quart's dispatch
    runs), not misread."""
    from flask.config import ConfigAttribute

    from aeros.fastpath import _compat

    assert _compat._missing_internals() is None
    descriptor: Any = {
        None: None,
        "SECRET_KEY": "SECRET_KEY",
        "converted": ConfigAttribute("SECRET_KEY", get_converter=str),
        "other": ConfigAttribute("OTHER_KEY"),
    }[key]
    monkeypatch.setattr(_compat, "QUARTS_SECRET_KEY", descriptor)
    reason = _compat._missing_internals()
    assert reason is not None
    assert reason.startswith("Quart.secret_key is not config['SECRET_KEY']")


def test_null_session_without_secret_key(live_server) -> None:
    """Without a secret key the session is Quart's null session wherever it is read: a view,
    an after-request hook, a copied context, a template; writing to it fails as in Quart."""
    from quart import render_template_string
    from quart.sessions import NullSession

    app = make_app()
    seen: dict[str, Any] = {}

    @app.route("/read")
    async def read() -> str:
        seen["view"] = session._get_current_object()  # type: ignore[attr-defined]
        copied = copy_current_request_context(lambda: session._get_current_object())  # type: ignore[attr-defined]
        seen["copy"] = await copied()
        return str(session.get("n"))

    @app.route("/write")
    async def write() -> str:
        session["n"] = 1
        return "written"

    @app.route("/template")
    async def template() -> str:
        return await render_template_string("{{ session.get('n') }}|{{ session|length }}")

    @app.after_request
    async def note(response: Response) -> Response:
        seen.setdefault("hooks", []).append(session._get_current_object())  # type: ignore[attr-defined]
        return response

    with live_server(app) as url, httpx.Client(base_url=url) as client:
        first = client.get("/read")
        assert first.text == "None"
        assert "set-cookie" not in first.headers  # a null session is never saved
        assert client.get("/write").status_code == 500  # NullSession refuses writes
        assert client.get("/template").text == "None|0"
    assert type(seen["view"]) is NullSession
    assert seen["copy"] is seen["view"]  # a copy shares the request's session, as in Quart
    assert seen["hooks"][0] is seen["view"]
    assert all(type(each) is NullSession for each in seen["hooks"])


async def test_null_session_made_only_when_read() -> None:
    """The lean path makes a request's null session only when something reads it."""
    from quart.sessions import NullSession

    made: list[Any] = []

    class Counted(NullSession):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            made.append(self)
            super().__init__(*args, **kwargs)

    app = make_app()
    app.session_interface.null_session_class = Counted

    @app.route("/")
    async def index() -> str:
        return "no session"

    @app.route("/read")
    async def read() -> str:
        return str(len(session))

    assert (await call_asgi(app, "/"))[1]["body"] == b"no session"
    assert made == []
    assert (await call_asgi(app, "/read"))[1]["body"] == b"0"
    assert len(made) == 1


def test_copy_current_request_context_and_background_task(live_server) -> None:
    """copy_current_request_context and app.add_background_task work from a view."""
    app = make_app()
    seen: list[str] = []
    done = threading.Event()

    @app.route("/")
    async def index() -> str:
        @copy_current_request_context
        async def later() -> None:
            seen.append(request.args["who"])

        await asyncio.ensure_future(later())

        async def background() -> None:
            seen.append("background")
            done.set()

        app.add_background_task(background)
        return "ok"

    with live_server(app) as url:
        assert httpx.get(url + "/?who=me").text == "ok"
        assert done.wait(5)
    assert seen == ["me", "background"]


def test_overridden_dispatch_is_respected(live_server) -> None:
    """A subclass that overrides full_dispatch_request is called (Quart's dispatch is kept)."""

    class Custom(WebServer):
        async def full_dispatch_request(self, request_context: Any = None) -> Any:
            response = await super().full_dispatch_request(request_context)
            response.headers["X-Custom"] = "1"
            return response

    app = Custom(__name__, access_log=False)

    @app.route("/")
    async def index() -> str:
        return "ok"

    with live_server(app) as url:
        assert httpx.get(url + "/").headers["x-custom"] == "1"


# ---- websockets and the test client ------------------------------------------------------


def test_websocket_echo(live_server) -> None:
    """A Quart websocket route echoes over a real connection."""
    app = make_app()

    @app.websocket("/ws")
    async def echo() -> None:
        while True:
            message = await websocket.receive()
            await websocket.send(f"echo {message}")

    with (
        live_server(app) as url,
        websockets.sync.client.connect(url.replace("http", "ws", 1) + "/ws", open_timeout=5) as ws,
    ):
        ws.send("hi")
        assert ws.recv(timeout=5) == "echo hi"


async def test_test_client_http_and_websocket() -> None:
    """app.test_client() drives HTTP (with JSON bodies) and websockets through every layer."""
    app = make_app()

    @app.route("/add", methods=["POST"])
    async def add() -> dict[str, int]:
        data = await request.get_json()
        return {"sum": data["a"] + data["b"]}

    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.send((await websocket.receive()).upper())

    client = app.test_client()
    response = await client.post("/add", json={"a": 1, "b": 2})
    assert response.status_code == 200
    assert await response.get_json() == {"sum": 3}
    async with client.websocket("/ws") as ws_client:
        await ws_client.send("hey")
        assert await ws_client.receive() == "HEY"


async def test_test_client_streaming_with_timeout() -> None:
    """A streaming response with a Response.timeout stops at the timeout, as in Quart."""
    app = make_app(compression=None)

    @app.route("/slow")
    async def slow() -> Response:
        async def gen() -> AsyncIterator[bytes]:
            yield b"first"
            await asyncio.sleep(30)
            yield b"never"

        response = Response(gen())
        response.timeout = 0.2
        return response

    start = time.monotonic()
    response = await app.test_client().get("/slow")
    assert await response.get_data() == b"first"
    assert time.monotonic() - start < 10


def test_signals_and_appcontext_teardown_still_fire(live_server) -> None:
    """Connected signals and teardown_appcontext run, though idle ones are skipped."""
    from quart.signals import appcontext_pushed, request_finished, request_started

    app = make_app()
    seen: list[str] = []

    async def on_started(sender: Any, **kwargs: Any) -> None:
        seen.append("started")

    async def on_pushed(sender: Any, **kwargs: Any) -> None:
        seen.append("pushed")

    async def on_finished(sender: Any, response: Any, **kwargs: Any) -> None:
        seen.append(f"finished {response.status_code}")

    @app.teardown_appcontext
    async def app_teardown(exc: BaseException | None) -> None:
        seen.append("appcontext teardown")

    @app.route("/")
    async def index() -> str:
        return "ok"

    request_started.connect(on_started, app)
    appcontext_pushed.connect(on_pushed, app)
    request_finished.connect(on_finished, app)
    try:
        with live_server(app) as url:
            assert httpx.get(url + "/").text == "ok"
    finally:
        request_started.disconnect(on_started, app)
        appcontext_pushed.disconnect(on_pushed, app)
        request_finished.disconnect(on_finished, app)
    # the lifespan's startup and shutdown push (and tear down) app contexts of their own
    start = seen.index("started")
    assert seen[start - 1 : start + 3] == [
        "pushed",
        "started",
        "finished 200",
        "appcontext teardown",
    ]


def test_sync_views_and_hosts(live_server) -> None:
    """Sync views still run (in a thread), and routing by host works for many hosts."""
    app = make_app()
    app.logger.disabled = True

    @app.route("/sync")
    def sync_view() -> str:
        return f"sync {request.host}"

    with live_server(app) as url, httpx.Client(base_url=url) as client:
        answers = [client.get("/sync", headers={"Host": f"h{i}.test"}).text for i in range(3)]
        again = client.get("/sync", headers={"Host": "h0.test"}).text
    assert answers == ["sync h0.test", "sync h1.test", "sync h2.test"]
    assert again == "sync h0.test"


def test_server_name_mismatch_still_404s() -> None:
    """With SERVER_NAME set, a request for another host is refused every time, as in Quart."""
    app = make_app()
    app.config["SERVER_NAME"] = "example.com"

    @app.route("/")
    async def index() -> str:
        return "ok"

    async def go() -> list[int]:
        client = app.test_client()
        codes = []
        for _ in range(2):
            with pytest.warns(UserWarning, match="doesn't match configured"):
                response = await client.get("/", headers={"Host": "other.org"})
            codes.append(response.status_code)
        codes.append((await client.get("/", headers={"Host": "example.com"})).status_code)
        return codes

    assert asyncio.run(go()) == [404, 404, 200]


def test_request_headers_get_matches_werkzeug() -> None:
    """request.headers.get answers as werkzeug's Headers.get: case, defaults, type casts."""
    from werkzeug.datastructures import Headers

    from aeros.fastpath.request import scope_headers

    scope = {"client": ("1.2.3.4", 5), "headers": [(b"content-length", b"12"), (b"x-a", b"v")]}
    ours = scope_headers(scope)
    theirs = Headers(list(ours.items()))
    for args in [("X-A",), ("x-a",), ("missing",), ("missing", "d"), ("Content-Length", None, int)]:
        assert ours.get(*args) == theirs.get(*args)
    assert ours.get("x-a", type=int) is None
    assert ours["Remote-Addr"] == "1.2.3.4"


async def _drive_with_send(app: Any, send: Any) -> None:
    messages = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop()
        await asyncio.Event().wait()  # a client that stays connected
        return {"type": "http.disconnect"}

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "scheme": "http",
        "method": "GET",
        "path": "/",
        "raw_path": b"/",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"test")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    await Quart.asgi_app(app, scope, receive, send)


async def test_lean_connection_slow_client_within_timeout() -> None:
    """A send that has to wait (a slow client) still completes under the response timeout."""
    app = make_app(compression=None)

    @app.route("/")
    async def index() -> str:
        return "body"

    sent: list[dict[str, Any]] = []

    async def slow_send(message: dict[str, Any]) -> None:
        await asyncio.sleep(0.02)  # the server waits for the socket to drain
        sent.append(message)

    await _drive_with_send(app, slow_send)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[1]["body"] == b"body"


async def test_lean_connection_stuck_client_hits_the_timeout() -> None:
    """A send that never completes is abandoned after Response.timeout, as in Quart."""
    app = make_app(compression=None)

    @app.route("/")
    async def index() -> Response:
        response = Response("body")
        response.timeout = 0.1
        return response

    started: list[str] = []

    async def stuck_send(message: dict[str, Any]) -> None:
        started.append(message["type"])
        await asyncio.Event().wait()  # a client that never reads

    begin = time.monotonic()
    await asyncio.wait_for(_drive_with_send(app, stuck_send), 10)
    assert started == ["http.response.start"]
    assert time.monotonic() - begin < 5


async def test_lean_connection_send_errors_propagate() -> None:
    """An error raised by the server's send reaches the server, as with Quart."""
    app = make_app(compression=None)

    @app.route("/")
    async def index() -> str:
        return "body"

    async def broken_send(message: dict[str, Any]) -> None:
        await asyncio.sleep(0)
        raise OSError("connection reset")

    with pytest.raises(OSError, match="connection reset"):
        await _drive_with_send(app, broken_send)


# ---- the lean path on each supported Quart, and never a silent divergence ----------------


def _context_module_seen(url: str) -> str:
    return httpx.get(url + "/ctx").text


@pytest.fixture
def fastpath_log() -> Iterator[list[str]]:
    """Messages of the ``aeros.fastpath`` logger (a handler of its own: serving reroutes logs)."""
    import logging

    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    logger = logging.getLogger("aeros.fastpath")
    handler = Collect(logging.INFO)
    logger.addHandler(handler)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)


def _ctx_app(**kwargs: Any) -> WebServer:
    """An app whose ``/ctx`` view names the module of the context class it runs under."""
    import quart.globals
    from quart.globals import _cv_app

    app = make_app(**kwargs)
    # Quart 0.22 keeps the request in a context variable of its own; 0.23 in the app context
    request_cv = getattr(quart.globals, "_cv_request", _cv_app)

    @app.route("/ctx")
    async def ctx() -> str:
        return type(request_cv.get()).__module__

    return app


def test_lean_path_shape_matches_the_installed_quart() -> None:
    """Quart >= 0.23 has one context (no RequestContext); 0.22 has two: detection agrees."""
    import quart.ctx

    from aeros.fastpath import _compat

    major, minor = (int(part) for part in _compat.QUART_VERSION.split(".")[:2])
    assert (major, minor) >= (0, 22)
    assert _compat.UNIFIED_CONTEXT is ((major, minor) >= (0, 23))
    assert _compat.UNIFIED_CONTEXT is (not hasattr(quart.ctx, "RequestContext"))
    assert _compat.MISSING is None, (
        f"a supported Quart lacks a lean-path internal: {_compat.MISSING}"
    )


def test_lean_path_is_taken_in_the_normal_case(live_server, fastpath_log) -> None:
    """A plain WebServer runs aeros' lean contexts (not Quart's) and logs no fallback."""
    from aeros.fastpath import _compat
    from aeros.fastpath.dispatch import lean_dispatch_reason

    app = _ctx_app()
    assert lean_dispatch_reason(app) is None
    expected = (
        "aeros.fastpath.ctx_unified" if _compat.UNIFIED_CONTEXT else "aeros.fastpath.ctx_split"
    )
    with live_server(app) as url:
        assert _context_module_seen(url) == expected
    assert fastpath_log == []


def test_class_patch_of_quart_dispatch_runs_and_is_logged(
    live_server, fastpath_log, monkeypatch
) -> None:
    """A monitoring tool's patch of Quart.full_dispatch_request runs under WebServer too."""
    original = Quart.full_dispatch_request

    async def instrumented(self: Quart, *args: Any, **kwargs: Any) -> Any:
        response = await original(self, *args, **kwargs)
        response.headers["X-Instrumented"] = "1"
        return response

    monkeypatch.setattr(Quart, "full_dispatch_request", instrumented)
    app = _ctx_app()
    with live_server(app) as url:
        first = httpx.get(url + "/ctx")
        second = httpx.get(url + "/ctx")
    assert first.headers["x-instrumented"] == second.headers["x-instrumented"] == "1"
    assert first.text == "quart.ctx"  # Quart's own context ran
    assert len(fastpath_log) == 1, fastpath_log
    assert "full_dispatch_request" in fastpath_log[0]
    assert "Quart's own request dispatch" in fastpath_log[0]


def test_instance_override_of_handle_request_runs(live_server, fastpath_log) -> None:
    """``app.handle_request = ...`` on the instance is called, as it would be on Quart."""
    app = _ctx_app()
    calls: list[str] = []
    original = app.handle_request

    async def handle_request(request: Any) -> Any:
        calls.append(request.path)
        return await original(request)

    app.handle_request = handle_request  # type: ignore[method-assign]
    with live_server(app) as url:
        assert httpx.get(url + "/ctx").status_code == 200
    assert calls == ["/ctx"]
    assert len(fastpath_log) == 1
    assert "handle_request is overridden on the app instance" in fastpath_log[0]


def test_missing_internal_falls_back_to_quart_and_says_why(fastpath_log, monkeypatch) -> None:
    """When the installed Quart lacks an internal, the app runs Quart's dispatch, logged once."""
    from aeros.fastpath import _compat
    from aeros.fastpath.dispatch import lean_dispatch_reason

    monkeypatch.setattr(_compat, "MISSING", "quart.ctx.Something is missing")
    app = _ctx_app()
    reason = lean_dispatch_reason(app)
    assert reason is not None
    assert "quart.ctx.Something is missing" in reason
    client = app.test_client()

    async def fetch() -> tuple[str, str]:
        one = await (await client.get("/ctx")).get_data(as_text=True)
        two = await (await client.get("/ctx")).get_data(as_text=True)
        return one, two

    first, second = asyncio.run(fetch())
    assert first == second == "quart.ctx"
    assert len(fastpath_log) == 1
    assert "Something is missing" in fastpath_log[0]


def test_websocket_refused_before_accept_is_403_not_a_hang(live_server) -> None:
    """A websocket view that returns without accepting is refused at once (Quart 0.23 hung)."""
    from websockets.exceptions import InvalidStatus

    app = make_app()

    @app.websocket("/refused")
    async def refused() -> None:
        return None

    with live_server(app) as url:
        start = time.monotonic()
        with (
            pytest.raises(InvalidStatus) as refusal,
            websockets.sync.client.connect(
                url.replace("http://", "ws://") + "/refused", open_timeout=5
            ),
        ):
            pass
        assert refusal.value.response.status_code == 403
        assert time.monotonic() - start < 2


# ---- the request built in one step -------------------------------------------------------


def _request_args(body_length: int | None = None) -> tuple[tuple[Any, ...], dict[str, Any]]:
    from werkzeug.datastructures import Headers

    headers = Headers([("Remote-Addr", "127.0.0.1"), ("Host", "example.com")])
    if body_length is not None:
        headers.add("Content-Length", str(body_length))
    scope = http_scope("/p", method="post", headers=[(b"host", b"example.com")])
    args = ("post", "http", "p", b"a=1", headers, "/root/", "1.1", scope)
    kwargs = {"max_content_length": 10, "body_timeout": 5, "send_push_promise": print}
    return args, kwargs


def test_complete_request_has_quarts_attributes() -> None:
    """LeanRequest.complete sets every attribute Quart's constructor sets, to equal values."""
    from aeros.fastpath.request import LeanRequest, complete_requests_match

    args, kwargs = _request_args()
    assert complete_requests_match(LeanRequest, args, kwargs)
    quarts = LeanRequest(*args, **kwargs)
    lean = LeanRequest.complete(*args, b"", **kwargs)
    lean.body  # noqa: B018 - made on access (it reads the cached content_length)
    skip = {"body", "_aeros_body", "_aeros_data", "_aeros_max", "_parsing_lock", "_cached_json"}
    assert {k: v for k, v in vars(lean).items() if k not in skip} == {
        k: v for k, v in vars(quarts).items() if k not in skip
    }
    assert (lean.method, lean.path, lean.root_path) == ("POST", "/p", "/root")


async def test_complete_request_body_is_made_on_first_access() -> None:
    """The body object does not exist until read; then it holds the data, limits included."""
    from werkzeug.exceptions import RequestEntityTooLarge

    from aeros.fastpath.request import LeanRequest

    args, kwargs = _request_args(body_length=5)
    lean = LeanRequest.complete(*args, b"hello", **kwargs)
    assert "_aeros_body" not in vars(lean)
    assert await lean.get_data() == b"hello"
    args, kwargs = _request_args(body_length=11)
    too_big = LeanRequest.complete(*args, b"x" * 11, **kwargs)
    with pytest.raises(RequestEntityTooLarge):
        await too_big.get_data()


def test_complete_request_mismatch_falls_back_to_quarts_constructor(caplog, monkeypatch) -> None:
    """A Quart whose request constructor sets another attribute, or a request class with an
    ``__init__`` of its own, gets its requests built by that code."""
    from quart.wrappers import Request

    from aeros.fastpath.request import LeanRequest, complete_requests_match

    class Extended(LeanRequest):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)

    args, kwargs = _request_args()
    with caplog.at_level("INFO", logger="aeros.fastpath"):
        assert not complete_requests_match(Extended, args, kwargs)
    assert "Extended has an __init__ of its own" in caplog.text
    assert complete_requests_match(LeanRequest, args, kwargs)
    quarts = Request.__init__

    def newer_quart(self: Any, *args: Any, **kwargs: Any) -> None:
        quarts(self, *args, **kwargs)
        self.extra = 1

    class Slotted(LeanRequest):
        __slots__ = ("_parsing_lock",)  # the lock in a slot, not made on first use

    with caplog.at_level("INFO", logger="aeros.fastpath"):
        assert not complete_requests_match(Slotted, args, kwargs)
    assert "Slotted cannot be built in one step" in caplog.text
    monkeypatch.setattr(Request, "__init__", newer_quart)
    with caplog.at_level("INFO", logger="aeros.fastpath"):
        assert not complete_requests_match(LeanRequest, args, kwargs)
    assert "other attributes (extra)" in caplog.text


def test_lean_context_has_the_attributes_of_quarts() -> None:
    """The lean request context sets the attributes Quart's context class sets, equal values."""
    from aeros.fastpath.dispatch import LeanRequestContext

    app = make_app()
    args, kwargs = _request_args()
    quart_class = next(c for c in LeanRequestContext.__mro__ if c.__module__ == "quart.ctx")
    lean = LeanRequestContext(app, request=app.request_class(*args, **kwargs))
    quarts = quart_class(app, request=app.request_class(*args, **kwargs))
    # Quart's session attribute ("session" on 0.22, "_session" on 0.23) is a property of the
    # lean context, stored under _aeros_session (made on first access: later_session); the
    # remembered route is the lean context's own (None: none taken)
    session_name = "_session" if "_session" in vars(quarts) else "session"
    assert lean._aeros_route is None
    own = {"_aeros_session", "_aeros_route"}
    assert set(vars(lean)) - own | {session_name} == set(vars(quarts))
    for name, value in vars(quarts).items():
        if isinstance(value, (type(None), bool, int, str, list)):
            assert getattr(lean, name) == value, name


async def test_context_teardown_still_runs_with_registered_functions() -> None:
    """Teardown functions and appcontext signals still run on the lean context's pop."""
    from quart.signals import appcontext_popped

    app = make_app()
    seen: list[str] = []

    @app.teardown_request
    async def request_down(exc: BaseException | None) -> None:
        seen.append("request")

    @app.teardown_appcontext
    async def app_down(exc: BaseException | None) -> None:
        seen.append("app")

    # async: Quart 0.23 itself sends appcontext_popped with send_async(_async_wrapper=...),
    # which blinker refuses for a sync receiver
    async def popped(sender: Any, **kwargs: Any) -> None:
        seen.append("popped")

    @app.route("/")
    async def index() -> str:
        return "ok"

    appcontext_popped.connect(popped, app)
    try:
        await call_asgi(app, "/")
    finally:
        appcontext_popped.disconnect(popped, app)
    assert seen == ["request", "app", "popped"]


@pytest.mark.parametrize(
    "alone",
    [
        "teardown_request",
        "teardown_appcontext",
        "request_tearing_down",
        "appcontext_tearing_down",
        "appcontext_popped",
    ],
)
async def test_each_teardown_step_runs_when_it_is_the_only_one(alone: str) -> None:
    """The lean context is left in place (no coroutine) only when nothing would run: any one
    teardown function or signal receiver, alone, still runs, once per request."""
    from quart import signals

    app = make_app()
    seen: list[str] = []

    async def down(*args: Any, **kwargs: Any) -> None:
        seen.append(alone)

    @app.route("/")
    async def index() -> str:
        return "ok"

    if alone.startswith("teardown_"):
        getattr(app, alone)(down)
        await call_asgi(app, "/")
        await call_asgi(app, "/")
    else:
        signal = getattr(signals, alone)
        signal.connect(down, app)
        try:
            await call_asgi(app, "/")
            await call_asgi(app, "/")
        finally:
            signal.disconnect(down, app)
    assert seen == [alone, alone]


async def test_a_failing_appcontext_pushed_receiver_leaves_no_context_set() -> None:
    """The lean dispatch runs the request in the caller's task: a receiver of
    ``appcontext_pushed`` that raises must not leave the request or app context set there."""
    from quart.globals import _cv_app
    from quart.signals import appcontext_pushed

    app = make_app()

    @app.route("/")
    async def index() -> str:
        return "ok"

    async def failing(sender: Any, **kwargs: Any) -> None:
        raise RuntimeError("receiver failed")

    appcontext_pushed.connect(failing, app)
    try:
        with contextlib.suppress(RuntimeError):  # the app's error goes on to its caller
            await call_asgi(app, "/")
    finally:
        appcontext_pushed.disconnect(failing, app)
    assert _cv_app.get(None) is None
    try:
        from quart.globals import _cv_request  # Quart 0.22; 0.23 has one variable
    except ImportError:
        return
    assert _cv_request.get(None) is None


async def test_uploaded_files_are_closed_after_the_request() -> None:
    """The lean context skips Request.close only when there is nothing to close."""
    app = make_app()
    kept: list[Any] = []

    @app.route("/upload", methods=["POST"])
    async def upload() -> str:
        files = await request.files
        kept.append(files["f"])
        return "ok"

    client = app.test_client()
    import io

    from quart.datastructures import FileStorage

    response = await client.post(
        "/upload", files={"f": FileStorage(io.BytesIO(b"data"), filename="a.txt")}
    )
    assert response.status_code == 200
    assert kept
    assert kept[0].stream.closed


async def test_headers_are_made_on_first_access_and_equal_quarts() -> None:
    """A view that never reads ``request.headers`` never has them converted (after the first
    request from a Host, whose routing asks Quart for ``request.host``); one that does sees
    what stock Quart shows: the headers, ``remote_addr``, ``host`` and the URL."""
    seen: dict[str, Any] = {}

    def routes(app: Any) -> None:
        @app.route("/untouched")
        async def untouched() -> str:
            seen["request"] = request._get_current_object()  # type: ignore[attr-defined]
            return "ok"

        @app.route("/touched")
        async def touched() -> Any:
            return jsonify(
                headers=list(request.headers.items()),
                remote=request.remote_addr,
                host=request.host,
                url=request.url,
            )

    lean, stock = make_app(), Quart(__name__)
    routes(lean)
    routes(stock)
    extra = [(b"x-thing", b"one"), (b"x-thing", b"two"), (b"user-agent", b"test-agent")]
    await call_asgi(lean, "/untouched", headers=extra)
    await call_asgi(lean, "/untouched", headers=extra)
    assert "headers" not in vars(seen["request"])
    assert "remote_addr" not in vars(seen["request"])
    answers = []
    for app in (lean, stock):
        sent = await call_asgi(app, "/touched", headers=extra)
        answers.append(json.loads(b"".join(m.get("body", b"") for m in sent[1:])))
    assert answers[0] == answers[1]
    assert answers[0]["host"] == "test"
    assert ["X-Thing", "two"] in answers[0]["headers"]


async def test_a_cancelled_request_still_tears_its_context_down() -> None:
    """A request cancelled in its view (the client left) pops its context: the teardown runs
    and is given the cancellation, as Quart's ``async with`` context does."""
    app = make_app()
    entered = asyncio.Event()
    torn_down: list[BaseException | None] = []

    @app.route("/slow")
    async def slow() -> str:
        entered.set()
        await asyncio.sleep(30)
        return "late"

    @app.teardown_request
    async def down(exc: BaseException | None) -> None:
        torn_down.append(exc)

    task = asyncio.ensure_future(call_asgi(app, "/slow"))
    await asyncio.wait_for(entered.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(torn_down) == 1
    assert isinstance(torn_down[0], asyncio.CancelledError)


async def test_the_test_clients_preserved_context_is_left_as_quart_leaves_it() -> None:
    """Inside ``async with app.test_client()`` a request's context is preserved or popped as
    stock Quart does it."""

    async def teardowns_seen(app: Quart) -> list[int]:
        count: list[int] = []

        @app.route("/")
        async def index() -> str:
            return "ok"

        @app.teardown_request
        async def down(exc: BaseException | None) -> None:
            count.append(1)

        seen = []
        async with app.test_client() as client:
            for _ in range(2):
                response = await client.get("/")
                assert response.status_code == 200
                seen.append(len(count))
        seen.append(len(count))
        return seen

    # Quart 0.22 never pops a preserved context here ([0, 0, 0]); 0.23 pops each ([1, 2, 2])
    assert await teardowns_seen(make_app()) == await teardowns_seen(Quart(__name__))


def test_make_response_set_on_the_app_instance_makes_every_response(
    live_server, fastpath_log
) -> None:
    """``app.make_response = ...`` on the instance sees every view result, ``jsonify`` ones and
    ``(body, status, dict)`` tuples included (the lean dispatch answered those itself)."""
    app = make_app()
    original = app.make_response

    async def made(value: Any) -> Any:
        response = await original(value)
        response.headers["X-Made"] = "yes"
        return response

    app.make_response = made  # type: ignore[method-assign]

    @app.route("/json")
    async def as_json() -> Any:
        return jsonify(a=1)

    @app.route("/tuple")
    async def as_tuple() -> Any:
        return "x", 201, {"X-T": "1"}

    @app.route("/str")
    async def as_str() -> str:
        return "x"

    with live_server(app) as url, httpx.Client(base_url=url) as client:
        answers = [client.get(path) for path in ("/json", "/tuple", "/str")]
    assert [r.headers.get("x-made") for r in answers] == ["yes", "yes", "yes"]
    assert answers[1].status_code == 201
    assert "make_response is overridden on the app instance" in fastpath_log[0]


def test_a_request_class_with_an_init_of_its_own_builds_every_request(live_server) -> None:
    """A ``LeanRequest`` subclass whose ``__init__`` changes the request (a method override
    header) gets it run for small bodies too, as Quart runs it (the lean constructor skipped
    it for bodies read before the view)."""
    from aeros.fastpath.request import LeanRequest

    class MethodOverride(LeanRequest):
        def __init__(self, method: str, *args: Any, **kwargs: Any) -> None:
            super().__init__(method, *args, **kwargs)
            wanted = self.headers.get("X-HTTP-Method-Override")
            if wanted:
                self.method = wanted.upper()

    app = make_app()
    app.request_class = MethodOverride

    @app.route("/", methods=["POST", "DELETE"])
    async def index() -> str:
        return request.method

    with live_server(app) as url:
        override = {"X-HTTP-Method-Override": "delete"}
        small = httpx.post(url, content=b"x", headers=override)
        large = httpx.post(url, content=b"x" * 70_000, headers=override)
    assert (small.text, large.text) == ("DELETE", "DELETE")


async def test_an_error_while_matching_leaves_no_context_behind() -> None:
    """A converter failing with an error Quart does not catch goes on to the server (a 500),
    and the request's context is not left current in the caller's task (the lean connection
    runs there; Quart runs a task of its own), so the caller's next request has its own ``g``."""
    import quart.globals
    from werkzeug.routing import BaseConverter

    class Broken(BaseConverter):
        def to_python(self, value: str) -> int:
            return int(value)  # ValueError for "zz": a bug, not a 404

    app = make_app()
    app.url_map.converters["broken"] = Broken

    @app.route("/b/<broken:x>")
    async def broken(x: int) -> str:
        return str(x)

    @app.route("/g")
    async def mark() -> str:
        earlier = g.get("mark")
        g.mark = "set by an earlier request"
        return repr(earlier)

    # Quart 0.22 has a request context variable of its own; 0.23 keeps the request in the app's
    contexts = [quart.globals._cv_app, *filter(None, [getattr(quart.globals, "_cv_request", None)])]
    with pytest.raises(ValueError, match="zz"):
        await call_asgi(app, "/b/zz")
    assert [cv.get(None) for cv in contexts] == [None] * len(contexts)
    assert [(await call_asgi(app, "/g"))[1]["body"] for _ in range(2)] == [b"None", b"None"]


@pytest.mark.parametrize(
    ("path", "status", "most_seconds"),
    [("/ignore", 200, 3.0), ("/read", 408, 5.0)],
    ids=["view-ignores-the-body", "view-reads-the-body"],
)
def test_a_body_that_stalls_is_quarts_to_wait_for(
    live_server, path: str, status: int, most_seconds: float
) -> None:
    """A client that sends part of a small body and stalls: after ``BODY_TIMEOUT`` the request
    goes on as on Quart, a view that never reads the body answers, one that reads it gets 408
    (the lean connection waited for the whole body before any view ran, with no timeout)."""
    import socket

    app = make_app()
    app.config["BODY_TIMEOUT"] = 0.5

    @app.route("/ignore", methods=["POST"])
    async def ignore() -> str:
        return "answered without the body"

    @app.route("/read", methods=["POST"])
    async def read() -> str:
        return str(len(await request.get_data()))

    with live_server(app) as url, socket.socket() as sock:
        host, port = url.rsplit("/", 1)[1].rsplit(":", 1)
        sock.connect((host, int(port)))
        sock.settimeout(10)
        start = time.monotonic()
        sock.sendall(b"POST %s HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n" % path.encode())
        sock.sendall(b"x" * 10)  # the other 90 bytes never come
        answer = sock.recv(4096)
        waited = time.monotonic() - start
    assert answer.startswith(b"HTTP/1.1 %d " % status)
    assert waited < most_seconds


def test_lean_context_attribute_reads_can_be_specialized() -> None:
    """No class of the lean request context hooks attribute reads (``__getattr__``,
    ``__getattribute__``) or holds a class default for its remembered route: on Python 3.12+
    either leaves every such read unspecialized (a generic lookup through the type)."""
    from aeros.fastpath.dispatch import LeanRequestContext

    for kind in LeanRequestContext.__mro__[:-1]:  # object's own __getattribute__ is the plain one
        assert "__getattr__" not in vars(kind), kind
        assert "__getattribute__" not in vars(kind), kind
        assert "_aeros_route" not in vars(kind), kind
