"""aeros.misc: the seed's helpers, and the once-per-function note about sync views."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from pathlib import Path

import asgiref.sync
import httpx
import pytest
import quart

import aeros
from aeros import WebServer, misc


def test_misc_reexports_the_originals() -> None:
    """The helpers are asgiref's and Quart's own objects (jsonify: one that answers as
    Quart's does, below), also importable from aeros."""
    assert misc.sync_to_async is asgiref.sync.sync_to_async
    assert misc.async_to_sync is asgiref.sync.async_to_sync
    assert misc.render_template is quart.render_template
    for name in ("sync_to_async", "async_to_sync", "jsonify", "render_template"):
        assert getattr(aeros, name) is getattr(misc, name)


def test_seed_helpers_over_a_real_server(live_server, tmp_path: Path) -> None:
    """sync_to_async from an async view, async_to_sync from a sync view, render_template."""
    (tmp_path / "hello.html").write_text("<p>hello {{ name }}</p>")
    app = WebServer(__name__, access_log=False, template_folder=str(tmp_path))

    @misc.sync_to_async
    def blocking() -> str:
        time.sleep(0.01)
        return "ok"

    async def coroutine() -> str:
        await asyncio.sleep(0)
        return "from a coroutine"

    @app.route("/")
    async def home() -> quart.Response:
        return misc.jsonify({"response": await blocking()})

    @app.route("/sync")
    def sync_view() -> str:
        return misc.async_to_sync(coroutine)()

    @app.route("/page")
    async def page() -> str:
        return await misc.render_template("hello.html", name="<b>")

    with live_server(app) as url:
        assert httpx.get(url + "/").json() == {"response": "ok"}
        assert httpx.get(url + "/sync").text == "from a coroutine"
        assert httpx.get(url + "/page").text == "<p>hello &lt;b&gt;</p>"


class Handlers:
    def sync_method(self) -> None:
        return None

    async def async_method(self) -> None:
        return None


def test_note_sync_function_logs_once_per_function(caplog: pytest.LogCaptureFixture) -> None:
    """Each sync function is reported once, however it is wrapped; async ones never."""

    def plain() -> None:
        return None

    async def coroutine() -> None:
        return None

    handlers = Handlers()
    caplog.set_level(logging.INFO, logger="aeros.misc")
    for _ in range(3):
        misc.note_sync_function(plain)
        misc.note_sync_function(coroutine)
        misc.note_sync_function(handlers.sync_method)  # a new bound method object each time
        misc.note_sync_function(handlers.async_method)
        misc.note_sync_function(functools.partial(plain))
    messages = [r.getMessage() for r in caplog.records if r.name == "aeros.misc"]
    assert len(messages) == 2
    assert (
        "test_note_sync_function_logs_once_per_function.<locals>.plain is synchronous"
        in (messages[0])
    )
    assert "Handlers.sync_method is synchronous: Quart runs it in a thread pool" in messages[1]


def test_sync_view_noted_once_through_the_app(live_server, tmp_path: Path) -> None:
    """A sync view served many times is logged once; an async view not at all."""
    log_file = tmp_path / "server.log"
    app = WebServer(__name__, access_log=False, log_file=str(log_file))

    @app.route("/sync")
    def sync_once() -> str:
        return "s"

    @app.route("/async")
    async def async_never() -> str:
        return "a"

    with live_server(app) as url:
        for _ in range(3):
            assert httpx.get(url + "/sync").text == "s"
            assert httpx.get(url + "/async").text == "a"
    text = log_file.read_text()
    assert text.count("sync_once is synchronous: Quart runs it in a thread pool") == 1
    assert "async_never" not in text


async def test_jsonify_answers_exactly_as_quarts() -> None:
    """aeros' jsonify (the app found without current_app's proxy) makes the response Quart's
    makes, for positional and keyword data, and raises Quart's error outside an app."""
    app = WebServer(__name__)
    async with app.app_context():
        for args, kwargs in (((({"b": 1, "a": [1, 2]}),), {}), ((1, 2), {}), ((), {"k": "v"})):
            ours = misc.jsonify(*args, **kwargs)
            theirs = quart.jsonify(*args, **kwargs)
            assert type(ours) is type(theirs)
            assert ours.status_code == theirs.status_code
            assert list(ours.headers.items()) == list(theirs.headers.items())
            assert await ours.get_data() == await theirs.get_data()
    with pytest.raises(RuntimeError) as ours_error:
        misc.jsonify({"a": 1})
    with pytest.raises(RuntimeError) as quarts_error:
        quart.jsonify({"a": 1})
    assert str(ours_error.value) == str(quarts_error.value)
