"""The health endpoint: answered in front of the app and the concurrency limit, 200 while
serving, 503 once the graceful shutdown started."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pytest

from aeros import ConfigurationError, WebServer
from aeros.middleware.health import HealthMiddleware
from aeros.observability import ObservabilityConfig
from tests.support.server import get, get_in_thread, slow_app, wait_until


def test_health_answers_in_front_of_the_concurrency_limit() -> None:
    """A worker at its concurrency limit refuses requests (503) but still answers probes."""
    app = slow_app(delay=1.0)
    app.observability = ObservabilityConfig(health_path="/healthz")
    app.server_config = app.server_config.replace(max_concurrent_requests=1)
    with app.serve_in_thread() as url:
        client, outcome = get_in_thread(url + "/slow")
        assert app.extensions["slow_entered"].wait(5)
        assert get(url + "/")[0] == 503  # the limit is reached
        probe = httpx.get(url + "/healthz")
        head = httpx.head(url + "/healthz")
        client.join(10)
    assert (probe.status_code, probe.text) == (200, "ok\n")
    assert probe.headers["cache-control"] == "no-store"
    assert (head.status_code, head.content) == (200, b"")
    assert outcome == [200]


def test_health_answers_503_while_draining_then_the_server_stops() -> None:
    """Once stop() is called, probes get 503 during shutdown_delay while requests still run."""
    app = slow_app(delay=1.0)
    app.observability = ObservabilityConfig(health_path="/healthz")
    app.server_config = app.server_config.replace(shutdown_delay=1.5)
    with app.serve_in_thread() as url:
        assert get(url + "/healthz") == (200, "ok\n")
        client, outcome = get_in_thread(url + "/slow")
        assert app.extensions["slow_entered"].wait(5)
        stopped_at = time.monotonic()
        assert app.stop()
        wait_until(lambda: get(url + "/healthz")[0] == 503, 1.0, "the probe never said 503")
        assert get(url + "/healthz") == (503, "draining\n")
        assert get(url + "/")[0] == 200  # still serving during the delay
        client.join(10)
    assert outcome == [200]  # the request in flight finished
    assert time.monotonic() - stopped_at >= 1.5
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/healthz")


def test_health_leaves_other_methods_and_paths_to_the_app() -> None:
    """Only GET/HEAD on the exact path are the probe; POST and /healthz/x reach the app."""
    app = WebServer(__name__, access_log=False, health_path="/healthz")

    @app.route("/healthz", methods=["POST"])
    async def post_health() -> str:
        return "app"

    with app.serve_in_thread() as url:
        assert httpx.post(url + "/healthz").text == "app"
        assert httpx.get(url + "/healthz/x").status_code == 404


def test_health_off_adds_no_layer() -> None:
    """Without health_path there is no health layer; the path is the app's."""
    app = WebServer(__name__)
    assert not any(layer.factory is HealthMiddleware for layer in app.layers())
    assert any(
        layer.factory is HealthMiddleware
        for layer in WebServer(__name__, health_path="/up").layers()
    )


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        pytest.param({"health_path": "healthz"}, "health_path='healthz'", id="relative"),
        pytest.param({"health_path": "/h?x"}, "health_path='/h?x'", id="query"),
        pytest.param({"shutdown_delay": -1}, "shutdown_delay", id="negative-delay"),
    ],
)
def test_health_bad_options_name_them(options: dict[str, Any], needle: str) -> None:
    """A bad health_path or shutdown_delay is a ConfigurationError naming it."""
    with pytest.raises(ConfigurationError, match=re.escape(needle)):
        WebServer(__name__, **options)


async def test_health_and_metrics_answer_through_the_quart_test_client() -> None:
    """Quart 0.23's test client needs ``more_body`` in every body message: the probe and the
    scrape, answered by aeros' layers, say it."""
    app = WebServer(__name__, health_path="/healthz", metrics=True)
    client = app.test_client()
    health = await client.get("/healthz")
    scrape = await client.get("/metrics")
    assert health.status_code == 200
    assert scrape.status_code == 200
    assert "aeros_http_requests_total" in await scrape.get_data(as_text=True)
