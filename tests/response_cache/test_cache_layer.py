"""The cache layer alone, driven as raw ASGI: streams, waiters, failures, validators."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from aeros import Gzip, SimpleCache
from aeros.response_cache.layer import CACHE_STATE, CacheMiddleware
from aeros.response_cache.policy import CachePolicy
from tests.support.asgi import http_scope
from tests.support.cache import call

POLICY = CachePolicy(timeout=60, route="r")


def layer(inner: Any, **options: Any) -> CacheMiddleware:
    return CacheMiddleware(inner, SimpleCache(), lambda scope: POLICY, **options)


async def test_cache_unstorable_stream_does_not_hold_waiters() -> None:
    """Requests waiting on a fill are released as soon as the response turns out unstorable."""
    release = asyncio.Event()
    calls = 0

    async def sse(scope: Any, receive: Any, send: Any) -> None:
        nonlocal calls
        calls += 1
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})
        if calls == 1:
            await release.wait()  # the first stream stays open
        await send({"type": "http.response.body", "body": b""})

    app = layer(sse)
    first = asyncio.create_task(call(app, http_scope()))
    await asyncio.sleep(0.05)
    second = await asyncio.wait_for(call(app, http_scope()), 5)
    assert second.body == b"data: 1\n\n"
    assert not first.done()
    release.set()
    assert (await first).body == b"data: 1\n\n"


async def test_cache_unstorable_stream_keeps_chunks() -> None:
    """A streamed (unstored) miss reaches the client chunk by chunk, gzip-flushed."""

    async def stream(scope: Any, receive: Any, send: Any) -> None:
        assert scope["aeros.skip_compression"] is True  # the layer encodes, not the inner one
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/plain")],
            }
        )
        for i in range(3):
            body = f"part {i} ".encode() * 100
            await send({"type": "http.response.body", "body": body, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    app = layer(stream, codecs=[Gzip(min_size=10)])
    headers = [(b"host", b"a.example"), (b"accept-encoding", b"gzip")]
    response = await call(app, http_scope(headers=headers))
    assert response.header(b"content-encoding") == b"gzip"
    assert len([c for c in response.chunks if c]) >= 3
    import zlib

    text = zlib.decompress(response.body, 31).decode()
    assert text == "".join(f"part {i} " * 100 for i in range(3))


async def test_cache_failed_fill_releases_waiters() -> None:
    """When the filling request raises, the waiting requests run the app themselves."""
    calls = 0

    async def flaky(scope: Any, receive: Any, send: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.sleep(0.05)
            raise RuntimeError("boom")
        body = b"ok"
        headers = [(b"content-length", b"2")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    app = layer(flaky)
    results = await asyncio.gather(
        *(call(app, http_scope()) for _ in range(5)), return_exceptions=True
    )
    errors = [r for r in results if isinstance(r, BaseException)]
    assert len(errors) == 1
    assert all(r.body == b"ok" for r in results if not isinstance(r, BaseException))


async def test_cache_states_for_the_access_log() -> None:
    """scope['aeros.cache_state'] reads miss, hit, then bypass for a credentialed request."""

    async def ok(scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"content-length", b"0")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    app = layer(ok)
    states = []
    for headers in ([], [], [(b"authorization", b"x")]):
        scope = http_scope(headers=[(b"host", b"a.example"), *headers])
        await call(app, scope)
        states.append(scope[CACHE_STATE])
    assert states == ["miss", "hit", "bypass"]


async def test_cache_if_none_match_on_the_fill() -> None:
    """A conditional request that fills the cache gets 304 when its ETag matches."""

    async def tagged(scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"content-length", b"2"), (b"etag", b'"v1"')]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})

    app = layer(tagged)
    headers = [(b"host", b"a.example"), (b"if-none-match", b'W/"v1"')]
    response = await call(app, http_scope(headers=headers))
    assert response.status == 304
    assert response.body == b""


@pytest.mark.parametrize("status", [201, 404, 500])
async def test_cache_no_304_for_non_2xx(status: int) -> None:
    """If-None-Match is not applied to a cached non-2xx response."""
    policy = CachePolicy(timeout=60, route="r", statuses=frozenset({status}))

    async def answer(scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"content-length", b"1"), (b"etag", b'"x"')]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"!"})

    app = CacheMiddleware(answer, SimpleCache(), lambda scope: policy)
    await call(app, http_scope())
    hit = await call(app, http_scope(headers=[(b"host", b"testserver"), (b"if-none-match", b"*")]))
    assert hit.status == (304 if 200 <= status < 300 else status)


@pytest.mark.parametrize(
    "hosts",
    [
        pytest.param([b"evil/../x"], id="path-in-host"),
        pytest.param([b"exa mple"], id="space"),
        pytest.param([b"a.example:99999x"], id="bad-port"),
        pytest.param([b"a.example", b"b.example"], id="two-hosts"),
    ],
)
async def test_cache_invalid_host_bypasses(hosts: list[bytes]) -> None:
    """A request whose Host is not one valid host name is neither served from nor stored in
    the cache: the layer alone, as behind a server that passes any Host through."""
    calls = 0

    async def counting(scope: Any, receive: Any, send: Any) -> None:
        nonlocal calls
        calls += 1
        body = str(calls).encode()
        headers = [(b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    store = SimpleCache()
    app = CacheMiddleware(counting, store, lambda scope: POLICY)
    for expected in (b"1", b"2"):
        scope = http_scope(headers=[(b"host", host) for host in hosts])
        response = await call(app, scope)
        assert response.body == expected
        assert scope[CACHE_STATE] == "bypass"
    assert len(store) == 0
    valid = http_scope(headers=[(b"host", hosts[0] if len(hosts) > 1 else b"a.example")])
    await call(app, valid)
    assert len(store) == 1  # the same layer stores a request with a valid Host
