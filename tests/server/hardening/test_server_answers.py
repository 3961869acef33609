"""Answers the server makes itself: the app's global headers, one reason phrase, one access-log
line with the status actually sent, and a 503 (not a 500 and a traceback) at shutdown."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from quart import request

from aeros import Limits, WebServer

from .wire import connect, exchange, read_responses, read_until_close

GLOBAL = {"X-Frame-Options": "DENY", "X-Team": "aeros-tests"}
LIMITS = Limits(max_request_line=512, max_header_size=1024, max_body_size=1000, body_timeout=0.5)


def logged_app(tmp_path: Path, **options: Any) -> WebServer:
    """A WebServer with an access log file and a server log file under ``tmp_path``."""
    app = WebServer(
        __name__,
        compression=None,
        global_headers=GLOBAL,
        limits=LIMITS,
        access_log_format="common",
        access_log_file=str(tmp_path / "access.log"),
        log_file=str(tmp_path / "server.log"),
        **options,
    )

    @app.route("/", methods=["GET", "POST"])
    async def index() -> str:
        return "ok"

    @app.route("/raw", methods=["POST"])
    async def raw() -> str:
        return str(len(await request.get_data()))

    return app


def chunked_upload(size: int) -> bytes:
    piece = b"x" * 500
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for _ in range(size // len(piece)))
    return (
        b"POST /raw HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        + chunks
        + b"0\r\n\r\n"
    )


REFUSALS = [
    pytest.param(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "Bad Request", id="400"),
    pytest.param(
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n",
        413,
        "Content Too Large",
        id="413",
    ),
    pytest.param(
        b"GET /" + b"a" * 600 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414, "URI Too Long", id="414"
    ),
    pytest.param(
        b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"v" * 1100 + b"\r\n\r\n",
        431,
        "Request Header Fields Too Large",
        id="431",
    ),
    pytest.param(chunked_upload(2000), 413, "Content Too Large", id="413-chunked-app-running"),
    pytest.param(
        b"POST /raw HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n12345",
        408,
        "Request Timeout",
        id="408-body-idle-app-running",
    ),
    pytest.param(
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        501,
        "Not Implemented",
        id="501",
    ),
]


@pytest.mark.parametrize(("data", "status", "phrase"), REFUSALS)
def test_server_answers_carry_global_headers_and_one_phrase(
    tmp_path: Path, data: bytes, status: int, phrase: str
) -> None:
    """A refusal has the global headers, ``server: aeros``, and its RFC 9110 phrase both in the
    status line and in the body."""
    app = logged_app(tmp_path)
    with app.serve_in_thread(host="127.0.0.1", port=0) as url, connect(url) as sock:
        sock.sendall(data)
        result = read_until_close(sock)
    head = result.raw.split(b"\r\n", 1)[0].decode()
    assert head == f"HTTP/1.1 {status} {phrase}"
    (response,) = result.responses
    assert response.body == phrase.encode()
    assert response.header("x-frame-options") == "DENY"
    assert response.header("x-team") == "aeros-tests"
    assert response.header("server") == "aeros"
    assert response.header("connection") == "close"
    assert [name for name, _ in response.headers].count("content-type") == 1


def test_server_answers_have_no_server_header_when_turned_off(tmp_path: Path) -> None:
    """include_server_header=False: the server's own answers send no Server header either."""
    app = logged_app(tmp_path, include_server_header=False)
    with app.serve_in_thread(host="127.0.0.1", port=0) as url:
        (response,) = exchange(url, b"GET / HTTP/1.1\r\n\r\n").responses
    assert response.status == 400
    assert response.header("server") is None
    assert response.header("x-frame-options") == "DENY"


def test_refused_chunked_upload_gets_one_access_line_with_the_status_sent(tmp_path: Path) -> None:
    """A chunked body over the limit while the view reads it: one line, 413, not a phantom 500."""
    app = logged_app(tmp_path)
    with app.serve_in_thread(host="127.0.0.1", port=0) as url, connect(url) as sock:
        sock.sendall(chunked_upload(2000))
        result = read_until_close(sock)
    assert [r.status for r in result.responses] == [413]
    lines = (tmp_path / "access.log").read_text().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].endswith(f'"POST /raw HTTP/1.1" 413 {len(result.raw)}')


def test_concurrency_limit_503_has_global_headers_and_an_access_line(tmp_path: Path) -> None:
    """max_concurrent_requests' 503 carries the global headers and gets its access-log line."""
    app = logged_app(tmp_path, max_concurrent_requests=1)
    entered = threading.Event()

    @app.route("/slow")
    async def slow() -> str:
        entered.set()
        await asyncio.sleep(0.5)
        return "slow"

    with app.serve_in_thread(host="127.0.0.1", port=0) as url, connect(url) as busy:
        busy.sendall(b"GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
        assert entered.wait(5)
        refused = exchange(url, b"GET /?q=1 HTTP/1.1\r\nHost: a\r\n\r\n")
        (served,) = read_responses(busy, 1)
    (response,) = refused.responses
    assert response.status == 503
    assert response.header("x-frame-options") == "DENY"
    assert response.header("server") == "aeros"
    assert response.header("retry-after") == "1"
    assert served.status == 200
    lines = (tmp_path / "access.log").read_text().splitlines()
    assert len(lines) == 2, lines
    assert f'"GET /?q=1 HTTP/1.1" 503 {len(response.body)}' in lines[0]
    assert '"GET /slow HTTP/1.1" 200 ' in lines[1]


def test_graceful_timeout_answers_503_and_logs_one_line_per_request(tmp_path: Path) -> None:
    """Requests still running at graceful_timeout: a 503 with Connection: close if nothing was
    sent yet, a closed connection if the response had started; one warning line each, no
    traceback, and one access line with the status sent."""
    app = logged_app(tmp_path, graceful_timeout=0.3)
    entered = threading.Barrier(3)

    @app.route("/hang")
    async def hang() -> str:
        await asyncio.to_thread(entered.wait, 5)
        await asyncio.sleep(30)
        return "never"

    @app.route("/stream")
    async def stream() -> Any:
        async def body() -> Any:
            yield b"first "
            await asyncio.to_thread(entered.wait, 5)
            await asyncio.sleep(30)
            yield b"never"

        return body(), 200, {"content-type": "text/plain"}

    with app.serve_in_thread(host="127.0.0.1", port=0) as url:
        hanging, streaming = connect(url), connect(url)
        hanging.sendall(b"GET /hang HTTP/1.1\r\nHost: a\r\n\r\n")
        streaming.sendall(b"GET /stream HTTP/1.1\r\nHost: a\r\n\r\n")
        entered.wait(5)
        started = time.monotonic()
        app.stop()
        hung = read_until_close(hanging, timeout=5)
        streamed = read_until_close(streaming, timeout=5)
        hanging.close()
        streaming.close()
    assert time.monotonic() - started < 5
    (answer,) = hung.responses
    assert (answer.status, answer.header("connection")) == (503, "close")
    assert answer.header("x-frame-options") == "DENY"
    assert hung.closed
    assert streamed.closed
    assert streamed.raw.startswith(b"HTTP/1.1 200 ")
    assert b"never" not in streamed.raw
    assert not streamed.raw.endswith(b"0\r\n\r\n")  # cut: the chunked body never ends
    server_log = (tmp_path / "server.log").read_text()
    assert "Traceback" not in server_log
    assert "Exception in ASGI application" not in server_log
    cut = [line for line in server_log.splitlines() if "cut off" in line]
    assert len(cut) == 2, server_log
    assert any(
        "GET /hang cut off (graceful_timeout of 0.3s exceeded): answered 503" in c for c in cut
    )
    assert any(
        "GET /stream cut off (graceful_timeout of 0.3s exceeded): connection closed" in c
        for c in cut
    )
    access = (tmp_path / "access.log").read_text().splitlines()
    assert sorted(line.split('"')[1] + line.split('"')[2][:4] for line in access) == [
        "GET /hang HTTP/1.1 503",
        "GET /stream HTTP/1.1 200",
    ]


def test_graceful_timeout_503_goes_to_the_running_request_of_a_pipeline(tmp_path: Path) -> None:
    """With requests pipelined behind it, the running one still gets the 503; none after it."""
    app = logged_app(tmp_path, graceful_timeout=0.3)
    entered = threading.Event()

    @app.route("/hang")
    async def hang() -> str:
        entered.set()
        await asyncio.sleep(30)
        return "never"

    with app.serve_in_thread(host="127.0.0.1", port=0) as url, connect(url) as sock:
        sock.sendall(b"GET /hang HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n")
        assert entered.wait(5)
        app.stop()
        result = read_until_close(sock, timeout=5)
    assert [(r.status, r.header("connection")) for r in result.responses] == [(503, "close")]
    assert result.closed
    server_log = (tmp_path / "server.log").read_text()
    assert "GET /hang cut off (graceful_timeout of 0.3s exceeded): answered 503" in server_log
