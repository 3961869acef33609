"""Cache-Status (RFC 9211): WebServer(cache_status=True) says how each response was served."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from quart import Response as QuartResponse

from tests.support.cache import BACKENDS, FailingStore, LiveServer, Site, make_store


@pytest.fixture(params=BACKENDS)
def site(
    request: pytest.FixtureRequest, tmp_path: Path, live_server: LiveServer
) -> Iterator[tuple[Site, httpx.Client]]:
    """A running Site with Cache-Status on, over every backend."""
    site = Site(make_store(request.param, tmp_path, request), cache_status=True)

    @site.app.route("/upstream")
    @site.app.cache(timeout=30)
    async def upstream() -> QuartResponse:
        site.views["upstream"] += 1
        return QuartResponse("up", headers={"Cache-Status": "origin-cdn; hit"})

    with live_server(site.app) as url, httpx.Client(base_url=url, timeout=10) as client:
        yield site, client


def statuses(response: httpx.Response) -> list[str]:
    return response.headers.get_list("cache-status")


def test_cache_status_miss_hit_and_304(site: tuple[Site, httpx.Client]) -> None:
    """A stored miss says fwd=uri-miss; stored; a hit says hit with its ttl, on a 304 too."""
    _, client = site
    assert statuses(client.get("/short")) == ["aeros; fwd=uri-miss; stored"]
    hit = client.get("/short")
    assert statuses(hit) == ["aeros; hit; ttl=29"] or statuses(hit) == ["aeros; hit; ttl=30"]
    not_modified = client.get("/short", headers={"If-None-Match": hit.headers["etag"]})
    assert not_modified.status_code == 304
    assert statuses(not_modified)[0].startswith("aeros; hit; ttl=")


@pytest.mark.parametrize(
    ("path", "headers", "expected"),
    [
        pytest.param("/header/cookie", {}, 'aeros; fwd=miss; detail="set-cookie"', id="cookie"),
        pytest.param("/header/private", {}, 'aeros; fwd=miss; detail="cache-control"', id="cc"),
        pytest.param("/stream", {}, 'aeros; fwd=miss; detail="stream"', id="stream"),
        pytest.param("/status/404", {}, 'aeros; fwd=miss; detail="status"', id="status"),
        pytest.param("/", {"Authorization": "Bearer x"}, "aeros; fwd=bypass", id="credentials"),
        pytest.param("/unless?fresh=1", {}, "aeros; fwd=bypass", id="unless"),
    ],
)
def test_cache_status_uncacheable_and_bypass(
    site: tuple[Site, httpx.Client], path: str, headers: dict[str, str], expected: str
) -> None:
    """An unstored response names the reason in detail=; a bypass says fwd=bypass."""
    _, client = site
    for _ in range(2):
        client.cookies.clear()  # a Set-Cookie answer must not make the next one a bypass
        assert statuses(client.get(path, headers=headers)) == [expected]


def test_cache_status_head_miss(site: tuple[Site, httpx.Client]) -> None:
    """A HEAD that misses runs the view without storing: fwd=uri-miss."""
    _, client = site
    assert statuses(client.head("/page/h")) == ["aeros; fwd=uri-miss"]


def test_cache_status_never_replayed(site: tuple[Site, httpx.Client]) -> None:
    """A Cache-Status the view sent goes out with the response that filled the entry but is
    never stored: a hit carries only this request's own."""
    _, client = site
    assert statuses(client.get("/upstream")) == [
        "origin-cdn; hit",
        "aeros; fwd=uri-miss; stored",
    ]
    assert statuses(client.get("/upstream")) == ["aeros; hit; ttl=29"] or statuses(
        client.get("/upstream")
    ) == ["aeros; hit; ttl=30"]


def test_cache_status_stale_has_negative_ttl(live_server: LiveServer) -> None:
    """A stale entry served while it is refreshed is a hit with a negative ttl."""
    s = Site(make_store("memory", Path("."), None), fake_clock=True, cache_status=True)
    with live_server(s.app) as url, httpx.Client(base_url=url) as client:
        client.get("/swr")
        s.clock.advance(35)
        assert statuses(client.get("/swr")) == ["aeros; hit; ttl=-5"]


def test_cache_status_store_error_and_off_by_default(live_server: LiveServer) -> None:
    """A failing store says detail="store-error"; without cache_status there is no header."""
    on = Site(FailingStore(), cache_status=True)
    off = Site(FailingStore())
    with live_server(on.app) as url:
        assert statuses(httpx.get(url + "/")) == ['aeros; fwd=miss; detail="store-error"']
    with live_server(off.app) as url:
        assert "cache-status" not in httpx.get(url + "/").headers


def test_cache_status_refused_when_not_bool() -> None:
    """cache_status must be a bool."""
    from aeros import WebServer
    from aeros.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match=r"cache_status='yes'"):
        WebServer(__name__, cache_status="yes")  # type: ignore[arg-type]


def _unused(_: Any) -> None: ...
