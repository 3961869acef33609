"""Prometheus metrics over real HTTP: counts equal the requests made, across workers, labelled
by route template; the separate port; worker deaths and replacements; the directory cleaned."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from aeros import ConfigurationError, RateLimit, SecurityHeaders, SimpleCache, WebServer
from aeros.metrics.export import Exporter
from aeros.metrics.layer import MetricsMiddleware
from aeros.metrics.meter import Meter
from aeros.metrics.multiproc import ENV
from aeros.metrics.tally import BUCKETS, SETTLE_AT, UNMATCHED, Tally
from aeros.server.http.cycle import LeanCycle
from aeros.types import CACHE_STATE, RATE_LIMIT_STATE, RESPONSE_DONE, ROUTE
from tests.support.cycle import make
from tests.support.server import wait_until


def metrics_app(cls: type[WebServer] = WebServer, **kwargs: Any) -> WebServer:
    app = cls(__name__, access_log=False, metrics=True, **kwargs)
    seen: dict[str, str | None] = {}
    app.extensions["seen"] = seen

    @app.route("/items/<int:item_id>")
    async def item(item_id: int) -> dict[str, int]:
        seen["dir"] = os.environ.get(ENV)
        return {"id": item_id, "pad": "x" * 2000}  # compressible: app bytes > wire bytes

    @app.route("/cached")
    @app.cache(timeout=60)
    async def cached() -> str:
        return "cached body"

    @app.route("/pid")
    async def pid() -> str:
        return str(os.getpid())

    return app


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a scrape, keyed by name and labels (parsed by prometheus_client)."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(found: dict[Any, float], name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def item_requests(found: dict[Any, float]) -> float:
    """GET requests of ``/items/<int:item_id>`` answered 200, in a scrape."""
    return value(
        found, "aeros_http_requests_total", method="GET", route="/items/<int:item_id>", status="200"
    )


def scrape_until(
    url: str, check: Callable[[dict[Any, float]], bool], timeout: float = 10.0
) -> dict[Any, float]:
    """Scrape until ``check`` holds (other workers flush their counts every second)."""
    last: list[dict[Any, float]] = [{}]

    def ready() -> bool:
        response = httpx.get(url)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
        last[0] = samples(response.text)
        return check(last[0])

    try:
        wait_until(ready, timeout, "the scrape never showed the expected counts", 0.2)
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {last[0]}") from None
    return last[0]


def test_metrics_counts_equal_requests_made_with_two_workers() -> None:
    """With 2 workers, one scrape shows every worker's requests, by route template."""
    app = metrics_app(workers=2, cache=SimpleCache(timeout=60))
    items, missing, cached = 24, 6, 8
    with app.serve_in_thread() as url:
        pids = set()
        with httpx.Client() as client:
            for i in range(items):
                assert (
                    client.get(f"{url}/items/{i}", headers={"Connection": "close"}).status_code
                    == 200
                )
            for i in range(missing):
                assert (
                    client.get(f"{url}/nothing/{i}", headers={"Connection": "close"}).status_code
                    == 404
                )
            for _ in range(cached):
                assert (
                    client.get(f"{url}/cached", headers={"Connection": "close"}).status_code == 200
                )
            for _ in range(20):
                pids.add(client.get(f"{url}/pid", headers={"Connection": "close"}).text)
        route = "/items/<int:item_id>"

        def complete(found: dict[Any, float]) -> bool:
            return (
                value(found, "aeros_http_requests_total", method="GET", route=route, status="200")
                == items
                and value(
                    found, "aeros_http_requests_total", method="GET", route="/pid", status="200"
                )
                == 20
                and value(
                    found, "aeros_http_requests_total", method="GET", route="/cached", status="200"
                )
                == cached
                # a worker's flush is not atomic for a reader in another process: wait until
                # the cache results of both workers are in too
                and value(found, "aeros_cache_results_total", result="hit")
                + value(found, "aeros_cache_results_total", result="miss")
                == cached
                and value(found, "aeros_http_requests_in_flight") == 0
            )

        found = scrape_until(url + "/metrics", complete)
    assert len(pids) == 2  # both workers served (so both flushed into the one scrape)
    assert (
        value(found, "aeros_http_requests_total", method="GET", route=UNMATCHED, status="404")
        == missing
    )
    assert (
        value(found, "aeros_http_requests_total", method="GET", route="/cached", status="200")
        == cached
    )
    assert value(found, "aeros_http_request_duration_seconds_count", route=route) == items
    assert (
        value(found, "aeros_http_request_duration_seconds_bucket", route=route, le="+Inf") == items
    )
    assert value(found, "aeros_http_request_duration_seconds_sum", route=route) > 0
    hits = value(found, "aeros_cache_results_total", result="hit")
    misses = value(found, "aeros_cache_results_total", result="miss")
    assert hits + misses == cached  # each worker has its own SimpleCache: one miss each at most
    assert 1 <= misses <= 2
    assert value(found, "aeros_cache_results_total", result="coalesced") == 0  # present, zero
    wire = value(found, "aeros_http_response_body_bytes_total", stage="wire")
    produced = value(found, "aeros_http_response_body_bytes_total", stage="app")
    assert 0 < wire < produced  # gzip shrank the padded JSON
    assert value(found, "aeros_worker_starts_total") == 2
    labels = {label for key in found for label in key[1]}
    assert not any("/items/1" in route_value for _, route_value in labels)  # never a raw path


def test_metrics_worker_death_and_replacement_are_counted() -> None:
    """A killed worker counts as a death and its successor as a replacement."""
    app = metrics_app(workers=2)
    with app.serve_in_thread() as url:
        victim = int(httpx.get(url + "/pid").text)
        os.kill(victim, signal.SIGKILL)
        found = scrape_until(
            url + "/metrics",
            lambda found: value(found, "aeros_worker_replacements_total") == 1,
        )
        assert value(found, "aeros_worker_deaths_total") == 1
        assert value(found, "aeros_worker_starts_total") == 3


def test_metrics_recycled_workers_count_as_replacements_not_deaths() -> None:
    """A worker replaced at its max_requests quota is a replacement, whichever slot of the fork
    helper the new one takes (recycling starts it in a free slot), and not a death."""
    app = metrics_app(workers=2, max_requests=20)
    with app.serve_in_thread() as url, httpx.Client() as client:
        pids = set()
        deadline = time.monotonic() + 20
        while len(pids) <= 2 and time.monotonic() < deadline:  # bounded by the deadline
            pids.add(client.get(url + "/pid").text)
            time.sleep(0.005)
        assert len(pids) > 2, "no worker was recycled"
        found = scrape_until(
            url + "/metrics",
            lambda found: value(found, "aeros_worker_replacements_total") >= 1,
        )
        starts = value(found, "aeros_worker_starts_total")
        assert value(found, "aeros_worker_replacements_total") == starts - 2
        assert value(found, "aeros_worker_deaths_total") == 0


def test_metrics_count_rate_limit_refusals() -> None:
    """Each 429 of the rate limiter is counted as refused (and as a 429 request)."""
    app = metrics_app(rate_limit=RateLimit("3/minute"))
    with app.serve_in_thread() as url, httpx.Client() as client:
        statuses = [client.get(url + "/items/1").status_code for _ in range(7)]
        assert statuses.count(429) == 4
        found = scrape_until(
            url + "/metrics",
            lambda found: value(found, "aeros_rate_limit_results_total", result="refused") > 0,
        )
        assert value(found, "aeros_rate_limit_results_total", result="refused") == 4
        assert value(found, "aeros_rate_limit_results_total", result="error") == 0
        refused = value(
            found,
            "aeros_http_requests_total",
            method="GET",
            route="/items/<int:item_id>",
            status="429",
        )
        assert refused == 4


def test_metrics_directory_is_made_for_workers_and_removed_at_exit() -> None:
    """The workers share a directory aeros made; it and the variable are gone afterwards."""
    assert ENV not in os.environ
    app = metrics_app(workers=2)
    with app.serve_in_thread() as url:
        directory = os.environ[ENV]
        assert os.path.isdir(directory)
        assert httpx.get(url + "/items/1").status_code == 200
    assert not os.path.exists(directory)
    assert ENV not in os.environ


def test_metrics_on_a_separate_port_only() -> None:
    """With metrics_port the public port does not serve the metrics; the other port does."""
    app = metrics_app(metrics_port=0)
    with app.serve_in_thread() as url:
        assert httpx.get(url + "/metrics").status_code == 404
        assert httpx.get(url + "/items/5").status_code == 200
        assert app.metrics_url is not None
        assert not app.metrics_url.startswith(url)
        found = scrape_until(
            app.metrics_url,
            lambda found: item_requests(found) == 1,
        )
        assert (
            value(found, "aeros_http_requests_total", method="GET", route=UNMATCHED, status="404")
            == 1
        )
        assert httpx.get(app.metrics_url.replace("/metrics", "/other")).status_code == 404
    assert app.metrics_url is None


def test_metrics_path_configurable_and_scrapes_not_counted() -> None:
    """metrics_path moves the scrape; scrapes themselves are not counted as requests."""
    app = metrics_app(metrics_path="/internal/prom")
    with app.serve_in_thread() as url:
        for _ in range(3):
            httpx.get(url + "/internal/prom")
        text = httpx.get(url + "/internal/prom").text
    found = samples(text)
    assert not any(key[0] == "aeros_http_requests_total" for key in found)


def test_metrics_leave_out_health_probes_and_scrapes_on_aeros_server() -> None:
    """aeros' server starts each request's count before the app (no layer frame): a health
    probe or a scrape answered in front of the app is then taken out of it, neither counted
    nor left in flight, while a request of another method on the probe's path is the app's."""
    app = metrics_app(health_path="/healthz")
    with app.serve_in_thread() as url:
        for _ in range(3):
            assert httpx.get(url + "/healthz").status_code == 200
            assert httpx.head(url + "/healthz").status_code == 200
            assert httpx.get(url + "/items/7").status_code == 200
            assert httpx.get(url + "/metrics").status_code == 200
        assert httpx.post(url + "/healthz").status_code == 404  # not a probe: the app answers
        found = scrape_until(url + "/metrics", lambda found: item_requests(found) == 3)
    requests = {
        key: number for key, number in found.items() if key[0] == "aeros_http_requests_total"
    }
    unmatched = frozenset({("method", "POST"), ("route", UNMATCHED), ("status", "404")})
    assert requests == {
        (
            "aeros_http_requests_total",
            frozenset({("method", "GET"), ("route", "/items/<int:item_id>"), ("status", "200")}),
        ): 3,
        ("aeros_http_requests_total", unmatched): 1,
    }
    assert value(found, "aeros_http_requests_in_flight") == 0


def _layer_types(stack: Any) -> list[type]:
    """The classes of a stack's layers, outermost first (each layer's inner app is its
    ``__call__``, bound)."""
    found, layer = [], getattr(stack, "__self__", stack)
    while layer is not None:
        found.append(type(layer))
        inner = getattr(layer, "app", None)
        layer = getattr(inner, "__self__", inner)
    return found


@pytest.mark.parametrize("own_port", [False, True], ids=["public-port", "metrics-port"])
def test_aeros_server_passes_the_metrics_layer_by_and_it_still_scrapes_and_flushes(
    own_port: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """aeros' server counts the metrics itself, so its requests enter the layers with the
    metrics layer left out (those outside it kept: request id, HSTS, health probe); the scrape
    and the lifespan still go through it: the scrape is answered with the outer layers'
    headers, a POST to its path is the app's (and counted), and the counts not flushed yet
    are flushed when the server stops (the second time it serves too, when the lifespan
    starts on the stacks built already)."""
    monkeypatch.setattr("aeros.metrics.export.FLUSH_INTERVAL", 3600.0)  # only the end flushes
    options: dict[str, Any] = {"metrics_port": 0} if own_port else {}
    app = metrics_app(
        request_id=True, health_path="/healthz", security_headers=SecurityHeaders(), **options
    )
    entry = app.server_entry(counted=True)
    assert entry.__func__ is WebServer._enter_counted
    assert app.server_entry().__func__ is WebServer._enter
    with app.serve_in_thread() as url:  # served before: the stacks are built at the start
        assert httpx.get(url + "/healthz").status_code == 200
    with app.serve_in_thread() as url:
        for number in range(3):
            answer = httpx.get(f"{url}/items/{number}")
            assert answer.status_code == 200
            assert answer.headers["x-request-id"]
            assert httpx.get(url + "/healthz").status_code == 200  # a probe: not counted
        scrape = httpx.get(app.metrics_url or url + "/metrics")
        assert scrape.status_code == 200
        assert ("x-request-id" in scrape.headers) is not own_port  # the outer layer's, here
        assert httpx.post(url + "/metrics").status_code == 404  # the app's: no such route
        exporter = app.metrics_exporter
        assert exporter is not None
        counted = _layer_types(app._server_stack)
        layered = _layer_types(app._stack)
    assert MetricsMiddleware in layered
    assert [kind for kind in layered if kind is not MetricsMiddleware] == counted
    assert layered.index(MetricsMiddleware) == 3  # inside request id, HSTS, health probe
    # the POST after the scrape (and, with the metrics on their own port, every request) is
    # counted by the flush at the lifespan's end
    made = exporter.made()
    assert made is not None
    found = samples(generate_latest(made.registry).decode())
    assert item_requests(found) == 3
    assert (
        value(found, "aeros_http_requests_total", method="POST", route=UNMATCHED, status="404") == 1
    )
    assert not any(key[1] >= {("route", "/healthz")} for key in found)
    assert value(found, "aeros_http_requests_in_flight") == 0


class _Tagged(WebServer):
    """A subclass with its own build_stack: a layer around the one aeros builds."""

    def build_stack(self) -> Any:
        inner = super().build_stack()

        async def tagged(scope: Any, receive: Any, send: Any) -> None:
            async def tagging(message: Any) -> None:
                if message["type"] == "http.response.start":
                    message = {**message, "headers": [*message["headers"], (b"x-tag", b"1")]}
                await send(message)

            await inner(scope, receive, tagging if scope["type"] == "http" else send)

        return tagged


class _Opened:
    """A layer with state of its own, opened at the lifespan's start and shown to requests."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.state = "closed"

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            self.state = "open"
        elif scope["type"] == "http":
            scope["opened"] = self.state
        await self.app(scope, receive, send)


class _OwnLayers(WebServer):
    """A subclass with its own layers(): one with state outside the metrics layer."""

    def layers(self) -> list[Any]:
        from aeros.stack import Layer

        return [Layer(_Opened), *super().layers()]


@pytest.mark.parametrize("metrics", [True, False], ids=["metrics", "no-metrics"])
def test_a_subclass_build_stack_or_layers_is_served_as_it_builds_them(metrics: bool) -> None:
    """An app class with its own build_stack or layers gets the stack it builds, under the
    test client and on aeros' server, metrics on or off: no second stack is made for it (a
    layer of its own outside the metrics layer keeps one state)."""
    tagged = _Tagged(__name__, access_log=False, metrics=metrics)
    own = _OwnLayers(__name__, access_log=False, metrics=metrics)

    @tagged.route("/")
    async def home() -> str:
        return "home"

    @own.route("/")
    async def opened() -> str:
        from quart import request

        return str(request.scope.get("opened"))

    async def through_the_test_client() -> str | None:
        response = await tagged.test_client().get("/")
        return response.headers.get("x-tag")

    assert asyncio.run(through_the_test_client()) == "1"
    with tagged.serve_in_thread() as url:
        assert [httpx.get(url + "/").headers.get("x-tag") for _ in range(3)] == ["1"] * 3
    with own.serve_in_thread() as url:
        assert [httpx.get(url + "/").text for _ in range(3)] == ["open"] * 3


def test_a_users_metrics_layer_stays_when_aeros_server_passes_its_own_by() -> None:
    """A MetricsMiddleware the user adds (inside aeros' own) still answers its scrape on
    aeros' server; only aeros' metrics layer is left out of the stack the server enters."""
    app = metrics_app(request_id=True)
    theirs = Exporter()
    app.add_middleware(MetricsMiddleware, theirs, "/their-metrics", lambda scope: "?")
    with app.serve_in_thread() as url:
        assert httpx.get(f"{url}/items/1").status_code == 200
        assert httpx.get(url + "/their-metrics").status_code == 200
        assert httpx.get(url + "/metrics").status_code == 200
        counted = _layer_types(app._server_stack)
        layered = _layer_types(app._stack)
    assert layered.count(MetricsMiddleware) == 2
    assert counted.count(MetricsMiddleware) == 1
    assert counted.index(MetricsMiddleware) > layered.index(MetricsMiddleware)


def test_the_stacks_are_built_once_when_two_threads_ask_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first requests of two servers (or a server and the test client) at once: one
    build, whose two stacks both threads use (two builds could mix an inner layer of each)."""
    app = metrics_app()
    builds: list[int] = []
    build = WebServer._build_stacks

    def slow_build(self: WebServer, *, past_metrics: bool) -> Any:
        builds.append(1)
        time.sleep(0.2)  # the other thread asks meanwhile
        return build(self, past_metrics=past_metrics)

    monkeypatch.setattr(WebServer, "_build_stacks", slow_build)
    entries: list[Any] = []
    threads = [threading.Thread(target=lambda: entries.append(app._layered())) for _ in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert len(builds) == 1
    assert len(entries) == 2
    assert entries[0] is entries[1] is app._stack
    assert MetricsMiddleware not in _layer_types(app._server_stack)


def requests_and_results(found: dict[Any, float]) -> dict[Any, float]:
    """The requests, cache results and in-flight gauge of a scrape, zeros left out."""
    names = ("aeros_http_requests_total", "aeros_cache_results_total")
    kept = {key: number for key, number in found.items() if key[0] in names and number}
    kept[("in_flight", frozenset())] = value(found, "aeros_http_requests_in_flight")
    return kept


def _wrapped(app: WebServer) -> None:
    inner = app.asgi_app

    async def passthrough(scope: Any, receive: Any, send: Any) -> None:
        await inner(scope, receive, send)

    app.asgi_app = passthrough  # type: ignore[method-assign]


class _OwnCall(WebServer):
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/own":  # answered here: not counted
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        await super().__call__(scope, receive, send)


@pytest.mark.parametrize("shape", ["plain", "asgi_app wrapped", "own __call__"])
def test_metrics_count_the_same_whatever_runs_before_the_layers(shape: str) -> None:
    """aeros' server counts the requests of an app entered straight; an app whose ``asgi_app``
    is replaced (the wrapper gets a copy of the scope) or whose class has its own ``__call__``
    is counted by its metrics layer, as before: probes and scrapes left out, cache results
    counted, nothing left in flight, an answer made before the layers not counted."""
    cls = _OwnCall if shape == "own __call__" else WebServer
    app = metrics_app(cls, health_path="/healthz", cache=SimpleCache(timeout=60))
    if shape == "asgi_app wrapped":
        _wrapped(app)
    with app.serve_in_thread() as url, httpx.Client() as client:
        for _ in range(2):
            assert client.get(url + "/healthz").status_code == 200
            assert client.get(url + "/items/1").status_code == 200
            assert client.get(url + "/cached").status_code == 200
            assert client.get(url + "/metrics").status_code == 200
        if shape == "own __call__":
            assert client.get(url + "/own").status_code == 204
        found = scrape_until(url + "/metrics", lambda found: item_requests(found) == 2)
    route = (
        "aeros_http_requests_total",
        frozenset({("method", "GET"), ("route", "/items/<int:item_id>"), ("status", "200")}),
    )
    cached = (
        "aeros_http_requests_total",
        frozenset({("method", "GET"), ("route", "/cached"), ("status", "200")}),
    )
    assert requests_and_results(found) == {
        route: 2,
        cached: 2,
        ("aeros_cache_results_total", frozenset({("result", "miss")})): 1,
        ("aeros_cache_results_total", frozenset({("result", "hit")})): 1,
        ("in_flight", frozenset()): 0,
    }


def test_metrics_of_an_app_inside_another_count_its_own_requests() -> None:
    """An app with metrics that routes some requests to another app with metrics (its
    ``asgi_app`` replaced by a dispatcher): each counts the requests that reach its layers."""
    outer = WebServer("outer", access_log=False, metrics=True)
    inner = WebServer("inner", access_log=False, metrics=True, metrics_path="/b/metrics")

    @outer.route("/x")
    async def x() -> str:
        return "x"

    @inner.route("/b/y/<int:n>")
    async def y(n: int) -> str:
        return "y"

    layers = outer.asgi_app

    async def dispatch(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/b/"):
            await inner(scope, receive, send)
        else:
            await layers(scope, receive, send)

    outer.asgi_app = dispatch  # type: ignore[method-assign]
    with outer.serve_in_thread() as url, httpx.Client() as client:
        for number in range(3):
            assert client.get(f"{url}/b/y/{number}").status_code == 200
        assert client.get(url + "/x").status_code == 200
        inner_found = samples(client.get(url + "/b/metrics").text)
        outer_found = samples(client.get(url + "/metrics").text)

    def requests(found: dict[Any, float]) -> dict[str, float]:
        return {
            dict(key[1])["route"]: number
            for key, number in found.items()
            if key[0] == "aeros_http_requests_total"
        }

    assert requests(inner_found) == {"/b/y/<int:n>": 3}
    assert requests(outer_found) == {"/x": 1}
    assert value(inner_found, "aeros_http_requests_in_flight") == 0
    assert value(outer_found, "aeros_http_requests_in_flight") == 0


def test_metrics_of_an_app_reached_through_another_apps_layers_count_its_requests() -> None:
    """An app with metrics reached from inside another's layers (a middleware of the outer
    app hands ``/b/`` to it): aeros' server counts for the outer app, and the inner app's
    layer, seeing a count that is not its own, counts the request for the inner app too."""
    outer = WebServer("outer", access_log=False, metrics=True)
    inner = WebServer("inner", access_log=False, metrics=True, metrics_path="/b/metrics")

    @inner.route("/b/y/<int:n>")
    async def y(n: int) -> str:
        return "y"

    class ToInner:
        def __init__(self, app: Any) -> None:
            self.app = app

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http" and scope["path"].startswith("/b/"):
                await inner(scope, receive, send)
            else:
                await self.app(scope, receive, send)

    outer.add_middleware(ToInner)
    with outer.serve_in_thread() as url, httpx.Client() as client:
        for number in range(3):
            assert client.get(f"{url}/b/y/{number}").status_code == 200
        found = scrape_until(
            url + "/b/metrics",
            lambda found: (
                value(
                    found,
                    "aeros_http_requests_total",
                    method="GET",
                    route="/b/y/<int:n>",
                    status="200",
                )
                == 3
            ),
        )
    assert value(found, "aeros_http_requests_in_flight") == 0


async def test_a_failing_count_on_aeros_server_is_logged_and_the_response_stands(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The server's count runs once the response is out: if it fails, the error is logged
    and the request ends as it would have."""
    exporter = Exporter()

    class Broken(dict):  # type: ignore[type-arg]
        def get(self, *args: Any) -> Any:
            raise RuntimeError("broken tally")

    exporter.tally.pending = Broken()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        scope[ROUTE][0] = "/x"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    counted = _Counted("server", exporter, app)
    cycle = make(counted.cycle_class, scope={"type": "http", "method": "GET", "path": "/x"})
    with caplog.at_level(logging.ERROR):
        await cycle.run_asgi(app)
    assert cycle.response_complete
    assert cycle.status == 200
    assert "the metrics' count failed" in caplog.text
    assert "broken tally" in caplog.text


def test_metrics_off_adds_no_layer() -> None:
    """Without metrics=True there is no metrics layer and /metrics is the app's (404)."""
    app = WebServer(__name__)
    assert app.metrics_exporter is None
    assert not any(layer.factory is MetricsMiddleware for layer in app.layers())


def test_exporter_flush_equals_prometheus_observe() -> None:
    """The bulk flush of the histogram gives what one observe() per request would."""
    exporter = Exporter()
    reference = Histogram("ref", "x", ("route",), buckets=BUCKETS, registry=CollectorRegistry())
    durations = [0.0005, 0.001, 0.0011, 0.02, 0.3, 7.0, 11.0, 0.001]
    for seconds in durations:
        exporter.tally.note("GET", "/r", 200, seconds, None, 10)
        reference.labels("/r").observe(seconds)
    exporter.flush()
    ours = samples(exporter.render().decode())
    compared = 0
    for family in reference.collect():
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            name = sample.name.replace("ref", "aeros_http_request_duration_seconds")
            le = sample.labels.get("le")
            if le is not None:  # the text format writes bounds as floats: 10.0, +Inf
                sample.labels["le"] = le if le == "+Inf" else str(float(le))
            key = (name, frozenset(sample.labels.items()))
            assert ours[key] == pytest.approx(sample.value), key
            compared += 1
    assert compared == len(BUCKETS) + 3  # buckets, +Inf, count, sum


def test_a_batch_counts_as_the_requests_one_by_one() -> None:
    """One settle of a mixed batch (an unknown method among known ones, latencies on and
    around the first bucket's bound and beyond the last, cache and rate-limit results) counts
    what settling each request alone does."""
    bound = BUCKETS[0]
    batch = [
        (method, route, status, seconds, cache, size, limit)
        for method, route, status, cache, limit in [
            ("GET", "/a", 200, None, None),
            ("BREW", "/a", 200, "miss", None),
            ("GET", "/b", 404, "hit", "429"),
            ("POST", "/a", 200, None, "error"),
        ]
        for seconds, size in [(bound, 1), (bound / 2, 2), (bound * 1.5, 3), (3.0, 4), (60.0, 0)]
    ]
    together, alone = Tally(), Tally()
    for request in batch:
        together.note(*request)
    assert together.rows == {}  # noted, not bucketed yet
    together.settle()
    for request in batch:  # each request bucketed on its own
        alone.note(*request)
        alone.settle()
    assert together.rows.keys() == alone.rows.keys()
    for labels, row in together.rows.items():  # the sums added in another order
        assert row[:-1] == alone.rows[labels][:-1]
        assert row[-1] == pytest.approx(alone.rows[labels][-1], rel=1e-12)
    row = together.rows[("other", "/a", 200)]
    assert row[:3] == [2, 1, 0]  # bound and bound / 2 under "le" 0.001, bound * 1.5 next
    assert (together.cache, together.limits) == (alone.cache, alone.limits)
    assert row[-3:-1] == [0, 1]  # 60 s: over every bound, in +Inf alone
    assert together.cache == {"miss": 5, "hit": 5}
    assert together.wire_bytes == alone.wire_bytes == 4 * 10


async def test_finished_requests_are_counted_in_bounded_batches() -> None:
    """The request path only notes a finished request's latency; a flush buckets them, and
    so does the request path whenever SETTLE_AT of one set of labels are waiting."""
    exporter = Exporter()

    async def answer(scope: Any, receive: Any, send: Any) -> None:
        return None

    layer = MetricsMiddleware(answer, exporter, "/metrics", lambda scope: UNMATCHED)
    for _ in range(SETTLE_AT + 5):
        scope: dict[str, Any] = {"type": "http", "method": "GET", "path": "/x", RESPONSE_DONE: []}
        await layer(scope, None, None)
        for callback, layer_scope in scope[RESPONSE_DONE]:  # as aeros' server reports
            callback(layer_scope, 200, 3)
        assert all(len(times) < SETTLE_AT for times in exporter.tally.pending.values())
    assert exporter.tally.pending == {("GET", UNMATCHED, 200): [pytest.approx(0, abs=1)] * 5}
    assert sum(exporter.tally.rows[("GET", UNMATCHED, 200)][:-1]) == SETTLE_AT
    taken = exporter.tally.take()  # the last ones wait for the flush
    assert taken.requests() == {("GET", UNMATCHED, 200): SETTLE_AT + 5}
    assert taken.wire_bytes == 3 * (SETTLE_AT + 5)
    assert exporter.tally.pending == {}


def test_metrics_in_flight_counts_the_requests_running_at_the_scrape() -> None:
    """Two requests running when a scrape comes are in flight, and none once they ended (the
    gauge is worked out at each flush from the requests started and those counted)."""
    import threading

    app = WebServer(__name__, access_log=False, metrics=True)
    release = threading.Event()
    entered: list[int] = []

    @app.route("/slow")
    async def slow() -> str:
        entered.append(1)
        while not release.is_set():
            await asyncio.sleep(0.01)
        return "done"

    with app.serve_in_thread() as url:
        httpx.get(url + "/metrics")  # a flush with none in flight
        clients = [
            threading.Thread(target=lambda: httpx.get(url + "/slow", timeout=10)) for _ in range(2)
        ]
        for client in clients:
            client.start()
        wait_until(lambda: len(entered) == 2, 5, "both requests in the view")
        during = samples(httpx.get(url + "/metrics").text)
        release.set()
        for client in clients:
            client.join(10)
        after = scrape_until(
            url + "/metrics",
            lambda found: (
                value(found, "aeros_http_requests_total", method="GET", route="/slow", status="200")
                == 2
            ),
        )
    assert value(during, "aeros_http_requests_in_flight") == 2
    assert value(after, "aeros_http_requests_in_flight") == 0


class _Counted:
    """Serves one request through a metrics count, as the layer counts it or as aeros'
    server's cycle does (LeanCycle with a meter: its own in-place count)."""

    def __init__(self, by: str, exporter: Exporter, app: Any) -> None:
        self.by = by
        self.layer = MetricsMiddleware(app, exporter, "/metrics", lambda scope: UNMATCHED)

        class Cycle(LeanCycle):
            metered = (Meter(exporter, lambda scope: UNMATCHED), exporter.tally)

        self.cycle_class = Cycle
        self.app = app

    async def serve(self, method: str, path: str, status: int, size: int) -> None:
        scope: dict[str, Any] = {"type": "http", "method": method, "path": path, RESPONSE_DONE: []}
        if self.by == "layer":
            await self.layer(scope, None, None)
            for callback, layer_scope in scope[RESPONSE_DONE]:  # as aeros' server reports
                callback(layer_scope, status, size)
            return
        cycle = make(self.cycle_class, scope=scope)
        cycle.disconnected = not status  # status 0: the client left before the answer

        async def app(scope: Any, receive: Any, send: Any) -> None:
            await self.app(scope, receive, send)
            if status:
                headers = [(b"content-length", str(size).encode())]
                await send({"type": "http.response.start", "status": status, "headers": headers})
                await send({"type": "http.response.body", "body": b"x" * size})

        await cycle.run_asgi(app)


@pytest.mark.parametrize("by", ["layer", "server"])
async def test_routed_requests_count_as_noted_one_by_one_and_keep_a_flush_scheduled(
    by: str,
) -> None:
    """Counted by the layer (any server) or by aeros' server's cycle, whose common case (a
    routed request whose labels have a list already) is appended in place with no call of
    Tally.note: the counts equal noting each request (an unknown method, a status 0, a cache
    result, a rate-limit result), a list reaching SETTLE_AT is settled on the way, and after
    each flush the next request schedules the next flush."""
    exporter = Exporter()
    route = "/x/<int:id>"

    async def routed(scope: Any, receive: Any, send: Any) -> None:
        scope[ROUTE][0] = route  # as the app's dispatch notes the rule it matched
        if scope["path"] == "/cached":
            scope[CACHE_STATE] = "miss"
        elif scope["path"] == "/limited":
            scope[RATE_LIMIT_STATE] = "error"  # the limiter's storage failed: served anyway

    counted = _Counted(by, exporter, routed)
    kinds = [
        ("GET", "/x", 200),
        ("BREW", "/x", 200),
        ("GET", "/x", 0),
        ("GET", "/cached", 200),
        ("GET", "/limited", 200),
    ]
    reference = Tally()
    for _ in range(3):  # three flushes
        for number in range(2 * SETTLE_AT):
            method, path, status = kinds[0] if number % 3 else kinds[number // 3 % len(kinds)]
            size = number if status else 0  # no answer: no bytes
            await counted.serve(method, path, status, size)
            cache = "miss" if path == "/cached" else None
            limit = "error" if path == "/limited" else None
            reference.note(method, route, status or 499, 0.0, cache, size, limit)
            assert exporter.scheduled
            assert all(len(times) < SETTLE_AT for times in exporter.tally.pending.values())
        # more than SETTLE_AT of one label set since the last flush: settled on the way
        assert sum(exporter.tally.rows[("GET", route, 200)][:-1]) >= SETTLE_AT
        exporter._flush_later()  # the scheduled flush runs
        assert not exporter.scheduled
    assert exporter.tally.in_flight == 0
    flushed = samples(exporter.render().decode())  # the registry holds every flush's counts
    expected = reference.take()
    assert sum(expected.requests().values()) == 3 * 2 * SETTLE_AT
    assert expected.requests()[("other", route, 200)] > 0
    assert expected.requests()[("GET", route, 499)] > 0
    for (method, _, status), count in expected.requests().items():
        assert (
            value(
                flushed,
                "aeros_http_requests_total",
                method=method,
                route=route,
                status=str(status),
            )
            == count
        )
    assert value(flushed, "aeros_cache_results_total", result="miss") == expected.cache["miss"]
    assert (
        value(flushed, "aeros_rate_limit_results_total", result="error")
        == (expected.limits["error"])
    )
    wire = value(flushed, "aeros_http_response_body_bytes_total", stage="wire")
    assert wire == expected.wire_bytes


async def test_a_request_whose_route_cannot_be_worked_out_is_counted_and_leaves_flight(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A request answered in front of Quart whose route template lookup fails is counted
    under <unmatched> with the failure logged; it does not stay in flight."""
    exporter = Exporter()

    async def hit(scope: Any, receive: Any, send: Any) -> None:
        scope[CACHE_STATE] = "hit"  # answered by the cache: never routed

    def route_of(scope: Any) -> str:
        raise RuntimeError("no map")

    layer = MetricsMiddleware(hit, exporter, "/metrics", route_of)
    for _ in range(3):
        scope: dict[str, Any] = {"type": "http", "method": "GET", "path": "/x", RESPONSE_DONE: []}
        await layer(scope, None, None)
        for callback, layer_scope in scope[RESPONSE_DONE]:
            callback(layer_scope, 200, 1)
    found = samples(exporter.render().decode())
    assert value(found, "aeros_http_requests_in_flight") == 0
    assert (
        value(found, "aeros_http_requests_total", method="GET", route=UNMATCHED, status="200") == 3
    )
    assert value(found, "aeros_cache_results_total", result="hit") == 3
    assert caplog.text.count("metrics: no route template for '/x'") == 3


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        pytest.param({"metrics": "yes"}, "metrics='yes'", id="not-bool"),
        pytest.param(
            {"metrics": True, "metrics_path": "metrics"}, "metrics_path='metrics'", id="path"
        ),
        pytest.param({"metrics_port": 9100}, "needs metrics=True", id="port-without-metrics"),
        pytest.param({"metrics": True, "metrics_port": 70000}, "metrics_port", id="port-range"),
    ],
)
def test_metrics_bad_options_name_them(options: dict[str, Any], needle: str) -> None:
    """A bad metrics option is a ConfigurationError naming it."""
    with pytest.raises(ConfigurationError, match=needle):
        WebServer(__name__, **options)


def test_metrics_count_coalesced_misses() -> None:
    """Requests that wait for another request's fill of the same key count as coalesced."""
    import asyncio
    import threading

    app = WebServer(__name__, access_log=False, metrics=True, cache=SimpleCache(timeout=60))
    entered = threading.Event()

    @app.route("/slow")
    @app.cache(timeout=60)
    async def slow() -> str:
        entered.set()
        await asyncio.sleep(0.5)
        return "filled"

    with app.serve_in_thread() as url:
        results: list[int] = []
        first = threading.Thread(
            target=lambda: results.append(httpx.get(url + "/slow").status_code)
        )
        first.start()
        assert entered.wait(5)
        waiters = [
            threading.Thread(target=lambda: results.append(httpx.get(url + "/slow").status_code))
            for _ in range(4)
        ]
        for thread in [*waiters]:
            thread.start()
        for thread in [first, *waiters]:
            thread.join(10)
        found = scrape_until(
            url + "/metrics",
            lambda found: value(found, "aeros_cache_results_total", result="miss") == 1,
        )
    assert results == [200] * 5
    assert value(found, "aeros_cache_results_total", result="coalesced") == 4
    assert value(found, "aeros_cache_results_total", result="hit") == 0
    assert value(found, "aeros_http_requests_total", method="GET", route="/slow", status="200") == 5


def test_metrics_same_counts_on_aeros_server_and_through_a_wrapped_send() -> None:
    """On aeros' server the layer learns each request's status and bytes from the server when
    the request ends (RESPONSE_DONE); on any other server (here the test client) it wraps
    ``send``. Both count the same requests, statuses, routes and bytes."""
    paths = ["/items/1", "/items/2", "/nothing", "/boom", "/cached", "/cached"]
    headers = {"Accept-Encoding": "gzip"}

    def fresh() -> WebServer:
        app = metrics_app(cache=SimpleCache(timeout=60))

        @app.route("/boom")
        async def boom() -> str:
            raise RuntimeError("boom")

        return app

    def counted(found: dict[Any, float]) -> dict[Any, float]:
        names = ("aeros_http_requests_total", "aeros_http_response_body_bytes_total")
        return {key: number for key, number in found.items() if key[0] in names}

    with fresh().serve_in_thread() as url, httpx.Client(headers=headers) as client:
        statuses = [client.get(url + path).status_code for path in paths]
        served = scrape_until(
            url + "/metrics",
            lambda found: (
                sum(
                    number for key, number in found.items() if key[0] == "aeros_http_requests_total"
                )
                == len(paths)
            ),
        )

    async def through_test_client() -> tuple[list[int], str]:
        client = fresh().test_client()
        codes = [(await client.get(path, headers=headers)).status_code for path in paths]
        scrape = await client.get("/metrics")
        return codes, (await scrape.get_data(as_text=True))

    tested_statuses, text = asyncio.run(through_test_client())
    assert statuses == tested_statuses == [200, 200, 404, 500, 200, 200]
    tested = samples(text)
    assert value(served, "aeros_http_requests_total", method="GET", route="/boom", status="500")
    assert counted(served) == counted(tested)


@pytest.mark.parametrize("compression", [True, False], ids=["compressed", "no-compression"])
def test_metrics_app_bytes_are_what_views_produced(compression: bool) -> None:
    """``stage="app"`` is the body bytes views produced, before compression: a compressed
    response counts its identity size, a response-cache miss its view's body (the cache passes
    it by compression), a hit nothing; the same on aeros' server and through the test client.
    (With compression on, the compression layer counts them for the requests it wraps.)"""
    options: dict[str, Any] = {} if compression else {"compression": None}
    paths = ["/items/1", "/cached", "/cached", "/nothing"]
    headers = {"Accept-Encoding": "gzip"}

    def fresh() -> WebServer:
        return metrics_app(cache=SimpleCache(timeout=60), **options)

    identity: dict[str, int] = {}  # each body as the view makes it
    with fresh().serve_in_thread() as url, httpx.Client() as client:
        for path in ("/items/1", "/nothing"):
            identity[path] = len(
                client.get(url + path, headers={"Accept-Encoding": "identity"}).content
            )
    identity["/cached"] = len(b"cached body")
    produced = identity["/items/1"] + identity["/cached"] + identity["/nothing"]  # hit: none

    def app_bytes(found: dict[Any, float]) -> float:
        return value(found, "aeros_http_response_body_bytes_total", stage="app")

    with fresh().serve_in_thread() as url, httpx.Client(headers=headers) as client:
        encodings = [client.get(url + path).headers.get("content-encoding") for path in paths]
        served = scrape_until(url + "/metrics", lambda found: app_bytes(found) >= produced)

    async def through_test_client() -> dict[Any, float]:
        client = fresh().test_client()
        for path in paths:
            await client.get(path, headers=headers)
        return samples(await (await client.get("/metrics")).get_data(as_text=True))

    tested = asyncio.run(through_test_client())
    assert encodings[0] == ("gzip" if compression else None)
    assert app_bytes(served) == app_bytes(tested) == produced
    wire = value(served, "aeros_http_response_body_bytes_total", stage="wire")
    assert (wire < produced) if compression else (wire > produced)  # the hit: wire bytes only


class QuartDispatchServer(WebServer):
    """An app whose dispatch is Quart's own (an override turns the lean dispatch off)."""

    async def full_dispatch_request(self, *args: Any, **kwargs: Any) -> Any:
        return await super().full_dispatch_request(*args, **kwargs)


@pytest.mark.parametrize("app_class", [WebServer, QuartDispatchServer], ids=["lean", "quart"])
def test_metrics_label_requests_with_their_route_on_either_dispatch(
    app_class: type[WebServer],
) -> None:
    """The lean dispatch writes the matched rule into the metrics' route box itself; on
    Quart's own dispatch the request class does it. Same labels either way: the template,
    never the raw path, and ``<unmatched>`` for a 404."""
    from aeros.fastpath.dispatch import uses_lean_dispatch

    app = app_class(__name__, access_log=False, metrics=True)

    @app.route("/items/<int:item_id>")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    async def run() -> str:
        client = app.test_client()
        for path in ("/items/1", "/items/2", "/nothing"):
            await client.get(path)
        return await (await client.get("/metrics")).get_data(as_text=True)

    found = samples(asyncio.run(run()))
    assert uses_lean_dispatch(app) is (app_class is WebServer)
    labels = {"method": "GET", "status": "200", "route": "/items/<int:item_id>"}
    assert value(found, "aeros_http_requests_total", **labels) == 2
    missed = {"method": "GET", "status": "404", "route": UNMATCHED}
    assert value(found, "aeros_http_requests_total", **missed) == 1
    requests = [key for key in found if key[0] == "aeros_http_requests_total"]
    assert len(requests) == 2, requests


def test_reports_reach_layers_given_a_copy_of_the_scope(tmp_path: Path) -> None:
    """A middleware wrapped around the whole app (``app.asgi_app = ...``) that gives the app a
    copy of the scope: the server reports each finished request to the metrics and the access
    log with their own copy (what they stored on it: the start, the route box), so both still
    count every request with its status."""
    log = tmp_path / "access.log"
    app = WebServer(__name__, access_log=True, access_log_file=str(log), metrics=True)

    @app.route("/items/<int:item_id>")
    async def item(item_id: int) -> str:
        return str(item_id)

    def copying(inner: Any) -> Any:
        async def wrapped(scope: Any, receive: Any, send: Any) -> None:
            await inner(dict(scope), receive, send)

        return wrapped

    app.asgi_app = copying(app.asgi_app)  # type: ignore[method-assign]
    paths = ["/items/1", "/items/2", "/nothing"]
    with app.serve_in_thread() as url:
        statuses = [httpx.get(url + path).status_code for path in paths]
        found = scrape_until(
            url + "/metrics",
            lambda found: item_requests(found) == 2,
        )
        wait_until(lambda: log.read_text().count("\n") >= 3, 5.0, "no access lines", 0.05)
    assert statuses == [200, 200, 404]
    assert (
        value(found, "aeros_http_requests_total", method="GET", route=UNMATCHED, status="404") == 1
    )
    lines = log.read_text().splitlines()
    assert [line.split('"')[1] for line in lines[:3]] == [f"GET {path} HTTP/1.1" for path in paths]
    assert [line.split('"')[2].split()[0] for line in lines[:3]] == ["200", "200", "404"]


def test_metrics_label_requests_on_quarts_own_path_with_their_route(live_server) -> None:
    """A body over the inline limit (or chunked) takes Quart's own request path; its request
    is labelled with its route like any other (it was counted as ``<unmatched>``)."""
    app = WebServer(__name__, access_log=False, metrics=True)

    @app.route("/up", methods=["POST"])
    async def upload() -> str:
        from quart import request

        return str(len(await request.get_data()))

    with live_server(app) as url:
        assert httpx.post(url + "/up", content=b"x" * 70_000).text == "70000"

        def counted(found: dict[Any, float]) -> bool:
            return (
                value(found, "aeros_http_requests_total", method="POST", route="/up", status="200")
                == 1.0
            )

        found = scrape_until(url + "/metrics", counted)
    assert (
        value(found, "aeros_http_requests_total", method="POST", route=UNMATCHED, status="200") == 0
    )


def test_metrics_count_a_client_gone_before_the_answer_as_499(live_server) -> None:
    """Requests whose client closed mid-upload, before any response, count as 499 (nginx's
    "client closed request"), so 5xx alerts do not fire on client aborts; an app that
    failed without answering still counts as 500."""
    import socket

    app = WebServer(__name__, access_log=False, metrics=True)

    @app.route("/up", methods=["POST"])
    async def upload() -> str:
        from quart import request

        return str(len(await request.get_data()))

    def failing_on_boom(inner: Any) -> Any:
        async def layer(scope: Any, receive: Any, send: Any) -> None:
            if scope.get("path") == "/boom":
                raise RuntimeError("no answer")
            await inner(scope, receive, send)

        return layer

    app.add_middleware(failing_on_boom)
    with live_server(app) as url:
        host, port = url.removeprefix("http://").split(":")
        for request in (
            b"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
            b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000,
        ):
            with socket.create_connection((host, int(port)), timeout=5) as sock:
                sock.sendall(request)  # and gone, before any answer
        assert httpx.get(url + "/boom", timeout=5).status_code == 500

        def gone(found: dict[Any, float]) -> bool:
            return (
                value(found, "aeros_http_requests_total", method="POST", route="/up", status="499")
                == 2
            )

        found = scrape_until(url + "/metrics", gone)
    assert value(found, "aeros_http_requests_total", method="POST", route="/up", status="500") == 0
    boom = {"method": "GET", "route": UNMATCHED, "status": "500"}
    assert value(found, "aeros_http_requests_total", **boom) == 1
