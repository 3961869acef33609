"""Response cache over a real server, every rule against every backend (memory, files, Redis)."""

from __future__ import annotations

import asyncio
import gzip
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from aeros import Gzip, WebServer
from aeros.errors import ConfigurationError
from tests.support.cache import (
    BACKENDS,
    BIG,
    FailingStore,
    LiveServer,
    Records,
    Site,
    make_store,
)


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """A fresh, empty store of every backend."""
    return make_store(request.param, tmp_path, request)


@pytest.fixture
def site(store: Any, live_server: LiveServer) -> Iterator[tuple[Site, httpx.Client]]:
    """A running Site on every backend and an HTTP client for it."""
    site = Site(store)
    with live_server(site.app) as url, httpx.Client(base_url=url, timeout=10) as client:
        yield site, client


def test_cache_hit_never_enters_quart(site: tuple[Site, httpx.Client]) -> None:
    """A hit is answered in front of Quart: no hook, no view; it carries ETag and Age."""
    s, client = site
    first = client.get("/")
    entered = s.entered
    hits = [client.get("/") for _ in range(5)]
    assert s.entered == entered
    assert s.views["page"] == 1
    for hit in hits:
        assert hit.status_code == 200
        assert hit.text == first.text == "page  1"
        assert hit.headers["etag"] == first.headers["etag"]
        assert int(hit.headers["age"]) >= 0
        assert hit.headers["content-type"] == first.headers["content-type"]


def test_cache_paths_are_separate_entries(site: tuple[Site, httpx.Client]) -> None:
    """Each path is its own entry; HEAD is answered from the GET entry without a body."""
    s, client = site
    assert client.get("/page/a").text == "page a 1"
    assert client.get("/page/b").text == "page b 2"
    assert client.get("/page/a").text == "page a 1"
    head = client.head("/page/a")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len("page a 1"))
    assert s.views["page"] == 2


def test_cache_query_string_order_does_not_matter(site: tuple[Site, httpx.Client]) -> None:
    """``?a=1&b=2`` and ``?b=2&a=1`` share an entry; ``?a=2`` does not."""
    s, client = site
    one = client.get("/q?a=1&b=2").text
    assert client.get("/q?b=2&a=1").text == one
    assert client.get("/q?a=2").text != one
    assert client.get("/noq?x=1").text == client.get("/noq?x=2").text == "noq 1"
    assert s.views["q"] == 2


def test_cache_only_get_and_head(site: tuple[Site, httpx.Client]) -> None:
    """POST always reaches the view, is never stored, and drops the path's cached GET."""
    _s, client = site
    assert client.post("/post").text == "post 1"
    assert client.post("/post").text == "post 2"
    assert client.get("/post").text == "post 3"
    assert client.get("/post").text == "post 3"
    assert client.post("/post").text == "post 4"
    assert client.get("/post").text == "post 5"
    assert client.options("/post").status_code == 200  # safe: leaves the entry alone
    assert client.get("/post").text == "post 5"


@pytest.mark.parametrize(
    "name", ["cookie", "private", "no-store", "no-cache", "vary-star", "vary-other"]
)
def test_cache_never_stores_forbidden_responses(site: tuple[Site, httpx.Client], name: str) -> None:
    """Set-Cookie, Cache-Control private/no-store/no-cache and Vary */unkeyed are never stored."""
    _s, client = site
    bodies = [client.get(f"/header/{name}").text for _ in range(3)]
    assert bodies == [f"{name} 1", f"{name} 2", f"{name} 3"]


def test_cache_public_cache_control_is_stored(site: tuple[Site, httpx.Client]) -> None:
    """A response with Cache-Control: public is stored and keeps its header on hits."""
    _s, client = site
    client.get("/header/public")
    hit = client.get("/header/public")
    assert hit.text == "public 1"
    assert hit.headers["cache-control"] == "public, max-age=60"


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"Authorization": "Bearer a"}, id="authorization"),
        pytest.param({"Cookie": "session=a"}, id="cookie"),
    ],
)
def test_cache_credentials_bypass(site: tuple[Site, httpx.Client], headers: dict[str, str]) -> None:
    """Requests with Authorization/Cookie neither get a cached body nor leave one behind."""
    _s, client = site
    assert client.get("/").text == "page  1"
    assert client.get("/", headers=headers).text == "page  2"
    assert client.get("/", headers=headers).text == "page  3"
    assert client.get("/").text == "page  1"


def test_cache_vary_on_cookie_keeps_users_apart(site: tuple[Site, httpx.Client]) -> None:
    """A route varying on Cookie stores one entry per cookie; absent differs from empty."""
    s, client = site
    alice = client.get("/by-cookie", headers={"Cookie": "u=alice"}).text
    bob = client.get("/by-cookie", headers={"Cookie": "u=bob"}).text
    none = client.get("/by-cookie").text
    assert client.get("/by-cookie", headers={"Cookie": "u=alice"}).text == alice
    assert client.get("/by-cookie", headers={"Cookie": "u=bob"}).text == bob
    assert client.get("/by-cookie").text == none
    assert "alice" in alice
    assert "bob" in bob
    assert "None" in none
    assert s.views["by-cookie"] == 3


def test_cache_vary_header_in_key(site: tuple[Site, httpx.Client]) -> None:
    """A route varying on Accept-Language caches each language apart, with Vary kept."""
    s, client = site
    en = client.get("/by-lang", headers={"Accept-Language": "en"})
    de = client.get("/by-lang", headers={"Accept-Language": "de"})
    again = client.get("/by-lang", headers={"Accept-Language": "en"})
    assert again.text == en.text != de.text
    assert "accept-language" in again.headers["vary"].lower()
    assert s.views["by-lang"] == 2


def test_cache_streaming_not_stored(site: tuple[Site, httpx.Client]) -> None:
    """Streamed bodies (no Content-Length) and event streams reach the client but are not stored."""
    _s, client = site
    assert client.get("/stream").text == "chunk0-1;chunk1-1;chunk2-1;"
    assert client.get("/stream").text == "chunk0-2;chunk1-2;chunk2-2;"
    assert client.get("/sse").text == "data: 1\n\n"
    assert client.get("/sse").text == "data: 2\n\n"


def test_cache_statuses(site: tuple[Site, httpx.Client]) -> None:
    """Only 200 is stored by default; statuses=(200, 404) stores 404s too."""
    _s, client = site
    assert [client.get("/status/404").text for _ in range(2)] == ["status 1", "status 2"]
    assert [client.get("/status/201").text for _ in range(2)] == ["status 1", "status 2"]
    missing = [client.get("/status-404-ok/404") for _ in range(2)]
    assert [r.status_code for r in missing] == [404, 404]
    assert [r.text for r in missing] == ["ok 1", "ok 1"]


def test_cache_if_none_match_304(site: tuple[Site, httpx.Client]) -> None:
    """If-None-Match with the entry's ETag (weak or strong form, in a list or *) answers 304."""
    s, client = site
    etag = client.get("/").headers["etag"]
    opaque = etag.removeprefix("W/")
    for value in (etag, opaque, f'"nope", {etag}', "*"):
        response = client.get("/", headers={"If-None-Match": value})
        assert response.status_code == 304
        assert response.content == b""
        assert response.headers["etag"] == etag
        assert "age" in response.headers
    assert client.get("/", headers={"If-None-Match": '"other"'}).status_code == 200
    assert s.views["page"] == 1


def test_cache_encodes_only_what_the_client_accepts(site: tuple[Site, httpx.Client]) -> None:
    """Hits send gzip only to clients that accept it, identity otherwise, with Vary."""
    s, client = site
    plain = client.get("/big", headers={"Accept-Encoding": "identity"})
    zipped = client.get("/big", headers={"Accept-Encoding": "gzip"})
    refused = client.get("/big", headers={"Accept-Encoding": "gzip;q=0, br"})
    for response in (plain, zipped, refused):
        assert response.status_code == 200
        assert response.text == BIG
        assert "accept-encoding" in response.headers["vary"].lower()
    assert "content-encoding" not in plain.headers
    assert zipped.headers["content-encoding"] == "gzip"
    assert "content-encoding" not in refused.headers
    assert int(zipped.headers["content-length"]) < len(BIG)
    with client.stream("GET", "/big", headers={"Accept-Encoding": "gzip"}) as raw:
        assert gzip.decompress(b"".join(raw.iter_raw())).decode() == BIG
    assert s.views["big"] == 1


def test_cache_unless_sees_the_scope(site: tuple[Site, httpx.Client]) -> None:
    """unless(scope) returning True bypasses the cache for that request only."""
    _s, client = site
    assert client.get("/unless").text == "unless 1"
    assert client.get("/unless?fresh=1").text == "unless 2"
    assert client.get("/unless").text == "unless 1"


def test_cache_key_holds_host(site: tuple[Site, httpx.Client]) -> None:
    """Different hosts are different entries (Host is case-insensitive); the server refuses
    an invalid Host with 400 before the cache sees it (test_cache_invalid_host_bypasses drives
    the layer alone with one)."""
    s, client = site
    a = client.get("/", headers={"Host": "a.example"}).text
    b = client.get("/", headers={"Host": "b.example"}).text
    assert a != b
    assert client.get("/", headers={"Host": "A.example"}).text == a
    views = s.views["page"]
    for host in ("evil/../x", "exa mple"):
        assert client.get("/", headers={"Host": host}).status_code == 400
    assert s.views["page"] == views


@pytest.fixture
def timed_site(store: Any, live_server: LiveServer) -> Iterator[tuple[Site, httpx.Client]]:
    """A running Site whose cache reads a fake clock (``site.clock``), on every backend."""
    site = Site(store, fake_clock=True)
    with live_server(site.app) as url, httpx.Client(base_url=url, timeout=10) as client:
        yield site, client


def test_cache_entry_expires(timed_site: tuple[Site, httpx.Client]) -> None:
    """After its timeout (30 s) an entry is refilled by one call of the view; not before."""
    s, client = timed_site
    assert client.get("/short").text == "short 1"
    s.clock.advance(29.9)
    assert client.get("/short").text == "short 1"
    s.clock.advance(0.2)
    assert client.get("/short").text == "short 2"
    assert client.get("/short").text == "short 2"
    assert s.views["short"] == 2


def test_cache_stale_while_revalidate(timed_site: tuple[Site, httpx.Client]) -> None:
    """A stale entry is served at once while one background request refreshes it; past
    stale_while_revalidate it is a plain miss."""
    s, client = timed_site
    assert client.get("/swr").text == "swr 1"
    s.clock.advance(31)
    stale = client.get("/swr")
    assert stale.text == "swr 1"  # stale, served immediately
    assert int(stale.headers["age"]) == 31
    end = time.monotonic() + 5
    while client.get("/swr").text != "swr 2":  # the background refresh lands
        assert time.monotonic() < end, "never refreshed"
        time.sleep(0.02)
    assert s.views["swr"] == 2
    s.clock.advance(91)  # past timeout + stale_while_revalidate: not served stale
    assert client.get("/swr").text == "swr 3"
    assert s.views["swr"] == 3


async def test_cache_coalesces_100_misses(store: Any, live_server: LiveServer) -> None:
    """100 concurrent misses for one key call the view once; all get its body."""
    s = Site(store)
    with live_server(s.app) as url:
        limits = httpx.Limits(max_connections=100)
        async with httpx.AsyncClient(base_url=url, timeout=20, limits=limits) as client:
            responses = await asyncio.gather(*(client.get("/slow") for _ in range(100)))
    assert [r.status_code for r in responses] == [200] * 100
    assert {r.text for r in responses} == {"slow 1"}
    assert s.views["slow"] == 1


def test_cache_clear_and_purge(site: tuple[Site, httpx.Client]) -> None:
    """clear_cache() drops everything; purge_cache drops one path or one endpoint."""
    s, client = site
    client.get("/page/a")
    client.get("/page/b")
    client.get("/q?x=1")
    assert s.app.purge_cache("/page/a") >= 1
    assert client.get("/page/a").text == "page a 3"
    assert client.get("/page/b").text == "page b 2"
    assert s.app.purge_cache(endpoint="page") >= 2
    assert client.get("/page/b").text == "page b 4"
    assert client.get("/q?x=1").text.endswith(" 1")
    s.app.clear_cache()
    assert client.get("/q?x=1").text.endswith(" 2")
    for bad in ({}, {"path": "/q", "endpoint": "query"}):
        with pytest.raises(ConfigurationError, match="exactly one"):
            s.app.purge_cache(**bad)


async def test_cache_clear_inside_running_loop(store: Any, live_server: LiveServer) -> None:
    """clear_cache() works from a thread that is running an event loop (it uses a helper)."""
    s = Site(store)
    with live_server(s.app) as url:
        async with httpx.AsyncClient(base_url=url) as client:
            await client.get("/")
            s.app.clear_cache()
            await s.app.response_cache.clear()
            assert (await client.get("/")).text == "page  2"
    await store.aclose()


def test_cache_failing_store_never_5xx(live_server: LiveServer) -> None:
    """A store that raises StoreError: every request is served uncached, one warning logged."""
    store = FailingStore()
    s = Site(store)
    with Records("aeros.response_cache.layer") as log, live_server(s.app) as url:
        responses = [httpx.get(url + "/") for _ in range(10)]
    assert [r.status_code for r in responses] == [200] * 10
    assert s.views["page"] == 10
    assert store.calls >= 10
    warnings = [r for r in log.records if "store failed" in r.getMessage()]
    assert len(warnings) == 1


@pytest.mark.parametrize(
    ("options", "match"),
    [
        pytest.param({"timeout": -1}, "timeout", id="negative-timeout"),
        pytest.param({"statuses": [700]}, "statuses", id="bad-status"),
        pytest.param({"vary": ["bad header"]}, "vary", id="bad-vary"),
        pytest.param({"unless": 3}, "unless", id="unless-not-callable"),
        pytest.param({"stale_while_revalidate": -1}, "stale_while_revalidate", id="neg-swr"),
    ],
)
def test_cache_decorator_refuses_bad_options(options: dict[str, Any], match: str) -> None:
    """Bad @app.cache options fail at decoration time, naming the option."""
    app = WebServer(__name__, access_log=False, cache=FailingStore())
    with pytest.raises(ValueError, match=match):
        app.cache(**options)
    with pytest.raises(ConfigurationError, match="unknown option"):
        app.cache(tiemout=3)


def test_cache_with_compression_off(store: Any, live_server: LiveServer) -> None:
    """With compression=None hits send the identity body and no Vary: Accept-Encoding."""
    s = Site(store, compression=None)
    with live_server(s.app) as url:
        first = httpx.get(url + "/big", headers={"Accept-Encoding": "gzip"})
        hit = httpx.get(url + "/big", headers={"Accept-Encoding": "gzip"})
    assert hit.text == first.text == BIG
    assert "content-encoding" not in hit.headers
    assert "vary" not in hit.headers
    assert s.views["big"] == 1


def test_cache_gzip_codec_used_for_hits(store: Any, live_server: LiveServer) -> None:
    """An explicit codec (Gzip(level=9)) is what hits are encoded with."""
    s = Site(store, compression=Gzip(level=9))
    with live_server(s.app) as url:
        responses = [httpx.get(url + "/big", headers={"Accept-Encoding": "gzip"}) for _ in range(2)]
    assert [r.headers.get("content-encoding") for r in responses] == ["gzip", "gzip"]
    assert s.views["big"] == 1


class CountingGzip(Gzip):
    """Gzip that counts how many bodies it encodes whole."""

    compressed: ClassVar[list[int]] = []

    def compress(self, data: bytes) -> bytes:
        CountingGzip.compressed.append(len(data))
        return super().compress(data)


def test_cache_hit_does_no_compression_work(store: Any, live_server: LiveServer) -> None:
    """The fill encodes the body once; gzip and identity hits afterwards encode nothing."""
    CountingGzip.compressed.clear()
    s = Site(store, compression=CountingGzip())
    with live_server(s.app) as url, httpx.Client(base_url=url) as client:
        client.get("/big", headers={"Accept-Encoding": "gzip"})
        assert len(CountingGzip.compressed) == 1
        for _ in range(5):
            hit = client.get("/big", headers={"Accept-Encoding": "gzip"})
            assert hit.headers["content-encoding"] == "gzip"
            plain = client.get("/big", headers={"Accept-Encoding": "identity"})
            assert "content-encoding" not in plain.headers
    assert len(CountingGzip.compressed) == 1
    assert s.views["big"] == 1


def test_cache_new_variant_encoded_once(store: Any, live_server: LiveServer) -> None:
    """A variant first asked for on a hit is encoded once, then kept in the entry."""
    CountingGzip.compressed.clear()
    s = Site(store, compression=CountingGzip())
    with live_server(s.app) as url, httpx.Client(base_url=url) as client:
        client.get("/big", headers={"Accept-Encoding": "identity"})
        assert CountingGzip.compressed == []
        for _ in range(5):
            hit = client.get("/big", headers={"Accept-Encoding": "gzip"})
            assert hit.headers["content-encoding"] == "gzip"
    assert len(CountingGzip.compressed) == 1
