"""Cache-Control: RFC 9111 directive names, per route and app-wide, on a real server."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import httpx
import pytest
from quart import Response, abort, jsonify

from aeros import CacheControl, CacheTypes, ConfigurationError, WebServer

LiveServer = Callable[[WebServer], AbstractContextManager[str]]


@pytest.mark.parametrize(
    ("policy", "value"),
    [
        pytest.param(
            CacheControl(CacheTypes.PUBLIC, max_age=60), "public, max-age=60", id="public"
        ),
        pytest.param(
            CacheControl(CacheTypes.PRIVATE, max_age=0), "private, max-age=0", id="private"
        ),
        pytest.param(CacheControl(CacheTypes.NO_CACHE), "no-cache", id="no-cache"),
        pytest.param(CacheControl(CacheTypes.NO_STORE), "no-store", id="no-store"),
        pytest.param(
            CacheControl(
                CacheTypes.PUBLIC,
                max_age=31536000,
                immutable=True,
                no_transform=True,
                stale_while_revalidate=30,
                stale_if_error=600,
                s_maxage=120,
                must_revalidate=True,
            ),
            "public, max-age=31536000, s-maxage=120, stale-while-revalidate=30, "
            "stale-if-error=600, immutable, no-transform, must-revalidate",
            id="every-directive",
        ),
        pytest.param(CacheControl("private", 5), "private, max-age=5", id="string-type"),
        pytest.param(CacheControl(None, s_maxage=10), "s-maxage=10", id="no-type"),
    ],
)
def test_cache_control_directive_names(policy: CacheControl, value: str) -> None:
    """Directives are written as RFC 9111 names them (max-age, s-maxage, ...)."""
    assert policy.value == value


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param(
            {"max_age": -1}, r"CacheControl\(max_age=-1\) must be an integer >= 0", id="negative"
        ),
        pytest.param({"max_age": 1.5}, "integer >= 0", id="float"),
        pytest.param({"max_age": True}, "integer >= 0", id="bool"),
        pytest.param(
            {"cache_on_status": [999]},
            r"cache_on_status=999\) must be an integer from 100 to 599",
            id="status",
        ),
        pytest.param({"cache_on_status": 200}, "list of statuses", id="status-int"),
        pytest.param({"immutable": "yes"}, "True or False", id="flag"),
        pytest.param({"cache_type": "sometimes"}, "unknown", id="type"),
        pytest.param({"cache_type": CacheTypes.NO_STORE, "max_age": 60}, "no-store", id="no-store"),
        pytest.param({"cache_type": None}, "needs a cache_type", id="empty"),
    ],
)
def test_cache_control_refuses_bad_values(kwargs: dict[str, Any], message: str) -> None:
    """Invalid policies are ConfigurationErrors naming what is allowed."""
    with pytest.raises(ConfigurationError, match=message):
        CacheControl(**kwargs)


def build(app: WebServer) -> WebServer:
    @app.route("/async")
    @CacheControl(CacheTypes.PUBLIC, max_age=60, immutable=True)
    async def async_view() -> Response:
        return jsonify({"ok": True})

    @app.route("/sync")
    @CacheControl(CacheTypes.PRIVATE, max_age=30)
    def sync_view() -> str:
        time.sleep(0)  # a blocking call is fine: Quart runs sync views in a thread
        return "sync"

    @app.route("/maybe/<int:status>")
    @CacheControl(CacheTypes.PUBLIC, max_age=60, cache_on_status=[200, 404])
    async def maybe(status: int) -> Any:
        if status != 200:
            abort(status)
        return "found"

    @app.route("/status/<int:status>")
    @CacheControl(CacheTypes.PUBLIC, max_age=60)
    async def with_status(status: int) -> Any:
        return "body", status

    @app.route("/own")
    @CacheControl(CacheTypes.PUBLIC, max_age=60)
    async def own() -> Any:
        return "own", 200, {"Cache-Control": "no-cache"}

    @app.route("/post", methods=["POST"])
    @CacheControl(CacheTypes.PUBLIC, max_age=60)
    async def post() -> str:
        return "posted"

    @app.route("/plain")
    async def plain() -> str:
        return "no decorator"

    return app


def test_cache_control_decorator_async_and_sync(live_server: LiveServer) -> None:
    """The decorator works on async and sync views."""
    with live_server(build(WebServer(__name__, access_log=False))) as url:
        a = httpx.get(url + "/async", timeout=10)
        s = httpx.get(url + "/sync", timeout=10)
        plain = httpx.get(url + "/plain", timeout=10)
        head = httpx.head(url + "/async", timeout=10)
    assert a.headers["cache-control"] == "public, max-age=60, immutable"
    assert a.json() == {"ok": True}
    assert (s.text, s.headers["cache-control"]) == ("sync", "private, max-age=30")
    assert head.headers["cache-control"] == "public, max-age=60, immutable"
    assert "cache-control" not in plain.headers


def test_cache_control_only_on_listed_statuses(live_server: LiveServer) -> None:
    """The header goes only on statuses in cache_on_status (default [200])."""
    with live_server(build(WebServer(__name__, access_log=False))) as url:
        created = httpx.get(url + "/status/201", timeout=10)
        ok = httpx.get(url + "/status/200", timeout=10)
        missing = httpx.get(url + "/maybe/404", timeout=10)
        server_error = httpx.get(url + "/maybe/500", timeout=10)
    assert "cache-control" not in created.headers
    assert ok.headers["cache-control"] == "public, max-age=60"
    assert missing.status_code == 404
    assert missing.headers["cache-control"] == "public, max-age=60"
    assert "cache-control" not in server_error.headers


def test_cache_control_view_header_and_post(live_server: LiveServer) -> None:
    """A Cache-Control the view set is kept; non-GET/HEAD responses get none."""
    with live_server(build(WebServer(__name__, access_log=False))) as url:
        own = httpx.get(url + "/own", timeout=10)
        post = httpx.post(url + "/post", timeout=10)
    assert own.headers.get_list("cache-control") == ["no-cache"]
    assert "cache-control" not in post.headers


def test_cache_control_app_default(live_server: LiveServer) -> None:
    """WebServer(cache_control=...) covers routes without their own decorator, only those."""
    default = CacheControl(CacheTypes.NO_CACHE, cache_on_status=[200, 404])
    app = build(WebServer(__name__, access_log=False, cache_control=default))
    with live_server(app) as url:
        plain = httpx.get(url + "/plain", timeout=10)
        decorated = httpx.get(url + "/async", timeout=10)
        unlisted = httpx.get(url + "/status/201", timeout=10)
        not_found = httpx.get(url + "/nowhere", timeout=10)
    assert plain.headers["cache-control"] == "no-cache"
    assert decorated.headers["cache-control"] == "public, max-age=60, immutable"
    assert "cache-control" not in unlisted.headers  # its own policy lists only 200
    assert not_found.headers["cache-control"] == "no-cache"
    assert app.extensions["cache_control"] is default


def test_cache_control_keeps_view_metadata() -> None:
    """The decorator keeps the view's name and docstring (routing uses the name)."""

    async def item() -> str:
        """Doc."""
        return "x"

    wrapped = CacheControl(CacheTypes.PUBLIC, max_age=1)(item)
    assert (wrapped.__name__, wrapped.__doc__) == ("item", "Doc.")
    assert "public, max-age=1" in repr(CacheControl(CacheTypes.PUBLIC, max_age=1))
