"""The one-function layer of the commonest setup answers exactly as the general layer does."""

from __future__ import annotations

import re
from typing import Any

import pytest

from aeros import RateLimit, WebServer, rate_limit
from aeros.ratelimit.backend import Backend
from aeros.ratelimit.layer import AppLimitMiddleware, RateLimitMiddleware, rate_limit_layer
from aeros.types import HEADER_LINES


async def _answer(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok", "more_body": False})


def _general(app: WebServer) -> RateLimitMiddleware:
    """The general layer for the same limits, on a backend of its own."""
    config = app.rate_limits.config
    backend = Backend(config.storage, config.strategy, config.prefix)
    return RateLimitMiddleware(_answer, backend, app.rate_limits.plan_for)


async def _serve(layer: Any, path: str, own_server: bool) -> tuple[int, list[bytes]]:
    """Status and header lines of one GET (aeros' server's HEADER_LINES, or plain ASGI)."""
    scope: dict[str, Any] = {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"test")],
        "client": ("192.0.2.7", 4000),
    }
    if own_server:
        scope[HEADER_LINES] = []
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await layer(scope, None, send)
    lines = [b"%s: %s\r\n" % pair for pair in sent[0]["headers"]]
    # HEADER_LINES' items may hold more than one line each
    lines += b"".join(scope.get(HEADER_LINES, [])).splitlines(keepends=True)
    return sent[0]["status"], sorted(lines)


def _without_reset(lines: list[bytes]) -> list[bytes]:
    """The lines with ``t=`` (seconds to the window's end, read from two clocks) taken out."""
    return [re.sub(rb";t=\d+", b"", line) for line in lines if not line.startswith(b"retry-")]


def test_the_commonest_setup_gets_the_one_function_layer() -> None:
    def layer(**options: Any) -> Any:
        app = WebServer(__name__, rate_limit=RateLimit(**options))
        return rate_limit_layer(_answer, app.rate_limits, None)

    assert type(layer(limit="100/minute")) is AppLimitMiddleware
    assert type(layer(limit="100/minute", strategy="moving-window")) is AppLimitMiddleware
    assert type(layer(limit="100/minute", key="X-Api-Key")) is AppLimitMiddleware
    # two windows, no fields, a shared storage: the general layer
    assert type(layer(limit="10/second;100/minute")) is RateLimitMiddleware
    assert type(layer(limit="100/minute", headers=False)) is RateLimitMiddleware
    assert type(layer(limit="100/minute", storage="redis://127.0.0.1:1")) is RateLimitMiddleware


@pytest.mark.parametrize("strategy", ["fixed-window", "moving-window"])
@pytest.mark.parametrize("own_server", [True, False], ids=["aeros-server", "other-server"])
async def test_same_answers_and_fields_as_the_general_layer(
    strategy: str, own_server: bool
) -> None:
    app = WebServer(__name__, rate_limit=RateLimit("3/minute", strategy=strategy))
    fast = rate_limit_layer(_answer, app.rate_limits, None)
    assert isinstance(fast, AppLimitMiddleware)
    general = _general(app)
    answers = {}
    for name, layer in (("fast", fast), ("general", general)):
        answers[name] = [await _serve(layer, "/any", own_server) for _ in range(5)]
    assert [status for status, _ in answers["fast"]] == [200, 200, 200, 429, 429]
    assert [status for status, _ in answers["general"]] == [200, 200, 200, 429, 429]
    for (_, fast_lines), (_, general_lines) in zip(
        answers["fast"], answers["general"], strict=True
    ):
        assert _without_reset(fast_lines) == _without_reset(general_lines)
    first = answers["fast"][0][1]
    assert b'ratelimit-policy: "app-60s";q=3;w=60\r\n' in first
    assert any(re.fullmatch(rb'ratelimit: "app-60s";r=2;t=(59|60)\r\n', line) for line in first)


@pytest.mark.parametrize("client", [("192.0.2.7", 4000), None], ids=["peer", "no-peer"])
async def test_counts_go_to_the_same_storage_keys_as_the_general_layer(
    client: tuple[str, int] | None,
) -> None:
    # the fast layer reads the default key itself: a request it counts and one the general
    # layer counts (a view with limits of its own turns requests there) must share a counter
    app = WebServer(__name__, rate_limit=RateLimit("3/minute"))
    fast = rate_limit_layer(_answer, app.rate_limits, None)
    assert isinstance(fast, AppLimitMiddleware)
    general = RateLimitMiddleware(_answer, fast.backend, app.rate_limits.plan_for)
    statuses = []
    for layer in (fast, general, fast, general):
        scope: dict[str, Any] = {
            "type": "http",
            "method": "GET",
            "path": "/",
            "headers": [],
            "client": client,
            HEADER_LINES: [],
        }
        sent: list[dict[str, Any]] = []

        async def send(message: dict[str, Any], sent: list[dict[str, Any]] = sent) -> None:
            sent.append(message)

        await layer(scope, None, send)
        statuses.append(sent[0]["status"])
    assert statuses == [200, 200, 200, 429]


async def test_a_key_that_names_no_one_is_not_counted() -> None:
    app = WebServer(__name__, rate_limit=RateLimit("1/minute", key=lambda scope: None))
    layer = rate_limit_layer(_answer, app.rate_limits, None)
    assert isinstance(layer, AppLimitMiddleware)
    answers = [await _serve(layer, "/", own_server=True) for _ in range(3)]
    assert answers == [(200, [])] * 3


async def test_a_view_with_limits_of_its_own_turns_every_request_to_the_general_path() -> None:
    app = WebServer(__name__, rate_limit=RateLimit("100/minute"))

    @app.route("/a")
    async def a() -> str:
        return "a"

    layer = rate_limit_layer(_answer, app.rate_limits, None)
    assert (await _serve(layer, "/a", own_server=True))[0] == 200

    @app.route("/b")
    @rate_limit("1/minute")
    async def b() -> str:
        return "b"

    statuses = [(await _serve(layer, "/b", own_server=True))[0] for _ in range(2)]
    assert statuses == [200, 429]
    status, lines = await _serve(layer, "/a", own_server=True)
    assert status == 200
    assert b'ratelimit-policy: "app-60s";q=100;w=60\r\n' in lines


class _Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("own_server", [True, False], ids=["aeros-server", "other-server"])
async def test_a_fixed_window_counts_as_the_memory_counters_do(own_server: bool) -> None:
    # the layer counts a hit in a running window itself; windows start and end, and the
    # fields say what is left, as MemoryCounts.fixed_hit says
    app = WebServer(__name__, rate_limit=RateLimit("2/minute"))
    layer = rate_limit_layer(_answer, app.rate_limits, None)
    assert isinstance(layer, AppLimitMiddleware)
    assert layer.counts is not None
    clock = layer.counts.clock = _Clock()

    async def serve() -> tuple[int, bytes]:
        status, lines = await _serve(layer, "/", own_server)
        (rate,) = [line for line in lines if line.startswith(b"ratelimit:")]
        return status, rate

    assert await serve() == (200, b'ratelimit: "app-60s";r=1;t=60\r\n')
    clock.now += 20.5
    assert await serve() == (200, b'ratelimit: "app-60s";r=0;t=40\r\n')
    clock.now += 10
    assert await serve() == (429, b'ratelimit: "app-60s";r=0;t=30\r\n')
    clock.now = 1_060.0  # the window ended: the next hit starts one
    assert await serve() == (200, b'ratelimit: "app-60s";r=1;t=60\r\n')
    assert await serve() == (200, b'ratelimit: "app-60s";r=0;t=60\r\n')
    assert (await serve())[0] == 429
