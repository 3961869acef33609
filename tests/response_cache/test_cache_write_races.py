"""A write's invalidation wins over work that started before it, and keys keep apart what the
app tells apart (each case found in review, with a real server and a real client)."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import httpx
from quart import request

from aeros import SimpleCache, WebServer
from aeros.stores import Capabilities


def test_repeated_query_parameters_in_another_order_are_another_entry(live_server) -> None:
    """``?id=2&id=1`` and ``?id=1&id=2`` differ for the app (``args.get`` and ``getlist``):
    they are two entries (the key sorted whole pairs and served one for the other)."""
    app = WebServer(__name__, access_log=False, cache=SimpleCache())

    @app.route("/item")
    @app.cache(60)
    async def item() -> str:
        return f"{request.args.get('id')} {request.args.getlist('id')}"

    with live_server(app) as url, httpx.Client(base_url=url) as client:
        first = client.get("/item?id=2&id=1")
        other = client.get("/item?id=1&id=2")
        again = client.get("/item?id=2&id=1")
        named = client.get("/item?id=2&a=1&id=1")
        renamed = client.get("/item?a=1&id=2&id=1")  # other names move: the same query
    assert first.text == "2 ['2', '1']"
    assert other.text == "1 ['1', '2']"
    assert "age" not in other.headers  # filled, not a hit of the other order
    assert again.headers.get("age") is not None  # the first entry is still used
    assert renamed.text == named.text == "2 ['2', '1']"
    assert renamed.headers.get("age") is not None


class _SlowShared(SimpleCache):
    """A shared store whose reads can be held (a Redis or file read in flight)."""

    capabilities = Capabilities(groups=True, prefix_delete=True, tags=True, shared=True)

    def __init__(self) -> None:
        super().__init__()
        self.hold = False
        self.reading = threading.Event()
        self.release = threading.Event()

    async def get(self, key: str) -> Any:
        value = self.get_nowait(key)
        if self.hold:
            self.reading.set()
            await asyncio.to_thread(self.release.wait, 5)
        return value


def test_a_new_variant_saved_after_a_write_does_not_bring_the_old_entry_back(
    live_server,
) -> None:
    """A gzip hit reads the entry, a POST drops it, then the hit saves the gzip variant with
    the entry it read: that save is skipped, so later GETs see the write (the old entry was
    written back and served until it expired)."""
    store = _SlowShared()
    app = WebServer(__name__, access_log=False, cache=store)
    state = {"version": 1}

    @app.route("/doc", methods=["GET", "POST"])
    @app.cache(300)
    async def doc() -> str:
        if request.method == "POST":
            state["version"] += 1
            return "updated"
        return f"version {state['version']} " + "x" * 4000  # compressible

    with live_server(app) as url, httpx.Client(base_url=url) as client:
        assert client.get("/doc", headers={"accept-encoding": "identity"}).text.startswith(
            "version 1"
        )
        store.hold = True
        hit: dict[str, httpx.Response] = {}

        def gzip_hit() -> None:
            hit["response"] = client.get("/doc", headers={"accept-encoding": "gzip"})

        reader = threading.Thread(target=gzip_hit)
        reader.start()
        assert store.reading.wait(5)  # the hit's read is in flight
        assert client.post("/doc").text == "updated"
        store.hold = False
        store.release.set()
        reader.join(5)
        assert hit["response"].text.startswith("version 1")  # read before the write: fine
        for _ in range(20):  # the variant's save (a task of its own) has had its chance
            answers = [
                client.get("/doc", headers={"accept-encoding": coding}).text[:9]
                for coding in ("identity", "gzip")
            ]
            assert answers == ["version 2", "version 2"]


def test_a_refresh_that_began_before_a_write_does_not_answer_after_it(live_server) -> None:
    """A stale hit starts a refresh whose view read the data before a POST changed it; a GET
    after the POST waits for that refresh and runs the view again instead of taking its
    answer, as a waiter of a normal fill does."""
    now = [1_000_000.0]
    app = WebServer(__name__, access_log=False, cache=SimpleCache())
    app.response_cache.clock = lambda: now[0]
    state = {"version": 1, "hold": False}
    rendering = threading.Event()
    release = threading.Event()

    @app.route("/doc", methods=["GET", "POST"])
    @app.cache(10, stale_while_revalidate=100)
    async def doc() -> str:
        if request.method == "POST":
            state["version"] += 1
            return "updated"
        seen = state["version"]
        if state["hold"]:  # the refresh: it has read the data, now it renders slowly
            state["hold"] = False
            rendering.set()
            await asyncio.to_thread(release.wait, 5)
        return f"version {seen}"

    with live_server(app) as url, httpx.Client(base_url=url) as client:
        assert client.get("/doc").text == "version 1"
        time.sleep(0.7)  # past the fill's grace (0.5 s): it no longer answers late arrivals
        now[0] += 20  # stale, within stale-while-revalidate
        state["hold"] = True
        assert client.get("/doc").text == "version 1"  # served stale; the refresh starts
        assert rendering.wait(5)
        assert client.post("/doc").text == "updated"
        after: dict[str, httpx.Response] = {}

        def get_after_write() -> None:
            after["response"] = client.get("/doc")

        waiter = threading.Thread(target=get_after_write)
        waiter.start()
        waiter.join(0.3)  # it waits for the refresh
        release.set()
        waiter.join(5)
    assert after["response"].text == "version 2"
