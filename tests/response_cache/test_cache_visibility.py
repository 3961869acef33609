"""What the response cache stores and says: per-request headers never replayed, responses that
can never be stored logged as ``uncacheable`` with one warning per route, small files stored."""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from quart import Response, send_file

from aeros import SimpleCache, WebServer
from aeros.response_cache.layer import CacheMiddleware
from aeros.response_cache.policy import CachePolicy
from tests.support.asgi import http_scope
from tests.support.cache import BACKENDS, LiveServer, Records, call, make_store

PER_REQUEST = {
    "x-request-id": "req-{n}",
    "ratelimit-limit": "100",
    "ratelimit-remaining": "{left}",
    "ratelimit-reset": "{n}",
    "ratelimit-policy": "100;w=60",
    "ratelimit": "limit=100, remaining={left}, reset=60",
    "x-ratelimit-remaining": "{left}",
    "retry-after": "{n}",
}


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """A fresh, empty store of every backend."""
    return make_store(request.param, tmp_path, request)


def test_cache_never_stores_per_request_headers(store: Any, live_server: LiveServer) -> None:
    """Headers an after_request hook adds per request (request id, rate-limit state,
    Retry-After) reach the response that filled the entry but are never replayed by a hit;
    other hook headers are (the hook does not run on a hit)."""
    app = WebServer(__name__, access_log=False, cache=store)
    counter = itertools.count()

    @app.after_request
    async def stamp(response: Response) -> Response:
        n = next(counter)
        for name, value in PER_REQUEST.items():
            response.headers[name] = value.format(n=n, left=99 - n)
        response.headers["X-Hook"] = f"hook-{n}"
        return response

    @app.route("/")
    @app.cache(timeout=60)
    async def home() -> str:
        return "home"

    with live_server(app) as url, httpx.Client(base_url=url) as client:
        fill = client.get("/")
        hits = [client.get("/") for _ in range(2)]
    for name, value in PER_REQUEST.items():
        assert fill.headers[name] == value.format(n=0, left=99)
    assert fill.headers["x-hook"] == "hook-0"
    for hit in hits:
        assert hit.headers.get("age") is not None, "not a hit"
        assert hit.text == "home"
        assert [name for name in PER_REQUEST if name in hit.headers] == []
        assert hit.headers["x-hook"] == "hook-0"  # replayed: documented in README
        assert len(hit.headers.get_list("date")) == 1  # the server's own, fresh


def uncacheable_app(tmp_path: Path) -> tuple[WebServer, Path]:
    log = tmp_path / "access.log"
    app = WebServer(__name__, access_log=True, access_log_file=str(log), cache=SimpleCache())

    @app.route("/origin")
    @app.cache(timeout=60)
    async def by_origin() -> Response:
        return Response("cors", headers={"Vary": "Origin"})  # what quart-cors adds

    @app.route("/stream")
    @app.cache(timeout=60)
    async def stream() -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"a"
            yield b"b"

        return Response(chunks(), mimetype="text/plain")

    @app.route("/cookie")
    @app.cache(timeout=60)
    async def cookie() -> Response:
        return Response("c", headers={"Set-Cookie": "s=1"})

    @app.route("/missing")
    @app.cache(timeout=60)
    async def missing() -> tuple[str, int]:
        return "no", 404

    @app.route("/fine")
    @app.cache(timeout=60)
    async def fine() -> str:
        return "fine"

    return app, log


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        pytest.param("/origin", "Vary: origin names a header outside", id="vary-origin"),
        pytest.param("/stream", "streamed (no Content-Length)", id="stream"),
        pytest.param("/cookie", "Set-Cookie", id="set-cookie"),
    ],
)
def test_cache_uncacheable_logged_with_reason(
    tmp_path: Path, live_server: LiveServer, path: str, reason: str
) -> None:
    """A response the cache may not store logs cache=uncacheable on every request (not
    miss) and one warning for the route naming the reason."""
    app, log = uncacheable_app(tmp_path)
    with Records("aeros.response_cache.layer") as records, live_server(app) as url:
        for _ in range(3):
            assert httpx.get(url + path).status_code == 200
        httpx.get(url + "/fine")
        httpx.get(url + "/fine")
    lines = log.read_text().splitlines()
    states = [re.search(r"cache=(\S+)$", line).group(1) for line in lines]  # type: ignore[union-attr]
    assert states == ["uncacheable"] * 3 + ["miss", "hit"], lines
    warnings = [r.getMessage() for r in records.records]
    assert len(warnings) == 1, warnings
    assert reason in warnings[0]
    assert repr(path.strip("/").replace("origin", "by_origin")) in warnings[0]


def test_cache_body_over_store_limit_is_uncacheable(
    tmp_path: Path, live_server: LiveServer
) -> None:
    """A body the store would refuse (over its max_bytes) is logged uncacheable, not miss."""
    log = tmp_path / "access.log"
    store = SimpleCache(max_bytes=1000)
    app = WebServer(__name__, access_log=True, access_log_file=str(log), cache=store)

    @app.route("/big")
    @app.cache(timeout=60)
    async def big() -> str:
        return "x" * 2000

    with Records("aeros.response_cache.layer") as records, live_server(app) as url:
        for _ in range(2):
            assert httpx.get(url + "/big").text == "x" * 2000
    assert [line.rsplit(" ", 1)[1] for line in log.read_text().splitlines()] == [
        "cache=uncacheable"
    ] * 2
    assert ["entry limit (1000 bytes)" in r.getMessage() for r in records.records] == [True]


def test_cache_status_outside_statuses_is_quiet(tmp_path: Path, live_server: LiveServer) -> None:
    """A status the route does not cache (a 404) is uncacheable but not worth a warning."""
    app, log = uncacheable_app(tmp_path)
    with Records("aeros.response_cache.layer") as records, live_server(app) as url:
        assert httpx.get(url + "/missing").status_code == 404
    assert log.read_text().rstrip().endswith("cache=uncacheable")
    assert records.records == []


def test_cache_stores_small_send_file(store: Any, tmp_path: Path, live_server: LiveServer) -> None:
    """send_file bodies are stored like any other: the second request is a hit."""
    (tmp_path / "note.txt").write_text("a small file " * 50)
    app = WebServer(__name__, access_log=False, cache=store)
    reads = []

    @app.route("/note")
    @app.cache(timeout=60)
    async def note() -> Response:
        reads.append(1)
        return await send_file(tmp_path / "note.txt")

    with live_server(app) as url, httpx.Client(base_url=url) as client:
        first, second = client.get("/note"), client.get("/note")
    assert first.text == second.text == "a small file " * 50
    assert second.headers.get("age") is not None
    assert len(reads) == 1


async def test_cache_stores_small_pathsend_file(tmp_path: Path) -> None:
    """A file the app hands to the server by path (ASGI pathsend, as Starlette's FileResponse
    and send_file-like helpers do) is read and stored when within the entry limit; a larger
    one is passed on untouched."""
    small, large = tmp_path / "small.txt", tmp_path / "large.bin"
    small.write_bytes(b"s" * 100)
    large.write_bytes(b"L" * 5000)
    runs = []

    async def inner(scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = small if scope["path"] == "/small" else large
        runs.append(scope["path"])
        size = str(path.stat().st_size).encode()
        headers = [(b"content-type", b"text/plain"), (b"content-length", size)]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.pathsend", "path": str(path)})

    policy = CachePolicy(timeout=60, route="files")
    layer = CacheMiddleware(inner, SimpleCache(), lambda scope: policy, max_entry_bytes=1000)
    for _ in range(2):
        response = await call(layer, http_scope("/small"))
        assert response.body == b"s" * 100
    assert response.header(b"age") is not None
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await layer(http_scope("/large"), receive, send)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.pathsend"]
    assert runs == ["/small", "/large"]
