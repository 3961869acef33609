"""What aeros' server sends when an app misbehaves, or a client sends valid but unusual bytes,
over a real loopback connection: what uvicorn sends (these differed until a review found them).
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

from quart import request

from aeros import Limits, WebServer
from aeros.types import ASGIApp, Receive, Scope, Send
from tests.test_metrics import scrape_until, value


def _connect(url: str) -> socket.socket:
    host, port = url.rsplit("/", 1)[1].rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=5)
    sock.settimeout(5)
    return sock


def _read(sock: socket.socket, until: bytes | None = None, seconds: float = 5.0) -> bytes:
    """What arrives until ``until`` is seen, the server closes, or ``seconds`` pass."""
    data = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and (until is None or until not in data):
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        if not chunk:
            break
        data += chunk
    return data


def test_a_response_completed_before_the_app_failed_is_delivered(live_server) -> None:
    """A middleware that raises after the response went out (a failing after-response hook)
    closes the connection; the complete response reaches the client first, as on uvicorn
    (it waited in the loop's write batch, which skipped the closing connection)."""
    app = WebServer(__name__, access_log=False)

    class FailsAfter:
        def __init__(self, inner: ASGIApp) -> None:
            self.inner = inner

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            await self.inner(scope, receive, send)
            if scope["type"] == "http" and scope["path"] == "/boom":
                raise RuntimeError("after-response hook failed")

    app.add_middleware(FailsAfter)

    @app.route("/boom")
    async def boom() -> str:
        return "plain view"

    with live_server(app) as url, _connect(url) as sock:
        sock.sendall(b"GET /boom HTTP/1.1\r\nHost: a\r\n\r\n")
        answer = _read(sock)  # to the end: the server closes
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert answer.endswith(b"\r\n\r\nplain view")


def test_trailing_whitespace_is_not_part_of_a_header_value(live_server) -> None:
    """Spaces and tabs after a field value are not part of it (RFC 9110 5.5): a Host with a
    trailing space is valid, the app sees values without them, and ``Expect: 100-continue ``
    gets its 100 Continue."""
    app = WebServer(__name__, access_log=False)

    @app.route("/h", methods=["GET", "POST"])
    async def header() -> str:
        return f"{request.headers['X-Test']!r} {len(await request.get_data())}"

    with live_server(app) as url:
        with _connect(url) as sock:
            sock.sendall(b"GET /h HTTP/1.1\r\nHost: example.com \r\nX-Test: v \t\r\n\r\n")
            answer = _read(sock, until=b"'v' 0")
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
        assert answer.endswith(b"\r\n\r\n'v' 0")
        with _connect(url) as sock:
            sock.sendall(
                b"POST /h HTTP/1.1\r\nHost: a\r\nX-Test: w\r\nContent-Length: 3\r\n"
                b"Expect: 100-continue \r\n\r\n"
            )
            interim = _read(sock, until=b"\r\n\r\n")
            sock.sendall(b"abc")
            answer = _read(sock, until=b"'w' 3")
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")


def test_a_cancelled_error_the_request_did_not_ask_for_is_a_500(live_server) -> None:
    """A view awaiting a task that something else cancelled lets out a CancelledError while
    its own request was not cancelled: a 500, as uvicorn answers (aeros took it for a shutdown
    cutting the request off and closed the connection without an answer)."""
    app = WebServer(__name__, access_log=False)

    @app.route("/c")
    async def cancelled_elsewhere() -> str:
        other = asyncio.ensure_future(asyncio.sleep(10))
        await asyncio.sleep(0)
        other.cancel()
        await other
        return "unreachable"

    with live_server(app) as url, _connect(url) as sock:
        sock.sendall(b"GET /c HTTP/1.1\r\nHost: a\r\n\r\n")
        answer = _read(sock, until=b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 500 ")


def test_metrics_count_the_servers_own_answer_in_the_apps_place(live_server) -> None:
    """A chunked upload over ``max_body_size`` while its view runs is answered 413 by the
    server; the metrics count that 413 (they counted a 500, or what the view sent after)."""
    app = WebServer(__name__, access_log=False, metrics=True, limits=Limits(max_body_size=1000))

    @app.route("/up", methods=["POST"])
    async def upload() -> str:
        return str(len(await request.get_data()))

    with live_server(app) as url:
        with _connect(url) as sock:
            sock.sendall(b"POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
            sock.sendall(b"200\r\n" + b"x" * 512 + b"\r\n")
            time.sleep(0.2)  # the view is waiting for the rest of the body
            sock.sendall(b"400\r\n" + b"x" * 1024 + b"\r\n0\r\n\r\n")
            answer = _read(sock, until=b"\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 413 ")

        def counted(found: dict[Any, float]) -> bool:
            return (
                value(found, "aeros_http_requests_total", method="POST", route="/up", status="413")
                == 1.0
            )

        found = scrape_until(url + "/metrics", counted)
    statuses = {
        dict(labels)["status"]
        for name, labels in found
        if name == "aeros_http_requests_total" and dict(labels).get("route") == "/up"
    }
    assert statuses == {"413"}
