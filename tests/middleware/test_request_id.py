"""Request ids: taken from trusted proxies when well formed, else made; on every response and
in every log line emitted while the request runs."""

from __future__ import annotations

import asyncio
import json
import os
import re
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

import aeros
from aeros import ConfigurationError, SimpleCache, WebServer
from aeros.middleware.request_id import RequestIdMiddleware, new_request_id
from aeros.types import HEADER_LINES
from tests.support.server import served_by_aeros

HEX32 = re.compile(r"^[0-9a-f]{32}$")


def id_app(tmp_path: Path, **kwargs: Any) -> WebServer:
    app = WebServer(
        __name__,
        access_log_file=str(tmp_path / "access.log"),
        log_file=str(tmp_path / "server.log"),
        **kwargs,
    )

    @app.route("/id")
    async def show_id() -> str:
        app.logger.warning("inside the view")
        return aeros.request_id() or "none"

    @app.route("/cached")
    @app.cache(timeout=60)
    async def cached() -> str:
        return "same body"

    return app


@pytest.mark.parametrize("fmt", ["default", "common", "combined", "json"])
def test_request_id_generated_sent_back_in_view_and_every_log_line(
    tmp_path: Path, fmt: str
) -> None:
    """A made id is in the response header, in the view and in the access and server logs."""
    app = id_app(tmp_path, request_id=True, access_log_format=fmt)
    with app.serve_in_thread() as url:
        first = httpx.get(url + "/id")
        second = httpx.get(url + "/id")
    ids = [first.headers["x-request-id"], second.headers["x-request-id"]]
    assert all(HEX32.match(value) for value in ids)
    assert ids[0] != ids[1]
    assert [first.text, second.text] == ids
    access = (tmp_path / "access.log").read_text().splitlines()
    assert len(access) == 2
    for line, value in zip(access, ids, strict=True):
        if fmt == "json":
            assert json.loads(line)["request_id"] == value
        elif fmt == "default":
            assert line.endswith(f" id={value}")
        else:
            assert line.endswith(f' "{value}"')
    server = [
        line for line in (tmp_path / "server.log").read_text().splitlines() if "inside" in line
    ]
    assert [line.split("[", 1)[1].split("]", 1)[0] for line in server] == ids


@pytest.mark.parametrize(
    ("allow", "given", "taken"),
    [
        pytest.param("127.0.0.1", "abc-123.x:y/z+=@_", True, id="trusted-peer"),
        pytest.param("*", "proxy-id-1", True, id="wildcard"),
        pytest.param("10.0.0.0/8", "proxy-id-1", False, id="untrusted-peer"),
        pytest.param("127.0.0.1", "a" * 129, False, id="too-long"),
        pytest.param("127.0.0.1", "a" * 128, True, id="longest"),
        pytest.param("127.0.0.1", "two words", False, id="space"),
        pytest.param("127.0.0.1", 'quote"d', False, id="quote"),
        pytest.param("127.0.0.1", "", False, id="empty"),
    ],
)
def test_request_id_taken_only_from_trusted_proxy_when_well_formed(
    tmp_path: Path, allow: str, given: str, taken: bool
) -> None:
    """X-Request-ID counts only from forwarded_allow_ips peers, and only when well formed."""
    app = id_app(tmp_path, request_id=True, forwarded_allow_ips=allow)
    with app.serve_in_thread() as url:
        response = httpx.get(url + "/id", headers={"X-Request-ID": given})
    sent = response.headers["x-request-id"]
    if taken:
        assert sent == given == response.text
    else:
        assert HEX32.match(sent)
        assert response.text == sent


def test_request_id_of_another_header_name_and_the_first_of_several(tmp_path: Path) -> None:
    """On aeros' server: a header name of the app's own is read from the headers (the server
    notes only X-Request-ID as it parses), an X-Request-ID is then ignored, and of several ids
    the first is taken (well formed or not), as a scan of the headers finds it."""
    custom = id_app(tmp_path, request_id="X-Correlation-ID", forwarded_allow_ips="127.0.0.1")
    with custom.serve_in_thread() as url:
        named = httpx.get(url + "/id", headers={"X-Correlation-ID": "corr-1"})
        other = httpx.get(url + "/id", headers={"X-Request-ID": "not-this-one"})
    assert named.headers["x-correlation-id"] == named.text == "corr-1"
    assert HEX32.match(other.headers["x-correlation-id"])
    assert other.text == other.headers["x-correlation-id"]
    assert "x-request-id" not in other.headers

    default = id_app(tmp_path, request_id=True, forwarded_allow_ips="127.0.0.1")
    with default.serve_in_thread() as url:
        first = httpx.get(url + "/id", headers=[("X-Request-ID", "one"), ("X-Request-ID", "two")])
        bad_first = httpx.get(
            url + "/id", headers=[("X-Request-ID", "bad id"), ("X-Request-ID", "good")]
        )
    assert first.headers["x-request-id"] == first.text == "one"
    assert HEX32.match(bad_first.headers["x-request-id"])
    assert bad_first.text == bad_first.headers["x-request-id"]


def test_request_id_trust_uses_the_peer_not_the_forwarded_client(tmp_path: Path) -> None:
    """With proxy_headers, the proxy (the peer) is checked, not the client it forwards."""
    app = id_app(tmp_path, request_id=True, proxy_headers=True, forwarded_allow_ips="127.0.0.1")

    @app.route("/client")
    async def client() -> str:
        from quart import request

        return f"{request.remote_addr}|{aeros.request_id()}"

    with app.serve_in_thread() as url:
        response = httpx.get(
            url + "/client",
            headers={"X-Request-ID": "from-proxy", "X-Forwarded-For": "203.0.113.9"},
        )
    assert response.text == "203.0.113.9|from-proxy"
    assert response.headers["x-request-id"] == "from-proxy"


def test_request_id_cache_hit_gets_its_own_id(tmp_path: Path) -> None:
    """A hit is answered with a fresh id, never the one of the request that filled the entry."""
    app = id_app(tmp_path, request_id="X-Correlation-ID", cache=SimpleCache(timeout=60))
    with app.serve_in_thread() as url:
        responses = [httpx.get(url + "/cached") for _ in range(3)]
    ids = [response.headers["x-correlation-id"] for response in responses]
    assert len(set(ids)) == 3
    assert all(
        response.headers.get_list("x-correlation-id") == [value]
        for response, value in zip(responses, ids, strict=True)
    )
    access = (tmp_path / "access.log").read_text().splitlines()
    assert [line.rsplit(" id=", 1)[1] for line in access] == ids
    assert "cache=hit" in access[2]


def test_request_id_off_adds_no_layer_and_no_header(tmp_path: Path) -> None:
    """Off by default: no layer in the stack, no header, ``aeros.request_id()`` is None."""
    app = id_app(tmp_path)
    assert not any(layer.factory is RequestIdMiddleware for layer in app.layers())
    with app.serve_in_thread() as url:
        response = httpx.get(url + "/id")
    assert "x-request-id" not in response.headers
    assert response.text == "none"
    assert " id=" not in (tmp_path / "access.log").read_text()


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        pytest.param(3, "request_id=3", id="int"),
        pytest.param("bad header", "request_id='bad header'", id="not-a-token"),
        pytest.param("", "request_id=''", id="empty"),
    ],
)
def test_request_id_bad_option_names_it(value: Any, needle: str) -> None:
    """A bad request_id= is a ConfigurationError naming the value."""
    with pytest.raises(ConfigurationError, match=re.escape(needle)):
        WebServer(__name__, request_id=value)


def test_new_request_id_is_32_hex_and_unique() -> None:
    """Generated ids are 32 lower-case hex digits and do not repeat."""
    ids = {new_request_id() for _ in range(10_000)}
    assert len(ids) == 10_000
    assert all(HEX32.match(value) for value in ids)


def test_new_request_id_batches_are_not_shared_with_forked_children() -> None:
    """A forked worker never hands out the ids its parent made but had not used yet."""
    new_request_id()  # a batch is made; the parent's next ids wait in it
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its first three ids, to the parent
        try:
            os.write(writer, "".join(new_request_id() for _ in range(3)).encode())
        finally:
            os._exit(0)
    os.close(writer)
    with os.fdopen(reader, "rb") as pipe:
        child = pipe.read().decode()
    os.waitpid(pid, 0)
    parent = "".join(new_request_id() for _ in range(3))
    assert len(child) == 96
    assert HEX32.match(child[:32])
    assert {child[i : i + 32] for i in range(0, 96, 32)}.isdisjoint(
        parent[i : i + 32] for i in range(0, 96, 32)
    )


async def through(layer: RequestIdMiddleware, scope: dict[str, Any]) -> None:
    """Call the layer inside a coroutine: its plain ``__call__`` sets the id in the caller's
    context, which must be the request's own task's, not the test's."""
    await layer(scope, None, None)


@pytest.mark.parametrize("header", ["X-Trace-Id", "X-Request-ID"])
def test_request_id_lines_made_with_the_batch_match_their_ids(header: str) -> None:
    """On aeros' server a fresh id comes with its header line made ahead: for more than two
    batches, each line is the layer's header, the id the app saw, CRLF; no id repeats. (The
    server notes an X-Request-ID as it parses: that layer takes a fresh id on a path of its
    own.)"""
    seen: list[str | None] = []

    async def answer(scope: Any, receive: Any, send: Any) -> None:
        seen.append(aeros.request_id())

    layer = RequestIdMiddleware(answer, header)
    lines: list[bytes] = []

    async def serve() -> None:
        for _ in range(300):
            scope: dict[str, Any] = {"type": "http", HEADER_LINES: []}
            await asyncio.create_task(through(layer, scope))  # a context of its own
            lines.extend(scope[HEADER_LINES])

    asyncio.run(serve())
    assert lines == [f"{header.lower()}: {value}\r\n".encode() for value in seen]
    assert all(value is not None and HEX32.match(value) for value in seen)
    assert len(set(seen)) == 300


def test_request_id_layer_batches_are_not_shared_with_forked_children() -> None:
    """A layer's own batch of ids (with their lines) is dropped in a forked child too."""

    async def answer(scope: Any, receive: Any, send: Any) -> None:
        return None

    layer = RequestIdMiddleware(answer)

    def three() -> list[bytes]:
        lines = []
        for _ in range(3):
            scope: dict[str, Any] = {"type": "http", HEADER_LINES: []}
            asyncio.run(through(layer, scope))  # the id is set in asyncio.run's context
            lines.append(scope[HEADER_LINES][0])
        return lines

    three()  # a batch is made; the parent's next ids wait in it
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.write(writer, b"".join(three()))
        finally:
            os._exit(0)
    os.close(writer)
    with os.fdopen(reader, "rb") as pipe:
        child = pipe.read().split(b"\r\n")[:3]
    os.waitpid(pid, 0)
    parent = [line[:-2] for line in three()]
    assert len(child) == 3
    assert all(line.startswith(b"x-request-id: ") for line in child)
    assert set(child).isdisjoint(parent)


def test_request_id_in_sync_views_and_on_concurrency_limit_refusals(tmp_path: Path) -> None:
    """A sync view (run in a thread) sees the id; a 503 of the concurrency limit carries one."""
    import time

    app = id_app(tmp_path, request_id=True, max_concurrent_requests=1)
    entered = threading.Event()

    @app.route("/sync")
    def sync_view() -> str:
        return aeros.request_id() or "none"

    @app.route("/hold")
    def hold() -> str:
        entered.set()
        time.sleep(1.0)
        return "held"

    with app.serve_in_thread() as url:
        sync = httpx.get(url + "/sync")
        holder = threading.Thread(target=httpx.get, args=(url + "/hold",), kwargs={"timeout": 10})
        holder.start()
        assert entered.wait(5)
        refused = httpx.get(url + "/sync")
        holder.join(10)
    assert sync.text == sync.headers["x-request-id"]
    assert HEX32.match(sync.text)
    assert refused.status_code == 503
    assert HEX32.match(refused.headers["x-request-id"])


class _CopyingScope:
    """A user middleware that hands the app a copy of the scope, as some ASGI middleware do."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(dict(scope), receive, send)


def test_request_id_on_aeros_server_and_test_client_once_whoever_answers(tmp_path: Path) -> None:
    """On aeros' server the id goes into the response head by the server (HEADER_LINES); on
    the test client the layer adds it to the start message. Either way: exactly once, on the
    app's answers, its 500s and behind a middleware that copies the scope."""
    app = id_app(tmp_path, request_id=True)
    app.add_middleware(_CopyingScope)

    @app.route("/boom")
    async def boom() -> str:
        raise RuntimeError("boom")

    with app.serve_in_thread() as url:
        served = [httpx.get(url + path) for path in ("/id", "/boom", "/missing")]

    async def through_test_client() -> list[Any]:
        client = app.test_client()
        return [await client.get(path) for path in ("/id", "/boom", "/missing")]

    tested = asyncio.run(through_test_client())
    assert [r.status_code for r in served] == [200, 500, 404]
    assert [r.status_code for r in tested] == [200, 500, 404]
    for response in served:
        assert len(response.headers.get_list("x-request-id")) == 1
        assert HEX32.match(response.headers["x-request-id"])
    for response in tested:
        assert len(response.headers.getlist("x-request-id")) == 1
        assert HEX32.match(response.headers["x-request-id"])
    assert served[0].text == served[0].headers["x-request-id"]
    assert len({r.headers["x-request-id"] for r in served}) == 3


def test_request_id_trust_is_remembered_per_peer_and_bounded() -> None:
    """A peer is checked against the networks once; "*" trusts even a peer that is not an IP
    address (a Unix socket's), a list of networks does not; the memo never outgrows its limit."""
    from aeros.middleware.request_id import _TRUSTED_MEMO_LIMIT, _Trust

    networks = _Trust(("10.0.0.0/8", "::1"))
    assert [networks["10.1.2.3"], networks["192.0.2.1"], networks["::1"]] == [True, False, True]
    assert networks["/run/aeros.sock"] is False
    assert _Trust(("*",))["/run/aeros.sock"] is True
    for index in range(_TRUSTED_MEMO_LIMIT + 10):
        assert networks[f"10.0.{index // 256}.{index % 256}"] is True
    assert 0 < len(networks) <= _TRUSTED_MEMO_LIMIT


def test_request_id_in_a_websocket_on_aeros_server(tmp_path: Path) -> None:
    """A WebSocket on aeros' server (a scope with no header lines) gets an id of its own, taken
    from a trusted proxy when given, and sees it in its view."""
    from quart import websocket
    from websockets.sync.client import connect

    app = id_app(tmp_path, request_id=True, forwarded_allow_ips="127.0.0.1")

    @app.websocket("/ws")
    async def tell() -> None:
        await websocket.receive()
        await websocket.send(aeros.request_id() or "none")

    def exchange(url: str, headers: dict[str, str]) -> str:
        with connect(url, additional_headers=headers, open_timeout=5) as client:
            client.send("id?")
            return str(client.recv(timeout=5))

    with app.serve_in_thread() as url:
        ws_url = url.replace("http://", "ws://") + "/ws"
        made = [exchange(ws_url, {}), exchange(ws_url, {})]
        given = exchange(ws_url, {"X-Request-ID": "from-proxy-ws"})
    assert all(HEX32.match(value) for value in made)
    assert made[0] != made[1]
    assert given == "from-proxy-ws"


def _rewritten(scope: Any) -> Any:
    """The scope with the client's X-Request-ID dropped, and one set on ``?set``."""
    headers = [(name, value) for name, value in scope["headers"] if name != b"x-request-id"]
    if scope["query_string"] == b"set":
        headers.append((b"x-request-id", b"set-in-front"))
    return {**scope, "headers": headers}


@pytest.mark.parametrize("front", ["asgi-wrapper", "subclass-asgi-app", "replaced-asgi-app"])
def test_request_id_follows_headers_changed_in_front_of_the_layers(
    tmp_path: Path, front: str
) -> None:
    """On aeros' server, code that runs before aeros' layers and changes the headers (an ASGI
    wrapper, a subclass's asgi_app, a replaced app.asgi_app) decides what the layer sees: an
    X-Request-ID it dropped is not taken, one it set is (the server's note of the header as
    parsed is not used then)."""

    class Rewriting(WebServer):
        async def asgi_app(self, scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                scope = _rewritten(scope)
            await super().asgi_app(scope, receive, send)

    kind = Rewriting if front == "subclass-asgi-app" else WebServer
    app = kind(
        __name__,
        request_id=True,
        forwarded_allow_ips="127.0.0.1",
        access_log=False,
        log_file=str(tmp_path / "server.log"),
    )

    @app.route("/id")
    async def show_id() -> str:
        return aeros.request_id() or "none"

    served: Any = app
    if front == "asgi-wrapper":

        async def wrapper(scope: Any, receive: Any, send: Any) -> None:
            await app(_rewritten(scope) if scope["type"] == "http" else scope, receive, send)

        served = wrapper
    elif front == "replaced-asgi-app":
        inner = app.asgi_app

        async def replaced(scope: Any, receive: Any, send: Any) -> None:
            await inner(_rewritten(scope) if scope["type"] == "http" else scope, receive, send)

        app.asgi_app = replaced  # type: ignore[method-assign]
    with served_by_aeros(served, app) as url:
        dropped = httpx.get(url + "/id", headers={"X-Request-ID": "from-the-client"})
        set_in_front = httpx.get(url + "/id?set")
    assert HEX32.match(dropped.text)
    assert dropped.headers["x-request-id"] == dropped.text
    assert set_in_front.text == set_in_front.headers["x-request-id"] == "set-in-front"
