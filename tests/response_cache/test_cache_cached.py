"""``@cached(...)``: caching views of blueprints in their own modules and of app factories."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from aeros import ConfigurationError, SimpleCache, WebServer, cached
from tests.apps.cached_blueprint import calls
from tests.apps.cached_factory import create_app
from tests.support.asgi import http_scope
from tests.support.cache import LiveServer, Records


def test_cached_blueprint_module_and_factory(live_server: LiveServer) -> None:
    """Views marked with @cached in a blueprint module and in a factory are cached by the app
    the factory builds, over real HTTP; two apps from one factory each use their own store."""
    calls.clear()
    one, two = create_app(SimpleCache()), create_app(SimpleCache())
    with live_server(one) as url_one, live_server(two) as url_two:
        for url in (url_one, url_two):
            bodies = [httpx.get(url + "/blog/posts/1").text for _ in range(3)]
            assert bodies == [bodies[0]] * 3
            homes = [httpx.get(url + "/home").text for _ in range(3)]
            assert homes == ["home #1"] * 3
            assert httpx.get(url + "/home", headers={"accept-language": "fr"}).text == "home #2"
            assert httpx.get(url + "/blog/latest").headers.get("age") is None
            assert httpx.get(url + "/blog/latest").headers.get("age") is not None
    assert calls["post1"] == 2  # once per app
    assert calls["latest"] == 2


def test_cached_without_timeout_uses_the_serving_apps_store() -> None:
    """@cached() without a timeout takes the timeout of the store of the app serving it;
    an explicit timeout stays."""
    apps = {123.0: create_app(SimpleCache(timeout=123)), None: create_app(SimpleCache(timeout=0))}
    for store_timeout, app in apps.items():
        latest = app.response_cache.policy_for(http_scope("/blog/latest"))
        post = app.response_cache.policy_for(http_scope("/blog/posts/9"))
        assert latest is not None
        assert post is not None
        assert (latest.timeout, post.timeout) == (store_timeout, 30.0)


def test_cached_without_store_warns_once_at_start(live_server: LiveServer) -> None:
    """An app without a store serves @cached views uncached and warns once, at start, naming
    every route that asked for caching."""
    calls.clear()
    app = create_app(None)
    with Records("aeros.response_cache.routes") as log, live_server(app) as url:
        bodies = [httpx.get(url + "/blog/posts/1").text for _ in range(3)]
        assert bodies == ["post 1 #1", "post 1 #2", "post 1 #3"]
    warnings = [r.getMessage() for r in log.records]
    assert len(warnings) == 1, warnings
    for route in ("/blog/posts/<int:post_id> (blog.post)", "/blog/latest", "/home (home)"):
        assert route in warnings[0]
    assert "WebServer(cache=...)" in warnings[0]


FACTORY_SERVER = textwrap.dedent(
    """
    import os, sys
    sys.path.insert(0, sys.argv[1])
    from tests.apps.cached_factory import create_app

    url_file = sys.argv[2]
    app = create_app(None)

    def started(url):
        with open(url_file + ".tmp", "w") as f:
            f.write(url)
        os.replace(url_file + ".tmp", url_file)

    app.run_server(port=0, workers=2, on_started=started)
    """
)


def test_cached_without_store_warns_once_with_workers(tmp_path: Path) -> None:
    """run_server() with 2 worker processes and no store: the warning comes once (from the
    parent before forking), not once per worker."""
    script, url_file, log = tmp_path / "app.py", tmp_path / "url.txt", tmp_path / "err.txt"
    script.write_text(FACTORY_SERVER)
    repo_root = str(Path(__file__).resolve().parents[2])  # where the tests package is
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, str(script), repo_root, str(url_file)],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        deadline = time.monotonic() + 30
        while not url_file.exists():
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        url = url_file.read_text()
        for _ in range(4):  # fresh connections: both workers build their stacks
            response = httpx.get(url + "/home", headers={"Connection": "close"}, timeout=10)
            assert response.status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
    text = log.read_text()
    assert text.count("ask for caching but WebServer(cache=...) is not set") == 1, text
    assert "/blog/posts/<int:post_id> (blog.post)" in text


def test_app_cache_without_store_warns_at_start_not_at_decoration() -> None:
    """@app.cache() without a store: no warning when decorating (blueprints may come later),
    one at start naming the routes; an app without cached routes says nothing."""
    app = WebServer(__name__, access_log=False)
    with Records("aeros.response_cache.routes") as log:

        @app.route("/")
        @app.cache()
        async def home() -> str:
            return "hi"

        assert log.records == []
        app.test_client()  # building a client does not start the app
        for _ in range(2):
            app.response_cache.warn_without_store()
        plain = WebServer(__name__, access_log=False)
        plain.response_cache.warn_without_store()
    assert [r.getMessage().count("/ (home)") for r in log.records] == [1]


@pytest.mark.parametrize(
    ("options", "match"),
    [
        pytest.param({"timeout": -1}, r"cached\(timeout=-1\)", id="negative-timeout"),
        pytest.param({"statuses": [700]}, r"cached\(statuses=", id="bad-status"),
        pytest.param({"vary": ["bad header"]}, r"cached\(vary=", id="bad-vary"),
        pytest.param({"unless": 3}, r"cached\(unless=3\)", id="unless-not-callable"),
        pytest.param({"timeout": "5"}, r"cached\(timeout='5'\)", id="str-timeout"),
        pytest.param(
            {"stale_while_revalidate": float("nan")},
            r"cached\(stale_while_revalidate=nan\)",
            id="nan-swr",
        ),
        pytest.param({"query_string": "no"}, r"cached\(query_string='no'\)", id="str-bool"),
    ],
)
def test_cached_refuses_bad_options(options: dict[str, Any], match: str) -> None:
    """@cached checks its options when decorating, naming itself, the option and the value."""
    with pytest.raises(ConfigurationError, match=match):
        cached(**options)
    with pytest.raises(ConfigurationError, match="unknown option"):
        cached(tiemout=3)
