"""WebServer under an external ASGI server (uvicorn, hypercorn): one Server header, theirs."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import uvicorn
from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config as HypercornConfig

from aeros import WebServer
from aeros.server.runner import bind_socket
from tests.support.server import wait_until


def _app() -> WebServer:
    app = WebServer(__name__, access_log=False, global_headers={"X-Frame-Options": "DENY"})

    @app.route("/")
    async def home() -> dict[str, str]:
        return {"response": "ok"}

    return app


@contextmanager
def _uvicorn(app: WebServer) -> Iterator[str]:
    """Stock uvicorn.Server in a thread on a socket bound to a free loopback port."""
    sock = bind_socket("127.0.0.1", 0, 128)
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="on"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])))
    thread.start()
    try:
        wait_until(lambda: server.started or not thread.is_alive(), 10, "uvicorn did not start")
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
    assert not thread.is_alive()


@contextmanager
def _hypercorn(app: WebServer) -> Iterator[str]:
    """Stock hypercorn in a thread, serving a socket bound to a free loopback port (fd://).

    hypercorn is Quart's own dependency, so it is always installed where aeros is.
    """
    sock = bind_socket("127.0.0.1", 0, 128)
    port = sock.getsockname()[1]
    config = HypercornConfig()
    config.bind = [f"fd://{sock.detach()}"]  # hypercorn owns (and closes) the socket now
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    def run() -> None:
        loop.run_until_complete(hypercorn_serve(app, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]

    thread = threading.Thread(target=run)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:

        def answers() -> bool:
            try:
                httpx.get(url + "/", timeout=1)
            except httpx.TransportError:
                return not thread.is_alive()
            return True

        wait_until(answers, 10, "hypercorn did not start")
        yield url
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()
    assert not thread.is_alive()


def test_external_uvicorn_sends_one_server_header() -> None:
    """Under stock uvicorn the response has uvicorn's Server header only, plus aeros' layers."""
    with _uvicorn(_app()) as url:
        response = httpx.get(url + "/")
    assert response.json() == {"response": "ok"}
    assert response.headers.get_list("server") == ["uvicorn"]
    assert response.headers["x-frame-options"] == "DENY"


def test_external_hypercorn_sends_one_server_header() -> None:
    """Under hypercorn (Quart's own server) the response has hypercorn's Server header only."""
    with _hypercorn(_app()) as url:
        response = httpx.get(url + "/")
    assert response.json() == {"response": "ok"}
    assert len(response.headers.get_list("server")) == 1
    assert response.headers["server"].startswith("hypercorn")
    assert response.headers["x-frame-options"] == "DENY"


def test_aeros_server_after_external_use_sends_server_aeros(live_server) -> None:
    """The same app served by aeros' own server afterwards says `server: aeros` once."""
    app = _app()
    with _uvicorn(app) as url:
        assert httpx.get(url + "/").headers.get_list("server") == ["uvicorn"]
    with live_server(app) as url:
        assert httpx.get(url + "/").headers.get_list("server") == ["aeros"]
