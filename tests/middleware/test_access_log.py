"""The access log: one line per request, in each format, escaped and cut, off the event loop."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest

from aeros import ConfigurationError, Limits, WebServer
from aeros.logging.config import LogConfig, configure_logging
from aeros.logging.formatters import MAX_HEADER, MAX_PATH, AccessEntry
from aeros.middleware.access_log import AccessLogMiddleware
from aeros.middleware.concurrency_limit import ConcurrencyLimitMiddleware
from aeros.middleware.headers import GlobalHeaders
from tests.support.asgi import drive
from tests.support.server import wait_until

FORMATS = ("default", "common", "combined", "json")

STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}"
CLF_STAMP = r"\[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\]"
LINE_SHAPES = {
    "default": (
        rf'^{STAMP} 127\.0\.0\.1:\d+ "GET /items\?x=1 HTTP/1\.1" 200 5B \d+\.\d\dms cache=-$'
    ),
    "common": rf'^127\.0\.0\.1 - - {CLF_STAMP} "GET /items\?x=1 HTTP/1\.1" 200 5$',
    "combined": (
        rf'^127\.0\.0\.1 - - {CLF_STAMP} "GET /items\?x=1 HTTP/1\.1" 200 5 '
        r'"http://example\.test/from" "agent/1\.0"$'
    ),
}


def hello_app(tmp_path: Path, fmt: str, **kwargs: Any) -> tuple[WebServer, Path]:
    log = tmp_path / "access.log"
    app = WebServer(
        __name__, access_log=True, access_log_format=fmt, access_log_file=str(log), **kwargs
    )

    @app.route("/items")
    async def items() -> str:
        return "hello"

    @app.route("/<path:anything>")
    async def anything(anything: str) -> str:
        return "x"

    return app, log


# ---- over a real socket ----------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["default", "common", "combined"])
def test_access_line_shape(live_server, tmp_path: Path, fmt: str) -> None:
    """Each text format writes exactly the documented line for a request."""
    app, log = hello_app(tmp_path, fmt)
    with live_server(app) as url:
        response = httpx.get(
            url + "/items?x=1",
            headers={"user-agent": "agent/1.0", "referer": "http://example.test/from"},
        )
    assert response.text == "hello"
    lines = log.read_text().splitlines()
    assert len(lines) == 1
    assert re.match(LINE_SHAPES[fmt], lines[0]), lines[0]


def test_access_json_lines_parse(live_server, tmp_path: Path) -> None:
    """json writes one object per line with every field, typed."""
    app, log = hello_app(tmp_path, "json")
    with live_server(app) as url:
        httpx.get(url + "/items?x=1", headers={"user-agent": "agent/1.0 ünïcode".encode()})
        httpx.get(url + "/missing/page")
    first, second = (json.loads(line) for line in log.read_text().splitlines())
    assert first["client"].startswith("127.0.0.1:")
    assert (first["method"], first["path"], first["query"]) == ("GET", "/items", "x=1")
    assert (first["protocol"], first["status"], first["bytes"]) == ("HTTP/1.1", 200, 5)
    assert first["user_agent"] == "agent/1.0 ünïcode"
    assert first["referer"] is None
    assert first["cache"] is None
    assert isinstance(first["duration_ms"], float)
    assert first["duration_ms"] >= 0
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d{4}$", first["time"])
    assert second["path"] == "/missing/page"


def test_access_log_off_writes_nothing(live_server, tmp_path: Path) -> None:
    """access_log=False leaves the layer out: no line at all."""
    app, log = hello_app(tmp_path, "default")
    app.log_config = LogConfig(access_log=False, access_log_file=str(log))
    with live_server(app) as url:
        assert httpx.get(url + "/items").status_code == 200
    assert not log.exists() or log.read_text() == ""


def test_access_log_from_forked_workers(live_server, tmp_path: Path) -> None:
    """With 2 worker processes every request still gets exactly one line in the file."""
    app, log = hello_app(tmp_path, "common", workers=2)
    with live_server(app) as url:
        for _ in range(20):
            assert httpx.get(url + "/items", headers={"connection": "close"}).text == "hello"
    lines = log.read_text().splitlines()
    assert len(lines) == 20
    assert all(line.endswith('"GET /items HTTP/1.1" 200 5') for line in lines)


def raw_request(url: str, request: bytes) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(request)
        return sock.recv(65536)


@pytest.mark.parametrize("fmt", FORMATS)
def test_access_log_injection_over_the_wire(live_server, tmp_path: Path, fmt: str) -> None:
    """A hostile 10 KB User-Agent (8-bit CSI, quotes) and path: one escaped, cut line."""
    app, log = hello_app(tmp_path, fmt)
    agent = b'evil\x9b[31m"\\' + b"A" * 10_000
    path = b"/%1b[2J%0d%0aFAKE" + b"p" * 6_000
    with live_server(app) as url:
        reply = raw_request(
            url,
            b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nUser-Agent: " + agent + b"\r\n"
            b"Connection: close\r\n\r\n",
        )
    status = reply.split(b" ")[1].decode()  # 404: werkzeug's path converter refuses "\n"
    data = log.read_bytes()
    assert data.count(b"\n") == 1
    line = data.decode("ascii")  # every byte outside printable ASCII was escaped
    assert not re.search(r"[\x00-\x1f\x7f]", line.rstrip("\n"))
    assert len(line) < 4 * (MAX_PATH + MAX_HEADER) + 400
    if fmt == "json":
        record = json.loads(line)
        assert record["status"] == int(status)
        assert record["path"].startswith("/%1b[2J%0d%0aFAKEppp")
        assert record["path"].endswith(f"...[+{len(path) - MAX_PATH}]")
        assert record["user_agent"].startswith('evil\\x9b[31m"\\')
        assert re.search(r"A\.\.\.\[\+9\d{3}\]$", record["user_agent"])  # ~9.5 KB cut
    else:
        assert "/%1b[2J%0d%0aFAKEppp" in line
        assert f"...[+{len(path) - MAX_PATH}]" in line
    if fmt == "combined":
        assert '"evil\\x9b[31m\\x22\\x5cAAA' in line


# ---- the layer alone, with a raw ASGI driver ---------------------------------------------


Scope = dict[str, Any]


def scope_for(path: bytes, *, headers: list[tuple[bytes, bytes]] | None = None) -> Scope:
    return {
        "type": "http",
        "http_version": "1.1",
        "method": "GET",
        "path": path.decode("latin-1"),
        "raw_path": path,
        "query_string": b"",
        "headers": headers or [],
        "client": ("203.0.113.9", 4321),
        "server": ("127.0.0.1", 8000),
    }


def chunked_app(*chunks: bytes, status: int = 200, cache_state: str | None = None) -> Any:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if cache_state is not None:
            scope["aeros.cache_state"] = cache_state
        await send({"type": "http.response.start", "status": status, "headers": []})
        for n, chunk in enumerate(chunks):
            more = n < len(chunks) - 1
            await send({"type": "http.response.body", "body": chunk, "more_body": more})

    return app


@pytest.mark.parametrize("fmt", FORMATS)
async def test_access_layer_escapes_raw_control_characters(tmp_path: Path, fmt: str) -> None:
    """ESC, CR/LF and NUL in path and User-Agent (as an h11 server may pass) stay on one line."""
    path = tmp_path / "access.log"
    handle = configure_logging(LogConfig(access_log_format=fmt, access_log_file=str(path)))
    try:
        layer = AccessLogMiddleware(chunked_app(b"ok"), LogConfig(access_log_format=fmt))
        hostile = b"/a\x1b[31m\r\n127.0.0.1 - - FAKE\x00" + b"z" * 10_000
        agent = b"ua\x1b]0;title\x07\r\nX: y" + b"u" * 10_000
        await drive(layer, scope_for(hostile, headers=[(b"user-agent", agent)]))
    finally:
        handle.stop()
    data = path.read_bytes()
    assert data.count(b"\n") == 1
    line = data.decode("ascii").rstrip("\n")
    assert not re.search(r"[\x00-\x1f\x7f]", line)
    assert "FAKE" in line
    assert len(line) < 4 * (MAX_PATH + MAX_HEADER) + 400
    if fmt != "json":
        assert "/a\\x1b[31m\\x0d\\x0a127.0.0.1 - - FAKE\\x00zzz" in line
    else:
        assert json.loads(line)["path"].startswith("/a\x1b[31m\r\n127.0.0.1 - - FAKE\x00zzz")


async def test_access_layer_counts_bytes_and_reads_cache_state(tmp_path: Path) -> None:
    """Bytes are summed over streamed chunks; the cache layer's state is logged."""
    path = tmp_path / "access.log"
    handle = configure_logging(LogConfig(access_log_format="json", access_log_file=str(path)))
    try:
        layer = AccessLogMiddleware(
            chunked_app(b"abc", b"", b"defgh", status=203, cache_state="stale"),
            LogConfig(access_log_format="json"),
        )
        sent = await drive(layer, scope_for(b"/x"))
    finally:
        handle.stop()
    assert [m.get("body") for m in sent[1:]] == [b"abc", b"", b"defgh"]
    record = json.loads(path.read_text())
    assert (record["status"], record["bytes"], record["cache"]) == (203, 8, "stale")
    assert record["client"] == "203.0.113.9:4321"


async def test_access_layer_logs_500_when_app_fails(tmp_path: Path) -> None:
    """An app that raises before answering is logged as 500 and the error propagates."""
    path = tmp_path / "access.log"

    async def failing(scope: Scope, receive: Any, send: Any) -> None:
        raise RuntimeError("boom")

    handle = configure_logging(LogConfig(access_log_format="common", access_log_file=str(path)))
    try:
        with pytest.raises(RuntimeError, match="boom"):
            await drive(AccessLogMiddleware(failing, LogConfig()), scope_for(b"/f"))
    finally:
        handle.stop()
    assert re.search(r'"GET /f HTTP/1\.1" 500 -$', path.read_text().strip())


async def test_access_layer_does_nothing_when_logger_disabled() -> None:
    """With aeros.access off, the layer hands the server's own send through: no per-request work."""
    seen: list[Any] = []

    async def inner(scope: Scope, receive: Any, send: Any) -> None:
        seen.append(send)

    logger = logging.getLogger("aeros.access")
    old_level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        layer = AccessLogMiddleware(inner, LogConfig())

        async def send(message: Any) -> None:
            return None

        await layer(scope_for(b"/"), None, send)  # type: ignore[arg-type]
        await layer({"type": "lifespan"}, None, send)  # type: ignore[arg-type]
    finally:
        logger.setLevel(old_level)
    assert seen == [send, send]


async def test_access_record_reaches_foreign_handlers() -> None:
    """A handler of the user's own on aeros.access gets a readable default-format message."""
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("aeros.access")
    handler = Collect()
    old = (logger.level, logger.propagate)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        await drive(AccessLogMiddleware(chunked_app(b"hey"), LogConfig()), scope_for(b"/u"))
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old[0])
        logger.propagate = old[1]
    (record,) = records
    assert record.name == "aeros.access"
    assert record.levelno == logging.INFO
    assert re.search(
        r' 203\.0\.113\.9:4321 "GET /u HTTP/1\.1" 200 3B [\d.]+ms cache=-$', record.getMessage()
    )
    assert (
        logging.Formatter("%(name)s %(levelname)s %(message)s")
        .format(record)
        .startswith("aeros.access INFO ")
    )


@pytest.mark.parametrize(
    ("fmt", "coloured"),
    [
        pytest.param("default", True, id="default"),
        pytest.param("combined", False, id="combined"),
        pytest.param("json", False, id="json"),
    ],
)
def test_access_line_colour_only_in_default_format(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], fmt: str, coloured: bool
) -> None:
    """With colour on, the default format colours the status; machine formats stay plain."""
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.delenv("NO_COLOR", raising=False)
    access = logging.getLogger("aeros.access")
    handle = configure_logging(LogConfig(access_log_format=fmt))
    try:
        entry = AccessEntry(("127.0.0.1", 5), "GET", b"/", b"", "1.1", 404, 0, 1.0, "hit")
        access.info(entry)
        access.info("plain %s", "message")  # not an AccessEntry: server-log format
    finally:
        handle.stop()
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert ("\x1b[33m404\x1b[0m" in lines[0]) is coloured
    assert ("\x1b" in lines[0]) is coloured
    assert re.search(r"aeros\.access.*: plain message$", lines[1])


async def test_access_line_to_stdout_and_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """access_log_file adds a file: stdout and the file get the same line."""
    monkeypatch.setenv("NO_COLOR", "1")
    path = tmp_path / "access.log"
    handle = configure_logging(LogConfig(access_log_format="combined", access_log_file=str(path)))
    try:
        await drive(
            AccessLogMiddleware(chunked_app(b"body"), LogConfig(access_log_format="combined")),
            scope_for(b"/both", headers=[(b"referer", b"http://r/")]),
        )
    finally:
        handle.stop()
    (line,) = path.read_text().splitlines()
    assert capsys.readouterr().out.splitlines() == [line]
    assert line.endswith('"GET /both HTTP/1.1" 200 4 "http://r/" "-"')


def test_websocket_logged_when_it_closes(live_server, tmp_path: Path) -> None:
    """A WebSocket gets one line when it closes: 101, payload bytes sent; a refused one 403."""
    from quart import websocket
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    app, log = hello_app(tmp_path, "common")

    @app.websocket("/ws")
    async def echo() -> None:
        message = await websocket.receive()
        await websocket.send(f"echo {message}")

    @app.websocket("/refused")
    async def refused() -> None:
        return None  # returns before accepting: the server answers 403

    with live_server(app) as url:
        ws_url = url.replace("http://", "ws://")
        with connect(ws_url + "/ws") as client:
            client.send("héllo")
            assert client.recv() == "echo héllo"
        with pytest.raises(InvalidStatus), connect(ws_url + "/refused"):
            pass
    lines = log.read_text().splitlines()
    assert len(lines) == 2
    assert lines[0].endswith('"GET /ws HTTP/1.1" 101 11')  # "echo héllo" in UTF-8
    assert re.search(r'"GET /refused HTTP/1\.1" 403 ', lines[1])


def test_access_log_has_requests_the_server_refuses(live_server, tmp_path: Path) -> None:
    """A request refused before any app sees it (414 here) still gets its access line."""
    import socket

    app, log = hello_app(tmp_path, "common", limits=Limits(max_request_line=256))
    with live_server(app) as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(b"GET /" + b"a" * 400 + b" HTTP/1.1\r\nHost: a\r\n\r\n")
            assert sock.recv(1024).startswith(b"HTTP/1.1 414 ")
        assert httpx.get(url + "/items").status_code == 200
    lines = log.read_text().splitlines()
    assert len(lines) == 2
    assert '"- - HTTP/1.1" 414 ' in lines[0]
    assert '"GET /items HTTP/1.1" 200 ' in lines[1]


def abandon(url: str, request: bytes) -> None:
    """Send ``request`` (a head and part of its body) and close before any answer."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(request)


def test_access_log_client_gone_before_the_answer_is_499(live_server, tmp_path: Path) -> None:
    """A client that closes mid-upload, before any response, is logged 499 (nginx's "client
    closed request"), not 500; an app that fails without answering stays 500."""
    app, log = hello_app(tmp_path, "common")

    @app.route("/up", methods=["POST"])
    async def upload() -> str:
        from quart import request

        return str(len(await request.get_data()))

    async def failing(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("no answer")

    def failing_on_boom(inner: Any) -> Any:
        async def layer(scope: Any, receive: Any, send: Any) -> None:
            await (failing if scope.get("path") == "/boom" else inner)(scope, receive, send)

        return layer

    app.add_middleware(failing_on_boom)
    with live_server(app) as url:
        abandon(
            url, b"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
        )
        abandon(
            url, b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000
        )
        assert httpx.get(url + "/boom", timeout=5).status_code == 500
        wait_until(lambda: log.read_text().count("\n") >= 3, 5.0, "no access lines", 0.02)
    lines = sorted(log.read_text().splitlines(), key=lambda line: "/boom" in line)
    assert [line.split('"')[2].strip() for line in lines] == ["499 -", "499 -", "500 21"], lines
    assert [line.split('"')[1] for line in lines] == [
        "POST /up HTTP/1.1",
        "POST /up HTTP/1.1",
        "GET /boom HTTP/1.1",
    ]


def test_access_log_head_sends_no_body_bytes(live_server, tmp_path: Path) -> None:
    """A HEAD answer is logged with the bytes sent on the wire: none of the body ("-")."""
    app, log = hello_app(tmp_path, "common")
    with live_server(app) as url:
        assert httpx.head(url + "/items").status_code == 200
        assert httpx.get(url + "/items").text == "hello"
    head, get = log.read_text().splitlines()
    # common prints a size of 0 as "-"; a HEAD logged with the body's 5 bytes would end "200 5"
    assert head.endswith('"HEAD /items HTTP/1.1" 200 -')
    assert get.endswith('"GET /items HTTP/1.1" 200 5')


async def test_concurrency_limit_in_the_stack_is_logged_by_the_access_layer(
    tmp_path: Path,
) -> None:
    """Just inside the access log, the limiter's 503 carries the global headers and gets
    exactly one access line (from the access layer), as do the requests it lets through."""
    path = tmp_path / "access.log"
    entered, release = asyncio.Event(), asyncio.Event()

    async def slow(scope: Scope, receive: Any, send: Any) -> None:
        entered.set()
        await release.wait()
        await chunked_app(b"slow")(scope, receive, send)

    headers = GlobalHeaders([(b"x-frame-options", b"DENY"), (b"content-type", b"x/ignored")])
    limiter = ConcurrencyLimitMiddleware(slow, 1, headers)
    stack = AccessLogMiddleware(limiter, LogConfig(access_log_format="common"))
    handle = configure_logging(LogConfig(access_log_format="common", access_log_file=str(path)))
    try:
        busy = asyncio.create_task(drive(stack, scope_for(b"/slow")))
        await asyncio.wait_for(entered.wait(), 5)
        refused = await drive(stack, scope_for(b"/refused"))
        release.set()
        served = await asyncio.wait_for(busy, 5)
    finally:
        handle.stop()
    start = dict(refused[0]["headers"])
    assert (refused[0]["status"], start[b"x-frame-options"]) == (503, b"DENY")
    assert start[b"content-type"] == b"text/plain; charset=utf-8"  # its own header wins
    assert (start[b"retry-after"], served[0]["status"]) == (b"1", 200)
    assert limiter.in_flight == 0
    lines = path.read_text().splitlines()
    assert len(lines) == 2, lines
    assert re.search(r'"GET /refused HTTP/1\.1" 503 \d+$', lines[0]), lines[0]
    assert lines[1].endswith('"GET /slow HTTP/1.1" 200 4')


def test_concurrency_limit_refuses_a_bad_limit() -> None:
    """The limit is an int >= 1, checked when the layer is built."""
    with pytest.raises(ConfigurationError, match=r"ConcurrencyLimitMiddleware\(limit=0\)"):
        ConcurrencyLimitMiddleware(chunked_app(b""), 0)
