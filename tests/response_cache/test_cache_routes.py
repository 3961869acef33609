"""Route lookup of the response cache: which requests are cached, decided without Quart."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from quart import Blueprint

from aeros import ConfigurationError, FilesystemCache, SimpleCache, WebServer
from aeros.response_cache import routes
from aeros.route_match import MEMO_LIMIT
from aeros.stores import Capabilities
from aeros.stores.base import capabilities_of
from tests.support.asgi import http_scope
from tests.support.cache import (
    BACKENDS,
    DictStore,
    FailingStore,
    LiveServer,
    Records,
    call,
    make_store,
)


def make_app() -> WebServer:
    return WebServer(__name__, access_log=False, cache=SimpleCache())


async def test_cache_decorator_order_does_not_matter() -> None:
    """@app.cache works above or below @app.route, through functools.wraps, in blueprints."""
    app = make_app()
    calls: dict[str, int] = {}

    def counting(name: str) -> str:
        calls[name] = calls.get(name, 0) + 1
        return f"{name} {calls[name]}"

    def passthrough(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        async def inner(*args: Any, **kwargs: Any) -> Any:
            return await func(*args, **kwargs)

        return inner

    @app.cache(timeout=30)
    @app.route("/above")
    async def above() -> str:
        return counting("above")

    @app.route("/wrapped")
    @passthrough
    @app.cache(timeout=30)
    async def wrapped() -> str:
        return counting("wrapped")

    bp = Blueprint("bp", __name__)

    @bp.route("/inside")
    @app.cache(timeout=30)
    async def inside() -> str:
        return counting("inside")

    app.register_blueprint(bp, url_prefix="/bp")
    for path in ("/above", "/wrapped", "/bp/inside"):
        bodies = [(await call(app.asgi_app, http_scope(path))).body for _ in range(3)]
        assert len(set(bodies)) == 1, (path, bodies)
    assert calls == {"above": 1, "wrapped": 1, "inside": 1}
    assert app.response_cache.policy_for(http_scope("/bp/inside")) is not None
    assert app.response_cache.policy_for(http_scope("/nope")) is None


async def test_cache_route_lookup_is_bounded() -> None:
    """Random 404 paths never grow the route-lookup table beyond its limit."""
    app = make_app()

    @app.route("/")
    @app.cache()
    async def home() -> str:
        return "home"

    cache = app.response_cache
    for i in range(MEMO_LIMIT + 500):
        assert cache.policy_for(http_scope(f"/random/{i}")) is None
    assert len(cache.lookup.policy_for.__self__._memo) <= MEMO_LIMIT  # its bound __call__
    assert cache.policy_for(http_scope("/")) is not None


def test_cache_unusable_filesystem_never_5xx(tmp_path: Path, live_server: LiveServer) -> None:
    """A FilesystemCache whose directory becomes a file after start: served uncached."""
    directory = tmp_path / "cache"
    app = WebServer(__name__, access_log=False, cache=FilesystemCache(directory))
    directory.rmdir()
    directory.write_bytes(b"")  # the path can no longer be a directory
    calls = []

    @app.route("/")
    @app.cache()
    async def home() -> str:
        calls.append(1)
        return f"home {len(calls)}"

    with live_server(app) as url:
        responses = [httpx.get(url + "/") for _ in range(5)]
    assert [r.status_code for r in responses] == [200] * 5
    assert len(calls) == 5


def test_cache_refuses_sync_store() -> None:
    """A store with blocking (non-async) methods is refused when the app is built."""

    class SyncStore:
        def get(self, key: str) -> None: ...
        def set(self, key: str, value: bytes, *, ttl: float | None) -> None: ...
        def delete(self, key: str) -> None: ...
        def clear(self) -> None: ...
        def aclose(self) -> None: ...

    with pytest.raises(ConfigurationError, match="async get/set"):
        WebServer(__name__, cache=SyncStore())
    with pytest.raises(ConfigurationError, match="async get/set"):
        WebServer(__name__, cache="redis://localhost")


def dict_store_app(store: Any) -> WebServer:
    app = WebServer(__name__, access_log=False, cache=store)
    calls: dict[str, int] = {}

    @app.route("/<name>", methods=["GET", "POST"])
    @app.cache(timeout=30)
    async def page(name: str) -> str:
        calls[name] = calls.get(name, 0) + 1
        return f"{name} {calls[name]}"

    return app


async def get_text(app: WebServer, path: str) -> bytes:
    return (await call(app, http_scope(path))).body


async def test_cache_user_store_without_capabilities() -> None:
    """A store declaring no capabilities works with the defaults: shared, read with get(),
    and a write invalidation clears it (it has no group delete the cache may use)."""
    store = DictStore()  # has get_nowait and delete_group, but does not declare them
    app = dict_store_app(store)
    assert not app.response_cache.per_process
    assert await get_text(app, "/a") == await get_text(app, "/a") == b"a 1"
    assert await get_text(app, "/b") == b"b 1"
    assert (await call(app, http_scope("/a", method="POST"))).status == 200
    assert store.calls["get_nowait"] == store.calls["delete_group"] == 0
    assert store.calls["clear"] == 1
    assert await get_text(app, "/b") == b"b 2"  # cleared with the rest


@pytest.mark.parametrize(
    ("capabilities", "used"),
    [
        pytest.param(Capabilities(groups=True, nowait_get=True), "delete_group", id="groups"),
        pytest.param(Capabilities(prefix_delete=True, nowait_get=True), "delete_prefix", id="pfx"),
    ],
)
async def test_cache_store_declaring_capabilities(capabilities: Capabilities, used: str) -> None:
    """A store declaring nowait_get is read without a coroutine; one declaring groups (or
    else prefix_delete) has a write invalidation drop only the target's entries with it."""

    class Declared(DictStore):
        pass

    Declared.capabilities = capabilities  # type: ignore[attr-defined]
    store = Declared()
    app = dict_store_app(store)
    assert await get_text(app, "/a") == await get_text(app, "/a") == b"a 1"
    assert await get_text(app, "/b") == b"b 1"
    assert store.calls["get"] == 0
    assert store.calls["get_nowait"] == 3
    assert (await call(app, http_scope("/a", method="POST"))).status == 200
    assert store.calls[used] == 1
    assert store.calls["clear"] == 0
    assert await get_text(app, "/b") == b"b 1"  # another path's entry stays
    assert await get_text(app, "/a") == b"a 3"  # the POST ran the view as the second call


@pytest.mark.parametrize(
    ("capabilities", "match"),
    [
        pytest.param(Capabilities(prefix_delete=True), "no delete_prefix", id="missing-method"),
        pytest.param(frozenset({"groups"}), "must be an aeros.stores.Capabilities", id="not-caps"),
    ],
)
def test_cache_refuses_wrong_capabilities(capabilities: Any, match: str) -> None:
    """Capabilities naming a method the store lacks, or not a Capabilities, are refused
    when the app is built."""

    class Wrong(FailingStore):  # the five protocol methods only
        pass

    Wrong.capabilities = capabilities  # type: ignore[attr-defined]
    with pytest.raises(ConfigurationError, match=match):
        WebServer(__name__, cache=Wrong())


@pytest.mark.parametrize("kind", BACKENDS)
async def test_builtin_stores_declare_what_they_do(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Each built-in store declares its capabilities; only SimpleCache lives per process;
    the memory ones read without a coroutine (TieredCache's local tier); every one keeps tags,
    and the Redis-backed ones locks."""
    store = make_store(kind, tmp_path, request)
    capabilities = capabilities_of(store)
    assert capabilities.groups
    assert capabilities.prefix_delete
    assert capabilities.tags
    assert capabilities.shared == (kind != "memory")
    assert capabilities.nowait_get == (kind in ("memory", "tiered"))
    assert capabilities.local_tier == (kind == "tiered")
    assert capabilities.locks == (kind in ("redis", "tiered"))
    await store.aclose()


class StuckClose(SimpleCache):
    """A memory store whose ``aclose()`` never finishes on its own."""

    def __init__(self) -> None:
        super().__init__()
        self.closes = 0

    async def aclose(self) -> None:
        self.closes += 1
        await asyncio.Event().wait()


def test_cache_store_stuck_closing_does_not_hold_the_shutdown(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store whose close hangs is left behind after ``CLOSE_WITHIN``: the server stops, and
    the warning says where the close was waiting."""
    monkeypatch.setattr(routes, "CLOSE_WITHIN", 0.3)
    store = StuckClose()
    app = WebServer(__name__, access_log=False, cache=store)

    @app.route("/")
    @app.cache(timeout=30)
    async def page() -> str:
        return "page"

    with Records("aeros.response_cache.routes") as log:
        with live_server(app) as url:
            assert httpx.get(url + "/").text == "page"
            started = time.monotonic()
        took = time.monotonic() - started
    assert store.closes == 1
    assert took < 5, f"the server took {took:.1f} s to stop"
    [warning] = [r.getMessage() for r in log.records if "took over 0.3 s" in r.getMessage()]
    assert "SimpleCache(" in warning
    assert "waiting in aclose (" in warning
    assert "test_cache_routes.py" in warning
