"""WebServer basics over a real socket: it is a Quart, global headers, the Server header."""

from __future__ import annotations

import httpx
import pytest
from quart import Quart

from aeros import ConfigurationError, WebServer


def test_webserver_is_a_quart(app: WebServer) -> None:
    """WebServer stays a Quart so every Quart extension and tool accepts it."""
    assert isinstance(app, Quart)


def test_global_headers_on_every_response(live_server) -> None:
    """Global headers reach 200s and 404s alike, and the Server header carries no version."""
    app = WebServer(__name__, access_log=False, global_headers={"X-Frame-Options": "DENY"})

    @app.route("/")
    async def home() -> dict[str, str]:
        return {"response": "ok"}

    with live_server(app) as url:
        ok = httpx.get(url + "/")
        missing = httpx.get(url + "/nope")
    assert ok.json() == {"response": "ok"}
    for response in (ok, missing):
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers.get_list("server") == ["aeros"]


def test_no_server_header(live_server) -> None:
    """include_server_header=False sends no Server header at all (not even uvicorn's)."""
    app = WebServer(__name__, access_log=False, include_server_header=False)

    @app.route("/")
    async def home() -> str:
        return "hi"

    with live_server(app) as url:
        response = httpx.get(url + "/")
    assert response.status_code == 200
    assert "server" not in response.headers


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"X-Bad": "a\r\nSet-Cookie: x=1"}, id="crlf-in-value"),
        pytest.param({"X-Bad": "a\x00"}, id="nul-in-value"),
        pytest.param({"X Bad": "a"}, id="space-in-name"),
        pytest.param({"X-Bad\n": "a"}, id="lf-in-name"),
    ],
)
def test_global_headers_refuse_injection(headers: dict[str, str]) -> None:
    """Header names/values that could split a response are refused at construction."""
    with pytest.raises(ConfigurationError, match="global_headers"):
        WebServer(__name__, global_headers=headers)


def test_workers_aliases_must_agree() -> None:
    """worker_threads and workers are aliases; two different values are refused."""
    with pytest.raises(ConfigurationError, match="aliases"):
        WebServer(__name__, worker_threads=2, workers=3)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        pytest.param({"port": 70000}, ConfigurationError, "port", id="port-range"),
        pytest.param({"port": "80"}, ConfigurationError, "port", id="port-type"),
        pytest.param({"workers": 0}, ConfigurationError, "workers", id="workers-zero"),
        pytest.param({"backlog": 0}, ConfigurationError, "backlog", id="backlog"),
        pytest.param({"graceful_timeout": -1}, ConfigurationError, "graceful_timeout", id="drain"),
        pytest.param(
            {"max_concurrent_requests": 0}, ConfigurationError, "max_concurrent", id="mcr"
        ),
        pytest.param(
            {"ssl_certfile": "/nonexistent.pem"}, ConfigurationError, "both", id="ssl-half"
        ),
        pytest.param({"server": "gunicorn"}, ConfigurationError, "backend", id="backend"),
        pytest.param(
            {"server": "granian"}, ConfigurationError, "uvicorn", id="granian-not-offered"
        ),
        pytest.param(
            {"forwarded_allow_ips": "not-an-ip"}, ConfigurationError, "forwarded", id="ips"
        ),
        pytest.param({"no_such_option": 1}, TypeError, "no_such_option", id="unknown-kwarg"),
        pytest.param(
            {"worker_healthcheck_timeout": 0}, ConfigurationError, "healthcheck", id="healthcheck"
        ),
        pytest.param(
            {"cache_control": 60}, ConfigurationError, "cache_control", id="cache-control"
        ),
        pytest.param({"cors": {"origins": "*"}}, ConfigurationError, "cors", id="cors-type"),
        pytest.param({"freeze_gc": "yes"}, ConfigurationError, "freeze_gc", id="freeze-gc"),
    ],
)
def test_invalid_server_options_are_refused(kwargs, error, message) -> None:
    """Invalid knobs raise ValueError/TypeError naming the argument."""
    with pytest.raises(error, match=message):
        WebServer(__name__, **kwargs)


def test_global_headers_view_value_wins(live_server) -> None:
    """A header the view sets itself is kept once, with the view's value, not the global one."""
    app = WebServer(__name__, access_log=False, global_headers={"X-Frame-Options": "DENY"})

    @app.route("/")
    async def home() -> tuple[str, dict[str, str]]:
        return "framed", {"X-Frame-Options": "SAMEORIGIN"}

    with live_server(app) as url:
        response = httpx.get(url + "/")
    assert response.headers.get_list("x-frame-options") == ["SAMEORIGIN"]
    assert response.headers.get_list("server") == ["aeros"]


async def test_headers_layer_matches_names_case_insensitively() -> None:
    """A raw ASGI app's mixed-case header still counts as set: no duplicate is added."""
    from aeros.middleware.headers import HeadersMiddleware

    async def inner(scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"Server", b"x")]})
        await send({"type": "http.response.body", "body": b""})

    sent: list[dict] = []

    async def send(message) -> None:
        sent.append(message)

    layer = HeadersMiddleware(inner, [(b"server", b"aeros"), (b"x-a", b"1")])
    await layer({"type": "http"}, None, send)
    assert sent[0]["headers"] == [(b"Server", b"x"), (b"x-a", b"1")]


def test_global_headers_on_answers_the_outer_layers_make(live_server) -> None:
    """Cache hits, 304s, fills, uncached answers and CORS preflights all carry global headers
    exactly once; a view's own value wins on hits too; stored entries do not hold them."""
    from aeros import CORS, SimpleCache
    from aeros.response_cache.entry import decode_entry

    store = SimpleCache()
    app = WebServer(
        __name__,
        access_log=False,
        cache=store,
        cors=CORS(origins=["https://a.example"]),
        global_headers={"X-Frame-Options": "DENY"},
    )

    @app.route("/cached")
    @app.cache()
    async def cached() -> dict[str, str]:
        return {"response": "cached"}

    @app.route("/own")
    @app.cache()
    async def own() -> tuple[str, dict[str, str]]:
        return "framed", {"X-Frame-Options": "SAMEORIGIN"}

    @app.route("/cookie")
    @app.cache()
    async def cookie() -> tuple[str, dict[str, str]]:
        return "not stored", {"Set-Cookie": "a=1"}

    with live_server(app) as url, httpx.Client(base_url=url) as client:
        miss = client.get("/cached")
        hit = client.get("/cached")
        not_modified = client.get("/cached", headers={"If-None-Match": hit.headers["etag"]})
        head = client.head("/cached")
        bypass = client.get("/cached", headers={"Authorization": "Bearer x"})
        own_miss, own_hit = client.get("/own"), client.get("/own")
        cors_hit = client.get("/cached", headers={"Origin": "https://a.example"})
        preflight = client.options(
            "/cached",
            headers={"Origin": "https://a.example", "Access-Control-Request-Method": "GET"},
        )
        refused = client.options(
            "/cached",
            headers={"Origin": "https://b.example", "Access-Control-Request-Method": "GET"},
        )
        unstored = client.get("/cookie")  # last: the client keeps the cookie it sets
    assert (hit.headers["age"], not_modified.status_code) == ("0", 304)
    assert "age" in cors_hit.headers  # a hit, with CORS headers added outside the cache
    assert (preflight.status_code, refused.status_code) == (204, 403)
    assert cors_hit.headers["access-control-allow-origin"] == "https://a.example"
    for response in (miss, hit, not_modified, head, bypass, unstored, cors_hit, preflight, refused):
        assert response.headers.get_list("x-frame-options") == ["DENY"], response
        assert response.headers.get_list("server") == ["aeros"], response
    for response in (own_miss, own_hit):
        assert response.headers.get_list("x-frame-options") == ["SAMEORIGIN"]
    assert "age" in own_hit.headers
    stored = [decode_entry(value) for _, value in store._entries.values()]
    assert len(stored) == 2
    for entry in stored:
        assert entry is not None
        names = {name for name, _ in entry.headers}
        assert b"server" not in names, entry.headers
    assert {
        value for entry in stored for name, value in entry.headers if name == b"x-frame-options"
    } == {b"SAMEORIGIN"}
