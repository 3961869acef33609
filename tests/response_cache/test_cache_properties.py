"""Property tests: the key is injective, and the shared cache never poisons or leaks."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aeros import SimpleCache, WebServer
from aeros.response_cache.entry import decode_entry, encode_entry
from aeros.response_cache.keys import build_key, key_material, request_host, request_path
from aeros.response_cache.layer import CacheMiddleware
from aeros.response_cache.policy import CachePolicy
from tests.support.asgi import http_scope
from tests.support.cache import call

VARY = (b"accept-language", b"cookie")
POLICY = CachePolicy(timeout=60, vary=VARY, route="r")
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8)
hosts = st.sampled_from(["a.example", "b.example", "A.example", "a.example:80", "a.example:81"])
header_values = st.none() | st.binary(max_size=6).map(lambda b: b.replace(b"\n", b""))
requests = st.fixed_dictionaries(
    {
        "scheme": st.sampled_from(["http", "https"]),
        "host": hosts,
        "path": texts.map(lambda t: "/" + t),
        "query": st.lists(st.tuples(texts, texts), max_size=4),
        "vary": st.tuples(header_values, header_values),
    }
)


def scope_of(req: dict[str, Any]) -> dict[str, Any]:
    query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in req["query"])
    scope = http_scope(req["path"], query=query.encode("ascii"))
    scope["scheme"] = req["scheme"]
    return scope


def key_of(req: dict[str, Any]) -> str:
    scope = scope_of(req)
    host = request_host(scope, req["host"].encode())
    assert host is not None
    url, variant = key_material(POLICY, scope, host, zip(VARY, req["vary"], strict=True))
    return build_key(POLICY, request_path(scope), url, variant)


def meaning(req: dict[str, Any]) -> tuple[Any, ...]:
    """What the app can observe: the request as the key must distinguish it."""
    host = req["host"].lower().removesuffix(":80") if req["scheme"] == "http" else req["host"]
    # what the app reads: each name's values in their order (``getlist``); names in any order
    query = sorted(req["query"], key=lambda pair: pair[0])
    return req["scheme"], host.lower(), req["path"], query, req["vary"]


@PROPERTY
@given(st.data())
def test_cache_key_injective(data: st.DataObject) -> None:
    """Two requests share a key exactly when the app could not tell them apart."""
    a = data.draw(requests)
    b = data.draw(
        st.one_of(
            requests,
            st.just(a),
            st.permutations(a["query"]).map(lambda q: {**a, "query": q}),
            st.sampled_from([(None, None), (b"", None), (None, b""), (b"", b"")]).map(
                lambda v: {**a, "vary": v}
            ),
        )
    )
    assert (key_of(a) == key_of(b)) == (meaning(a) == meaning(b))


def test_cache_key_absent_header_differs_from_empty() -> None:
    """A varied header that is absent and one that is empty are different keys."""
    req = {"scheme": "http", "host": "a.example", "path": "/", "query": []}
    assert key_of({**req, "vary": (None, None)}) != key_of({**req, "vary": (b"", None)})


@pytest.mark.parametrize(
    "host", [b"evil/x", b"a b", b"a\x00b", b"x" * 400, b"[::1", b"a..b", b"a.example:99999"]
)
def test_cache_invalid_host_refused(host: bytes) -> None:
    """Hosts that are not valid names are never used in a key."""
    assert request_host(http_scope(), host) is None


@given(
    status=st.integers(100, 599),
    headers=st.lists(st.tuples(st.binary(max_size=5), st.binary(max_size=20)), max_size=5),
    body=st.binary(max_size=50),
    variants=st.dictionaries(st.binary(max_size=4), st.binary(max_size=10), max_size=3),
    created=st.floats(allow_nan=False),
    cut=st.integers(0, 400),
)
@PROPERTY
def test_cache_entry_roundtrip_and_truncation(
    status: int,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
    variants: dict[bytes, bytes],
    created: float,
    cut: int,
) -> None:
    """An entry decodes to itself; any truncation decodes to None, never to other data."""
    from aeros.response_cache.entry import Entry

    entry = Entry(status, headers, body, created, created, created, variants, etag=b"x")
    data = encode_entry(entry)
    back = decode_entry(data)
    assert back is not None
    assert (back.status, back.headers, back.body, back.variants) == (
        status,
        headers,
        body,
        variants,
    )
    if cut < len(data):
        assert decode_entry(data[:cut]) is None


# ---- poisoning and leaks ---------------------------------------------------------------------

response_headers = st.lists(
    st.sampled_from(
        [
            (b"set-cookie", b"sid=1"),
            (b"cache-control", b"private"),
            (b"cache-control", b"no-store"),
            (b"cache-control", b"No-Cache"),
            (b"cache-control", b"public, max-age=60"),
            (b"cache-control", b'max-age=0, private="x"'),
            (b"vary", b"*"),
            (b"vary", b"accept-language"),
            (b"vary", b"user-agent"),
            (b"vary", b"Accept-Encoding"),
            (b"x-other", b"1"),
        ]
    ),
    max_size=3,
)
request_headers = st.lists(
    st.sampled_from(
        [(b"authorization", b"Bearer a"), (b"cookie", b"a=1"), (b"accept-language", b"de")]
    ),
    max_size=2,
)


def forbidden(resp: list[tuple[bytes, bytes]]) -> bool:
    for name, value in resp:
        low = value.lower()
        if name == b"set-cookie" or (
            name == b"cache-control"
            and any(d in low for d in (b"private", b"no-store", b"no-cache"))
        ):
            return True
        if name == b"vary" and low not in (b"accept-language", b"accept-encoding"):
            return True
    return False


@PROPERTY
@given(resp=response_headers, req=request_headers, vary_cookie=st.booleans())
async def test_cache_never_stores_or_serves_private(
    resp: list[tuple[bytes, bytes]], req: list[tuple[bytes, bytes]], vary_cookie: bool
) -> None:
    """No Set-Cookie/private/no-store response is stored; no credentialed request is cached
    unless the route varies on that header; a stored body only reaches matching requests."""
    store = SimpleCache()
    vary = (b"accept-language", b"cookie") if vary_cookie else (b"accept-language",)
    policy = CachePolicy(timeout=60, vary=vary, route="r")
    counter = itertools.count()

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        body = f"{next(counter)} {scope['headers']}".encode()
        headers = [*resp, (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    layer = CacheMiddleware(inner, store, lambda scope: policy)
    headers = [(b"host", b"a.example"), *req]
    first = await call(layer, http_scope(headers=headers))
    credentials = {n for n, _ in req} & {b"authorization", b"cookie"}
    allowed = not forbidden(resp) and credentials <= set(vary)
    assert (len(store) == 1) == allowed
    again = await call(layer, http_scope(headers=headers))
    assert (again.body == first.body) == allowed
    anonymous = await call(layer, http_scope(headers=[(b"host", b"a.example")]))
    if credentials or (b"accept-language", b"de") in req:
        assert anonymous.body != first.body  # never someone else's variant


async def test_cache_two_users_never_see_each_other() -> None:
    """10k interleaved requests from users with different cookies: each gets only their body."""
    app = WebServer(__name__, access_log=False, cache=SimpleCache(threshold=100))
    from quart import request

    @app.route("/me")
    @app.cache(timeout=60, vary=["Cookie"])
    async def me() -> str:
        return f"user={request.cookies.get('u')}"

    @app.route("/shared")
    @app.cache(timeout=60)
    async def shared() -> str:
        return f"shared user={request.cookies.get('u')}"

    users = [b"alice", b"bob", b"carol", None]

    async def one(i: int) -> None:
        user = users[i % len(users)]
        headers = [(b"host", b"a.example")]
        if user is not None:
            headers.append((b"cookie", b"u=" + user))
        path = "/me" if i % 10 else "/shared"
        response = await call(app.asgi_app, http_scope(path, headers=headers))
        assert response.status == 200
        name = "None" if user is None else user.decode()
        assert response.body.decode().endswith(f"user={name}"), (i, response.body)

    for start in range(0, 10_000, 250):
        await asyncio.gather(*(one(i) for i in range(start, start + 250)))


async def test_cache_vary_on_accept_encoding_keys_and_still_compresses() -> None:
    """A route varying on Accept-Encoding, a field the cache reads for the coding as well: one
    entry per value (the view runs once for each), each hit compressed as its request asks;
    two Host fields are still passed by."""
    app = WebServer(__name__, access_log=False, cache=SimpleCache(threshold=100))
    views = 0

    @app.route("/text")
    @app.cache(timeout=60, vary=["Accept-Encoding"])
    async def text() -> str:
        nonlocal views
        views += 1
        return "cacheable text " * 400

    async def get(accept: bytes | None, *more: tuple[bytes, bytes]) -> Any:
        headers = [(b"host", b"a.example"), *more]
        if accept is not None:
            headers.append((b"accept-encoding", accept))
        return await call(app.asgi_app, http_scope("/text", headers=headers))

    for _ in range(2):
        gzip = await get(b"gzip")
        identity = await get(None)
        assert gzip.header(b"content-encoding") == b"gzip"
        assert identity.header(b"content-encoding") is None
        assert len(identity.body) == len("cacheable text " * 400)
    assert views == 2  # one entry per Accept-Encoding value, each a hit the second time
    twice = await get(b"gzip", (b"host", b"b.example"))
    assert twice.status == 200
    assert views == 3  # two Host fields: passed by to the view, never served from the cache
