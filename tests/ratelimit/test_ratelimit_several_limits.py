"""A 429 under several limits: ``Retry-After`` waits for every limit, ``RateLimit`` lists each.

A request is counted against its limits in order and stops at the first refusal; the limits
after it are read without a hit, so the answer says when every limit has room again.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from aeros import RateLimit, WebServer, rate_limit
from aeros.ratelimit.backend import BackendDown
from aeros.ratelimit.layer import RateLimitMiddleware, rate_limit_layer
from aeros.types import HEADER_LINES
from tests.support.asgi import drive, http_scope
from tests.support.net import RedisServer


async def _answer(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok", "more_body": False})


class _Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


async def _get(layer: Any, path: str) -> tuple[int, dict[bytes, bytes]]:
    """Status and header fields of one GET, on aeros' own server's path (``HEADER_LINES``)."""
    scope = http_scope(path, headers=[(b"host", b"test")], client=("192.0.2.7", 4000))
    scope[HEADER_LINES] = []
    sent = await drive(layer, scope)
    fields = dict(sent[0]["headers"])
    for line in b"".join(scope[HEADER_LINES]).splitlines():
        name, _, value = line.partition(b": ")
        fields[name] = value
    return sent[0]["status"], fields


def _limited_app(strategy: str, short_first: bool) -> WebServer:
    """``/login`` under 1/second and 3/minute, the short one counted first or last."""
    app = WebServer(__name__, rate_limit=RateLimit(strategy=strategy))
    first, second = ("1/second", "3/minute") if short_first else ("3/minute", "1/second")

    @app.route("/login")
    @rate_limit(first)
    @rate_limit(second)
    async def login() -> str:
        return "login"

    return app


@pytest.mark.parametrize("strategy", ["fixed-window", "moving-window"])
async def test_short_limit_refuses_while_the_long_one_is_spent(strategy: str) -> None:
    """1/second refuses (counted first): the 3/minute after it is read, not counted, so the
    429 lists it as it stands and Retry-After waits for it once it has nothing left."""
    layer = rate_limit_layer(_answer, _limited_app(strategy, True).rate_limits)
    assert isinstance(layer, RateLimitMiddleware)
    assert layer.backend.counts is not None
    clock = layer.backend.counts.clock = _Clock()

    assert (await _get(layer, "/login"))[0] == 200
    status, fields = await _get(layer, "/login")  # 1/second spent; 3/minute has 2 left
    assert status == 429
    assert fields[b"retry-after"] == b"1"
    assert fields[b"ratelimit"] == b'"login-1s";r=0;t=1, "login.1-60s";r=2;t=60'
    clock.now = 1_001.5
    assert (await _get(layer, "/login"))[0] == 200
    clock.now = 1_003.0
    status, fields = await _get(layer, "/login")
    assert (status, fields[b"ratelimit"]) == (200, b'"login-1s";r=0;t=1, "login.1-60s";r=0;t=57')
    status, fields = await _get(layer, "/login")  # refused by 1/second, 3/minute spent too
    assert status == 429
    assert fields[b"retry-after"] == b"57"
    assert fields[b"ratelimit"] == b'"login-1s";r=0;t=1, "login.1-60s";r=0;t=57'
    assert fields[b"ratelimit-policy"] == b'"login-1s";q=1;w=1, "login.1-60s";q=3;w=60'
    clock.now = 1_004.5  # 1/second has room again, 3/minute refuses
    status, fields = await _get(layer, "/login")
    assert (status, fields[b"retry-after"]) == (429, b"56")


@pytest.mark.parametrize("strategy", ["fixed-window", "moving-window"])
async def test_long_limit_refuses_and_the_short_one_after_it_is_listed(strategy: str) -> None:
    """3/minute refuses (counted first): the 1/second after it is listed, not counted."""
    layer = rate_limit_layer(_answer, _limited_app(strategy, False).rate_limits)
    assert isinstance(layer, RateLimitMiddleware)
    assert layer.backend.counts is not None
    clock = layer.backend.counts.clock = _Clock()
    for step in range(3):
        clock.now = 1_000.0 + 2 * step
        assert (await _get(layer, "/login"))[0] == 200
    clock.now = 1_005.5  # 1/second has room, 3/minute none
    status, fields = await _get(layer, "/login")
    assert status == 429
    assert fields[b"retry-after"] == b"55"
    assert fields[b"ratelimit"] == b'"login-60s";r=0;t=55, "login.1-1s";r=1;t=0'
    clock.now = 1_005.6  # the refusal took nothing from 1/second
    status, fields = await _get(layer, "/login")
    assert fields[b"ratelimit"] == b'"login-60s";r=0;t=55, "login.1-1s";r=1;t=0'


@pytest.mark.parametrize("fail_open", [True, False], ids=["open", "closed"])
async def test_a_storage_failure_on_the_read_still_refuses_without_a_5xx(fail_open: bool) -> None:
    """The limit that refused answered: the request is refused whatever the storage does
    next. The limits it could not read are left out; failing closed, Retry-After also waits
    for the storage to be tried again (until then every request is refused)."""
    app = _limited_app("fixed-window", True)
    layer = rate_limit_layer(_answer, app.rate_limits)
    assert isinstance(layer, RateLimitMiddleware)
    layer.fail_open = fail_open
    layer.backend.retry_after = 30.0
    layer.backend.hit_now = None  # the awaited path, as on Redis
    reads = []

    async def down(key: str, amount: int, expiry: int) -> tuple[bool, int, float]:
        reads.append(key)
        raise BackendDown("connection refused")

    layer.backend.peek = down  # type: ignore[method-assign]
    assert (await _get(layer, "/login"))[0] == 200
    status, fields = await _get(layer, "/login")
    assert status == 429
    assert len(reads) == 1
    assert fields[b"ratelimit"] == b'"login-1s";r=0;t=1'
    assert fields[b"retry-after"] == (b"1" if fail_open else b"30")


def _app_and_route_limits(storage: str, socket_timeout: float = 0.1) -> WebServer:
    """An app-wide 2/minute; ``/burst`` adds 1/second; ``/stacked``, exempt, has 1/second over
    2/minute of its own."""
    limits = RateLimit("2/minute", storage=storage, socket_timeout=socket_timeout)
    app = WebServer(__name__, access_log=False, rate_limit=limits)

    @app.route("/burst")
    @rate_limit("1/second")
    async def burst() -> str:
        return "burst"

    @app.route("/stacked")
    @rate_limit.exempt
    @rate_limit("1/second")
    @rate_limit("2/minute")
    async def stacked() -> str:
        return "stacked"

    return app


def _check_answers(
    bursts: list[tuple[int, dict[bytes, bytes]]], stacked: list[tuple[int, dict[bytes, bytes]]]
) -> None:
    """An app-wide 2/minute spent by the very request a route's 1/second refuses makes
    Retry-After a minute, not a second; a route's 1/second refusing while its 2/minute is
    spent does too, and lists the 2/minute it did not count (which the refusals left alone)."""
    assert [status for status, _ in bursts] == [200, 429]
    refused = bursts[1][1]
    assert 55 <= int(refused[b"retry-after"]) <= 60
    app_member, route_member = refused[b"ratelimit"].split(b", ")
    assert (app_member[:14], route_member) == (b'"app-60s";r=0;', b'"burst-1s";r=0;t=1')
    assert [status for status, _ in stacked] == [200, 429, 200, 429]
    assert stacked[1][1][b"retry-after"] == b"1"
    members = b'"stacked-1s";r=0;t=1, "stacked.1-60s";r=%d;'
    assert stacked[1][1][b"ratelimit"].startswith(members % 1)
    assert 55 <= int(stacked[3][1][b"retry-after"]) <= 59
    assert stacked[3][1][b"ratelimit"].startswith(members % 0)


def test_ratelimit_429_waits_for_every_limit_over_http(live_server) -> None:
    """On a live server, memory storage."""
    app = _app_and_route_limits("memory://")

    def get(client: httpx.Client, path: str) -> tuple[int, dict[bytes, bytes]]:
        response = client.get(path)
        return response.status_code, {
            name.encode(): value.encode() for name, value in response.headers.items()
        }

    with live_server(app) as url, httpx.Client(base_url=url) as client:
        bursts = [get(client, "/burst") for _ in range(2)]
        stacked = [get(client, "/stacked") for _ in range(2)]
        time.sleep(1.1)
        stacked += [get(client, "/stacked") for _ in range(2)]
    _check_answers(bursts, stacked)


@pytest.mark.redis
@pytest.mark.slow
async def test_ratelimit_429_waits_for_every_limit_on_redis(redis: RedisServer) -> None:
    """The same answers with the counters in a real redis-server (the awaited path).

    Redis gets 5 s, not the default 0.1 s: a loaded CI machine once took longer than 0.1 s
    to answer, the storage counted as down, fail-open let the request through, and the test
    read a 200 where the limit should have refused."""
    app = _app_and_route_limits(redis.url, socket_timeout=5.0)
    layer = rate_limit_layer(_answer, app.rate_limits)
    assert isinstance(layer, RateLimitMiddleware)
    assert layer.backend.hit_now is None
    try:
        bursts = [await _get(layer, "/burst") for _ in range(2)]
        stacked = [await _get(layer, "/stacked") for _ in range(2)]
        await asyncio.sleep(1.1)
        stacked += [await _get(layer, "/stacked") for _ in range(2)]
    finally:
        storage: Any = layer.backend.storage()
        await storage.bridge.storage.aclose()  # redis-py's client, before this loop closes
    _check_answers(bursts, stacked)
