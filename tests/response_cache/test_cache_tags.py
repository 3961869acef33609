"""Tags: purge by tag and by endpoint through the store's tag index, on every backend."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from aeros import WebServer
from aeros.errors import ConfigurationError
from tests.support.cache import BACKENDS, DictStore, LiveServer, Records, make_store


def tagged_app(store: Any) -> tuple[WebServer, Counter[str]]:
    """/items/<id> tagged item:<id> and items (a callable); /list tagged items; /other none."""
    app = WebServer(__name__, access_log=False, cache=store)
    views: Counter[str] = Counter()

    @app.route("/items/<int:item_id>")
    @app.cache(timeout=60, tags=lambda item_id: [f"item:{item_id}", "items"])
    async def item(item_id: int) -> str:
        views[f"item{item_id}"] += 1
        return f"item {item_id} v{views[f'item{item_id}']}"

    @app.route("/list")
    @app.cache(timeout=60, tags=["items"])
    async def listing() -> str:
        views["list"] += 1
        return f"list v{views['list']}"

    @app.route("/other")
    @app.cache(timeout=60)
    async def other() -> str:
        views["other"] += 1
        return f"other v{views['other']}"

    @app.route("/broken")
    @app.cache(timeout=60, tags=lambda: 42)
    async def broken() -> str:
        views["broken"] += 1
        return f"broken v{views['broken']}"

    return app, views


@pytest.mark.parametrize("kind", BACKENDS)
def test_cache_purge_by_tag_and_endpoint(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest, live_server: LiveServer
) -> None:
    """purge_cache(tag=) drops exactly the tagged entries and counts them; a tags= callable
    gets the view's arguments; purge_cache(endpoint=) drops one route via its index."""
    app, _ = tagged_app(make_store(kind, tmp_path, request))
    with live_server(app) as url, httpx.Client(base_url=url) as client:

        def body(path: str) -> str:
            return client.get(path).text

        for path in ("/items/1", "/items/2", "/list", "/other"):
            assert body(path).endswith("v1")
            assert body(path).endswith("v1")  # a hit
        assert app.purge_cache(tag="item:1") == 1
        assert body("/items/1") == "item 1 v2"
        assert body("/items/2") == "item 2 v1"
        assert app.purge_cache(tag="items") == 3
        assert [body(p) for p in ("/items/1", "/items/2", "/list", "/other")] == [
            "item 1 v3",
            "item 2 v2",
            "list v2",
            "other v1",
        ]
        assert app.purge_cache(tag="nothing") == 0
        assert app.purge_cache(endpoint="item") == 2
        assert body("/items/2") == "item 2 v3"
        assert body("/list") == "list v2"


def test_cache_tags_callable_failure_serves_uncached(
    live_server: LiveServer, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A tags= callable returning something other than tag names: the response is served,
    never stored (an untagged entry would escape its purges), and the route is logged once."""
    app, _ = tagged_app(make_store("memory", tmp_path, request))
    with (
        Records("aeros.response_cache.layer") as records,
        live_server(app) as url,
        httpx.Client(base_url=url) as client,
    ):
        assert [client.get("/broken").text for _ in range(3)] == [
            "broken v1",
            "broken v2",
            "broken v3",
        ]
    assert [r.getMessage() for r in records.records if "tags=" in r.getMessage()] == [
        "response cache: the tags= of route 'broken' failed; its responses are not stored"
    ]


@pytest.mark.parametrize(
    ("tags", "match"),
    [
        pytest.param(42, "tags=42", id="int"),
        pytest.param(["ok", ""], "''", id="empty-name"),
        pytest.param(b"x", "tags=b'x'", id="bytes"),
    ],
)
def test_cache_tags_option_refused(tags: Any, match: str) -> None:
    """tags= must be tag names or a callable; the error names the value."""
    app = WebServer(__name__)
    with pytest.raises(ConfigurationError, match=match):
        app.cache(tags=tags)


async def test_cache_tag_purge_without_tag_index_clears() -> None:
    """A store without tags (a user's own) is cleared by a tag purge, which returns 0."""
    store = DictStore()
    app, _ = tagged_app(store)
    store.data["x"] = b"y"
    assert await app.response_cache.purge(tag="items") == 0
    assert store.calls["clear"] == 1


@pytest.mark.parametrize(
    "given",
    [
        pytest.param({}, id="none"),
        pytest.param({"tag": "a", "endpoint": "b"}, id="two"),
        pytest.param({"tag": 3}, id="not-str"),
    ],
)
def test_cache_purge_takes_one_target(given: dict[str, Any]) -> None:
    """purge_cache takes exactly one of path, endpoint and tag, as a str."""
    app, _ = tagged_app(DictStore())
    with pytest.raises(ConfigurationError, match="exactly one"):
        app.purge_cache(**given)


@pytest.mark.parametrize("kind", ["redis", "tiered"])
def test_cache_endpoint_and_tag_purges_never_scan_redis(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest, live_server: LiveServer
) -> None:
    """Endpoint and tag purges on Redis read the tag indexes: Redis runs no SCAN for them."""
    import redis as redis_py

    app, _ = tagged_app(make_store(kind, tmp_path, request))
    server = request.getfixturevalue("redis")
    with (
        redis_py.Redis(port=server.port) as probe,
        live_server(app) as url,
        httpx.Client(base_url=url) as client,
    ):
        for path in ("/items/1", "/items/2", "/list"):
            client.get(path)
        scans = probe.info("commandstats").get("cmdstat_scan", {}).get("calls", 0)
        assert app.purge_cache(endpoint="item") == 2
        assert app.purge_cache(tag="items") == 1
        assert probe.info("commandstats").get("cmdstat_scan", {}).get("calls", 0) == scans
