"""Write invalidation over a real server, every store: RFC 9111 section 4.4 in Flask style
(the GET and the POST of one URI on two view functions)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from quart import Response, request

from aeros import SimpleCache, WebServer
from aeros.response_cache.invalidation import Target, invalidated_targets
from tests.support.asgi import http_scope
from tests.support.cache import BACKENDS, LiveServer, call, make_store


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """A fresh, empty store of every backend."""
    return make_store(request.param, tmp_path, request)


class Things:
    """GET /thing/<i> cached on one view; writes on other views, none of them cached."""

    def __init__(self, store: Any) -> None:
        self.values: dict[int, str] = {}
        self.reads = 0
        self.app = app = WebServer(__name__, access_log=False, cache=store)

        @app.get("/thing/<int:i>")
        @app.cache(timeout=60)
        async def show(i: int) -> str:
            self.reads += 1
            return f"thing {i} = {self.values.get(i, 'none')}"

        @app.route("/thing/<int:i>", methods=["POST", "PUT", "PATCH", "DELETE"])
        async def write(i: int) -> tuple[str, int]:
            if request.method == "DELETE":
                self.values.pop(i, None)
            else:
                self.values[i] = await request.get_data(as_text=True)
            return "", 204

        @app.post("/thing/<int:i>/refused")
        async def refused(i: int) -> tuple[str, int]:
            self.values[i] = "refused but written"  # a view that changes state and fails
            return "no", 409

        @app.post("/things/<int:i>")
        async def create(i: int) -> Response:
            # the written resource is named by a header, not by the request's URI
            self.values[i] = await request.get_data(as_text=True)
            where = request.args.get("where", f"/thing/{i}")
            header = request.args.get("header", "Location")
            return Response(
                "", status=201 if header == "Location" else 200, headers={header: where}
            )


@pytest.fixture
def things(store: Any, live_server: LiveServer) -> Iterator[tuple[Things, httpx.Client]]:
    site = Things(store)
    with live_server(site.app) as url, httpx.Client(base_url=url, timeout=10) as client:
        yield site, client


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_cache_write_on_another_view_invalidates(
    things: tuple[Things, httpx.Client], method: str
) -> None:
    """A successful unsafe request drops the target URI's entries though another view
    (not cached) answered it: every query string of the path, on every store."""
    site, client = things
    assert client.get("/thing/1").text == "thing 1 = none"
    assert client.get("/thing/1?page=2").text == "thing 1 = none"
    assert client.get("/thing/1").headers.get("age") is not None  # a hit: it was stored
    reads = site.reads
    assert client.request(method, "/thing/1", content="new").status_code == 204
    expected = "none" if method == "DELETE" else "new"
    assert client.get("/thing/1").text == f"thing 1 = {expected}"
    assert client.get("/thing/1?page=2").text == f"thing 1 = {expected}"
    assert site.reads == reads + 2
    assert client.get("/thing/1").headers.get("age") is not None  # stored again


def test_cache_failed_write_keeps_entries(things: tuple[Things, httpx.Client]) -> None:
    """An unsafe request answered 4xx invalidates nothing (RFC 9111: only 2xx/3xx do)."""
    _, client = things
    client.get("/thing/1")
    assert client.post("/thing/1/refused").status_code == 409
    assert client.get("/thing/1").text == "thing 1 = none"  # still the stored entry
    assert client.get("/thing/5").text == "thing 5 = none"
    assert client.post("/thing/5", content="x").status_code == 204
    assert client.get("/thing/1").text == "thing 1 = none"  # another URI: untouched


@pytest.mark.parametrize(
    ("where", "header", "dropped"),
    [
        pytest.param("/thing/2", "Location", True, id="location-path"),
        pytest.param("{url}/thing/2", "Location", True, id="location-absolute"),
        pytest.param("../thing/2", "Location", True, id="location-relative"),
        pytest.param("/thing/2?x=1", "Content-Location", True, id="content-location"),
        pytest.param("http://other.example/thing/2", "Location", False, id="other-host"),
        pytest.param("//other.example/thing/2", "Location", False, id="other-host-no-scheme"),
        pytest.param("https://127.0.0.1/thing/2", "Location", False, id="other-scheme"),
    ],
)
def test_cache_write_invalidates_same_origin_location(
    things: tuple[Things, httpx.Client], where: str, header: str, dropped: bool
) -> None:
    """A same-origin Location / Content-Location of a successful write is invalidated too;
    another origin's URI is not."""
    _, client = things
    assert client.get("/thing/2").text == "thing 2 = none"
    where = where.format(url=str(client.base_url).rstrip("/"))
    response = client.post("/things/2", params={"where": where, "header": header}, content="made")
    assert response.status_code in (200, 201)
    assert client.get("/thing/2").text == ("thing 2 = made" if dropped else "thing 2 = none")


def test_cache_invalidation_targets_unit() -> None:
    """Targets: the request URI, then same-origin locations, each once; other origins never."""
    scope = http_scope("/things/7", method="PUT", headers=[(b"host", b"example.com")])
    headers = [
        (b"location", b"http://example.com:80/a/%62"),
        (b"content-location", b"/things/7"),
        (b"location", b"http://evil.example/a"),
        (b"content-location", b"\xff"),
    ]
    assert invalidated_targets(scope, headers) == [
        Target("/things/7", "example.com"),
        Target("/a/b", "example.com"),
    ]
    mounted = http_scope("/x", method="POST", headers=[(b"host", b"h")])
    mounted["root_path"] = "/api"
    assert invalidated_targets(mounted, [(b"location", b"/api/y"), (b"location", b"/z")]) == [
        Target("/x", "h", "/api"),
        Target("/y", "h", "/api"),
    ]


def test_cache_unsafe_requests_on_uncached_uris_pay_little(live_server: LiveServer) -> None:
    """An unsafe request to a URI whose GET is not cached, or that fails, never calls the
    store and keeps what the layer has decoded."""

    class CountingStore:
        timeout = 60.0

        def __init__(self) -> None:
            self.calls: list[str] = []

        async def get(self, key: str) -> bytes | None:
            self.calls.append("get")
            return None

        async def set(self, key: str, value: bytes, *, ttl: float | None) -> None:
            self.calls.append("set")

        async def delete(self, key: str) -> None:
            self.calls.append("delete")

        async def delete_group(self, group: str) -> int:
            self.calls.append("delete_group")
            return 0

        async def clear(self) -> None:
            self.calls.append("clear")

        async def aclose(self) -> None:
            return None

    store = CountingStore()
    app = WebServer(__name__, access_log=False, cache=store)

    @app.route("/plain", methods=["GET", "POST"])
    async def plain() -> str:
        return "plain"

    @app.route("/cached")
    @app.cache(timeout=60)
    async def cached() -> str:
        return "cached"

    with live_server(app) as url, httpx.Client(base_url=url) as client:
        assert client.get("/plain").text == "plain"
        assert client.post("/plain").text == "plain"
        assert store.calls == []
        layer = app.response_cache._layers[0]
        assert layer.entries.generation == 0  # decoded entries of other URIs are kept
        assert client.post("/cached").status_code == 405
        assert client.delete("/cached").status_code == 405
        assert store.calls == []


async def test_cache_write_during_a_fill_wins() -> None:
    """A GET whose view read the data before a write, and finished after it, never stores
    that old body: the next GET (and one that was waiting on the fill) sees the write."""
    value = {"v": "old"}
    entered, gate = asyncio.Event(), asyncio.Event()
    app = WebServer(__name__, access_log=False, cache=SimpleCache())

    @app.get("/thing")
    @app.cache(timeout=60)
    async def show() -> str:
        current = value["v"]
        entered.set()
        await gate.wait()
        return current

    @app.post("/thing")
    async def write() -> tuple[str, int]:
        value["v"] = "new"
        return "", 204

    @app.get("/other")
    @app.cache(timeout=60)
    async def other() -> str:
        await gate.wait()
        return value["v"]

    slow = asyncio.ensure_future(call(app.asgi_app, http_scope("/thing")))
    unrelated = asyncio.ensure_future(call(app.asgi_app, http_scope("/other")))
    await entered.wait()
    waiter = asyncio.ensure_future(call(app.asgi_app, http_scope("/thing")))
    await asyncio.sleep(0.01)  # the waiter joins the running fill
    assert (await call(app.asgi_app, http_scope("/thing", method="POST"))).status == 204
    gate.set()
    assert (await slow).body == b"old"  # its view read before the write
    assert (await waiter).body == b"new"
    assert (await call(app.asgi_app, http_scope("/thing"))).body == b"new"
    # a write to another URI does not stop /other's fill from being stored
    assert (await unrelated).body == b"new"
    assert (await call(app.asgi_app, http_scope("/other"))).header(b"age") is not None
