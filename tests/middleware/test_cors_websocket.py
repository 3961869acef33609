"""CORS(...) also guards WebSocket handshakes, which browsers never subject to CORS."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
from quart import websocket
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from aeros import CORS, WebServer
from aeros.middleware.cors import CORSMiddleware

APP_ORIGIN = "https://app.example.com"
LiveServer = Callable[[WebServer], AbstractContextManager[str]]


def echo_app(cors: CORS) -> tuple[WebServer, list[str]]:
    """An app whose /ws echoes one message; the list records each handshake the view saw."""
    app = WebServer(
        __name__, cors=cors, access_log=False, global_headers={"X-Frame-Options": "DENY"}
    )
    seen: list[str] = []

    @app.websocket("/ws")
    async def echo() -> None:
        seen.append(websocket.headers.get("Origin", "-"))
        message = await websocket.receive()
        await websocket.send(f"echo {message}")

    return app, seen


def exchange(url: str, origin: str | None) -> str:
    with connect(url, origin=origin, open_timeout=5) as client:  # type: ignore[arg-type]
        client.send("hi")
        return str(client.recv(timeout=5))


def test_websocket_from_a_foreign_origin_is_refused(live_server: LiveServer) -> None:
    """A handshake whose Origin is not allowed gets 403 before the view runs."""
    app, seen = echo_app(CORS([APP_ORIGIN]))
    with live_server(app) as url:
        ws_url = url.replace("http://", "ws://") + "/ws"
        for origin in ("https://evil.example", "null", "https://app.example.com.evil.example"):
            with pytest.raises(InvalidStatus) as info:
                exchange(ws_url, origin)
            response = info.value.response
            assert response.status_code == 403
            assert response.body == b"WebSocket refused: origin not allowed"
            assert response.headers["X-Frame-Options"] == "DENY"
    assert seen == []


def test_websocket_from_allowed_same_or_no_origin_is_served(live_server: LiveServer) -> None:
    """Allowed origins, the server's own origin and clients without Origin are served."""
    app, seen = echo_app(CORS([APP_ORIGIN]))
    with live_server(app) as url:
        ws_url = url.replace("http://", "ws://") + "/ws"
        assert exchange(ws_url, APP_ORIGIN) == "echo hi"
        assert exchange(ws_url, url) == "echo hi"  # the page the server itself served
        assert exchange(ws_url, None) == "echo hi"  # not a browser: nothing to protect
    assert seen == [APP_ORIGIN, url, "-"]


def test_websocket_any_origin_policy_checks_nothing(live_server: LiveServer) -> None:
    """CORS('*') allows every origin, WebSockets included."""
    app, _ = echo_app(CORS("*"))
    with live_server(app) as url:
        assert (
            exchange(url.replace("http://", "ws://") + "/ws", "https://evil.example") == "echo hi"
        )


async def test_websocket_refused_with_close_without_the_response_extension() -> None:
    """Where the server lacks websocket.http.response, the refusal is a close before accept."""
    called: list[Any] = []
    sent: list[dict[str, Any]] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        called.append(scope)

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "websocket",
        "headers": [(b"host", b"api.example"), (b"origin", b"https://evil.example")],
    }
    await CORSMiddleware(inner, CORS([APP_ORIGIN]))(scope, receive, send)
    assert (called, sent) == ([], [{"type": "websocket.close", "code": 1008}])
    scope["headers"] = [(b"host", b"api.example:443"), (b"origin", b"https://API.example")]
    await CORSMiddleware(inner, CORS([APP_ORIGIN]))(scope, receive, send)
    assert called == [scope]  # same origin, default port written or not
