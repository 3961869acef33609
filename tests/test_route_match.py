"""aeros.route_match: the route of a request as Quart would route it, remembered per
(method, host, path) for the layers in front of Quart, and forgotten when a route is added."""

from __future__ import annotations

from typing import Any

import httpx
from quart import Quart

from aeros import RateLimit, SimpleCache, WebServer, rate_limit
from aeros.route_match import MEMO_LIMIT, RouteMemo, match_route, request_host, rules_version
from tests.support.asgi import http_scope


def test_match_route_binds_like_quart_host_and_subdomain_matching() -> None:
    """Host matching, subdomains under SERVER_NAME, root paths and 404/405 answers."""
    app = WebServer(__name__, host_matching=True, static_host="static.test")

    @app.route("/", host="a.test")
    async def a() -> str:
        return "a"

    scope = http_scope("/", headers=[(b"host", b"A.test")])
    host = request_host(app, scope)
    assert host == "a.test"
    matched = match_route(app, scope, host)
    assert matched is not None
    assert matched[0].endpoint == "a"
    assert match_route(app, http_scope("/", headers=[(b"host", b"b.test")]), "b.test") is None

    sub = WebServer(__name__, subdomain_matching=True)
    sub.config["SERVER_NAME"] = "example.test"

    @sub.route("/", subdomain="api")
    async def api() -> str:
        return "api"

    found = match_route(sub, http_scope("/"), "api.example.test")
    assert found is not None
    assert found[0].endpoint == "api"
    assert match_route(sub, http_scope("/"), "www.example.test") is None
    assert match_route(sub, http_scope("/", method="DELETE"), "api.example.test") is None


def test_route_memo_is_bounded_and_forgets_when_a_route_is_added() -> None:
    """At most MEMO_LIMIT answers; a rule added later is seen by the next lookup."""
    app = WebServer(__name__)
    calls: list[str] = []

    def derive(scope: Any, matched: Any) -> str | None:
        calls.append(scope["path"])
        return None if matched is None else str(matched[0].endpoint)

    memo = RouteMemo(app, derive)
    assert memo(http_scope("/late")) is None
    assert memo(http_scope("/late")) is None
    assert calls == ["/late"]  # remembered

    @app.route("/late")
    async def late() -> str:
        return "late"

    assert memo(http_scope("/late")) == "late"
    for i in range(MEMO_LIMIT + 100):
        memo(http_scope(f"/random/{i}"))
    assert len(memo._memo) <= MEMO_LIMIT


def test_layers_in_front_of_quart_see_a_route_added_after_serving_started() -> None:
    """The cache, the rate limiter and the metrics label agree with Quart about a route
    registered after the first requests (before the fix their memos kept the old answer)."""
    app = WebServer(
        __name__,
        cache=SimpleCache(),
        access_log=False,
        metrics=True,
        rate_limit=RateLimit("1000/minute"),
    )
    calls = [0]

    @app.route("/")
    async def home() -> str:
        return "home"

    with app.serve_in_thread() as url, httpx.Client() as client:
        assert client.get(url + "/late").status_code == 404

        @app.route("/late")
        @app.cache(timeout=60)
        @rate_limit("2/minute")
        async def late() -> str:
            calls[0] += 1
            return "late"

        statuses = [client.get(url + "/late").status_code for _ in range(3)]
        assert statuses == [200, 200, 429]  # limited: the rate limiter found the new route
        assert calls[0] == 1  # cached: the second answer was a hit
        scrape = client.get(url + "/metrics").text
        assert 'route="/late",status="429"' in scrape


def test_a_remembered_lookup_never_lists_every_rule(monkeypatch: Any) -> None:
    """werkzeug's ``Map._rules`` builds a list of every rule on each access; a remembered
    lookup on aeros' map reads a counter instead, so its cost does not grow with the routes.
    A map without the counter (any other Quart map) still sees added routes."""
    app = WebServer(__name__)
    for i in range(300):
        app.add_url_rule(f"/r{i}", f"r{i}", lambda: "x")
    listed: list[int] = []
    rules_property = type(app.url_map)._rules

    def counting(url_map: Any) -> Any:
        listed.append(1)
        return rules_property.fget(url_map)

    monkeypatch.setattr(type(app.url_map), "_rules", property(counting))
    memo = RouteMemo(app, lambda scope, matched: matched is not None)
    assert memo(http_scope("/r7")) is True
    for _ in range(100):
        assert memo(http_scope("/r7")) is True
    assert listed == []
    app.add_url_rule("/late", "late", lambda: "late")
    assert memo(http_scope("/late")) is True

    class PlainMap:  # a map without aeros' counter: its rules are counted
        def __init__(self) -> None:
            self._rules = [1, 2]

    assert rules_version(PlainMap()) == 2
    plain = Quart(__name__)  # Quart's own map: no counter, so its rules are counted
    plain_memo = RouteMemo(plain, lambda scope, matched: matched is not None)
    assert plain_memo(http_scope("/late")) is False
    plain.add_url_rule("/late", "late", lambda: "late")
    assert plain_memo(http_scope("/late")) is True
