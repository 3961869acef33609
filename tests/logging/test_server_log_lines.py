"""The server log as written: no literal \\n, no uvicorn WebSocket lines, no "uvicorn.error"."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from quart import websocket
from websockets.sync.client import connect

from aeros import WebServer
from aeros.types import Receive, Scope, Send


def _app(tmp_path: Path, *, access_log: bool) -> WebServer:
    app = WebServer(
        __name__,
        access_log=access_log,
        access_log_file=str(tmp_path / "access.log") if access_log else None,
        log_file=str(tmp_path / "server.log"),
        compression=None,
    )

    @app.route("/")
    async def home() -> str:
        return "ok"

    @app.websocket("/ws")
    async def echo() -> None:
        message = await websocket.receive()
        await websocket.send(f"echo {message}")

    return app


def test_server_log_asgi_exception_line_has_no_literal_newline(live_server, tmp_path) -> None:
    """uvicorn's "Exception in ASGI application\\n" is one line, then the traceback."""
    app = _app(tmp_path, access_log=False)
    inner = app.asgi_app

    async def exploding(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/explode":
            raise RuntimeError("a layer failed")
        await inner(scope, receive, send)

    app.asgi_app = exploding  # type: ignore[method-assign]
    with live_server(app) as url:
        assert httpx.get(url + "/explode").status_code == 500
        assert httpx.get(url + "/").text == "ok"
    text = (tmp_path / "server.log").read_text()
    assert re.search(r"ERROR    aeros\.server: Exception in ASGI application\nTraceback", text)
    assert "\\n" not in text
    assert "RuntimeError: a layer failed" in text


@pytest.mark.parametrize("access_log", [True, False], ids=["access-log-on", "access-log-off"])
def test_server_log_has_no_uvicorn_websocket_lines(live_server, tmp_path, access_log) -> None:
    """A WebSocket gets aeros' one access line (when on) and nothing from uvicorn/websockets."""
    app = _app(tmp_path, access_log=access_log)
    with live_server(app) as url:
        with connect(url.replace("http://", "ws://") + "/ws") as client:
            client.send("hi")
            assert client.recv() == "echo hi"
        assert httpx.get(url + "/").text == "ok"
    server_log = (tmp_path / "server.log").read_text()
    for noise in ("connection open", "connection closed", '"WebSocket /ws"'):
        assert noise not in server_log
    assert "serving on" in server_log  # the log itself was written
    if access_log:
        lines = (tmp_path / "access.log").read_text().splitlines()
        assert len(lines) == 2
        assert '"GET /ws HTTP/1.1" 101 ' in lines[0]


def test_server_log_uvicorn_events_not_named_error(live_server, tmp_path) -> None:
    """uvicorn's start-up and shutdown events show as aeros.server, never as uvicorn.error."""
    app = _app(tmp_path, access_log=False)
    with live_server(app) as url:
        assert httpx.get(url + "/").text == "ok"
    text = (tmp_path / "server.log").read_text()
    assert re.search(r"INFO     aeros\.server: Application startup complete", text)
    assert "uvicorn.error" not in text
