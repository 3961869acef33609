"""A request whose head says it has no body is served without ``receive()`` on aeros' server.

The lean connection (:mod:`aeros.fastpath.http`) reads a request's body before the view runs.
When aeros' server parsed the head (no Transfer-Encoding, no Content-Length but 0) and its own
``send`` and ``receive`` reach the connection, the body is empty: it is not received. A client
that left before the view ran still gets no view run, as when ``receive()`` says so, and
reading resumes as ``receive()`` resumes it; a request that expects ``100 Continue`` still gets
it; a layer that wraps ``receive`` still gets the request's message.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import httpx
import pytest
from quart import request

from aeros import WebServer
from aeros.server.http.cycle import LeanCycle
from aeros.types import HEAD_NOTES, HEADER_LINES, RESPONSE_DONE
from tests.support.cycle import Transport, make


def make_app(ran: list[str]) -> WebServer:
    app = WebServer(__name__, access_log=False, compression=None)

    @app.route("/echo", methods=["GET", "POST", "DELETE"])
    async def echo() -> Any:
        body = await request.get_data()
        ran.append(request.method)
        return {"method": request.method, "body": body.decode()}

    @app.route("/slow")
    async def slow() -> str:
        await asyncio.sleep(0.05)
        ran.append("slow")
        return "slow"

    return app


@pytest.fixture
def received(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The query string of each request whose cycle gave a message from ``receive()``, with
    the message (the server's own method, counted)."""
    messages: list[Any] = []
    original = LeanCycle.receive

    async def counted(self: LeanCycle) -> Any:
        message = await original(self)
        messages.append((self.scope["query_string"], message))
        return message

    monkeypatch.setattr(LeanCycle, "receive", counted)
    return messages


def test_requests_without_a_body_are_not_received(
    live_server: Callable[[WebServer], AbstractContextManager[str]], received: list[Any]
) -> None:
    """GET, DELETE and a POST of Content-Length 0 are answered with an empty body and no
    ``receive()``; a POST with a body and a chunked one are received."""
    ran: list[str] = []
    with live_server(make_app(ran)) as url, httpx.Client(base_url=url) as client:
        got = client.get("/echo?n=1")
        deleted = client.delete("/echo?n=2")
        empty = client.post("/echo?n=3", content=b"")
        posted = client.post("/echo?n=4", content=b"abc")
        chunked = client.post("/echo?n=5", content=iter([b"de", b"f"]))
    assert got.json() == {"method": "GET", "body": ""}
    assert deleted.json() == {"method": "DELETE", "body": ""}
    assert empty.json() == {"method": "POST", "body": ""}
    assert empty.request.headers["content-length"] == "0"
    assert posted.json() == {"method": "POST", "body": "abc"}
    assert chunked.json() == {"method": "POST", "body": "def"}
    assert chunked.request.headers["transfer-encoding"] == "chunked"
    assert ran == ["GET", "DELETE", "POST", "POST", "POST"]
    # the chunked body is read by Quart's own path, which then waits for http.disconnect
    requests = [
        (query, message) for query, message in received if message["type"] == "http.request"
    ]
    assert {query for query, _ in requests} == {b"n=4", b"n=5"}
    bodies = {query: b"" for query, _ in requests}
    for query, message in requests:
        bodies[query] += message["body"]
    assert bodies == {b"n=4": b"abc", b"n=5": b"def"}


def _address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").rstrip("/").split(":")
    return host, int(port)


def test_a_request_that_expects_100_continue_gets_it(
    live_server: Callable[[WebServer], AbstractContextManager[str]],
) -> None:
    """``Expect: 100-continue`` with ``Content-Length: 0`` is received, which sends the
    ``100 Continue`` before the answer, as uvicorn sends it."""
    ran: list[str] = []
    with (
        live_server(make_app(ran)) as url,
        socket.create_connection(_address(url), timeout=5) as sock,
    ):
        sock.sendall(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
            b"Expect: 100-continue\r\nConnection: close\r\n\r\n"
        )
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n")
    assert answer.endswith(b'{"body":"","method":"POST"}\n')
    assert ran == ["POST"]


def test_a_client_that_leaves_is_seen_behind_pipelined_requests(
    live_server: Callable[[WebServer], AbstractContextManager[str]],
) -> None:
    """A slow GET and a DELETE pipelined behind it, then the client leaves: the GET's
    connection reads on (as ``receive()`` has it read), sees the client gone and runs no
    DELETE, on every Python (a request started eagerly, as 3.12+ once did, ran its view before
    the DELETE's head was parsed, and the DELETE ran once the GET was answered)."""
    ran: list[str] = []
    with live_server(make_app(ran)) as url:
        for _ in range(5):
            with socket.create_connection(_address(url), timeout=5) as sock:
                sock.sendall(
                    b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\nDELETE /echo HTTP/1.1\r\nHost: x\r\n\r\n"
                )
        deadline = time.monotonic() + 5
        while ran.count("slow") < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)  # time for a DELETE to run, where it does
    assert ran.count("slow") == 5
    assert ran.count("DELETE") == 0


def test_a_layer_that_wraps_receive_gets_the_request_message(
    live_server: Callable[[WebServer], AbstractContextManager[str]],
) -> None:
    """With a layer around ``receive``, a GET is received through it, as on any server."""
    seen: list[str] = []

    class Receiving:
        def __init__(self, app: Any) -> None:
            self.app = app

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            async def receiving() -> Any:
                message = await receive()
                seen.append(message["type"])
                return message

            await self.app(scope, receiving if scope["type"] == "http" else receive, send)

    ran: list[str] = []
    app = make_app(ran)
    app.add_middleware(Receiving)
    with live_server(app) as url, httpx.Client(base_url=url) as client:
        got = client.get("/echo")
    assert got.json() == {"method": "GET", "body": ""}
    assert seen == ["http.request"]


def _scope() -> dict[str, Any]:
    headers = [(b"host", b"example.com")]
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/echo",
        "raw_path": b"/echo",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
        # what aeros' server notes as it parses a head without a body
        HEAD_NOTES: (headers, len(headers), -1, None),
        HEADER_LINES: [],
        RESPONSE_DONE: [],
    }


@pytest.mark.parametrize("gone", [True, False])
def test_a_client_gone_before_the_view_ran_gets_no_view(gone: bool, received: list[Any]) -> None:
    """A cycle whose client has left runs no view (what ``receive()`` would have said); one
    whose client is there gets its answer written."""
    ran: list[str] = []
    app = make_app(ran)
    cycle = make(LeanCycle, scope=_scope())
    cycle.more_body = False
    cycle.message_event.set()
    cycle.disconnected = gone
    cycle.logger = logging.getLogger("aeros.test")

    async def serve() -> None:
        async with app.test_app():  # the app's startup, as a server runs it
            await cycle.run_asgi(app.server_entry())  # what aeros' server calls

    asyncio.run(serve())
    assert received == []  # what the cycle says stands for receive()
    transport: Transport = cycle.transport
    if gone:
        assert ran == []
        assert transport.written == []
    else:
        assert ran == ["GET"]
        written = b"".join(transport.written)
        assert written.startswith(b"HTTP/1.1 200 OK\r\n")
        assert written.endswith(b'{"body":"","method":"GET"}\n')
