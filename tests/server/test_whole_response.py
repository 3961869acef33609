"""A whole response (status, headers, one complete body) goes from aeros' lean HTTP connection
to the server's cycle in one call (``send_whole``, :data:`aeros.types.WHOLE_RESPONSE`), and
through ``send`` as two messages whenever a layer wrapped ``send``.

Over real HTTP on aeros' server: the bytes are the same either way, the one-call path is taken
only when the app's ``send`` is the server's own, and a middleware that wraps ``send`` sees
both messages.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import httpx
import pytest
from quart import request

from aeros import SimpleCache, WebServer, jsonify
from aeros.server.http.cycle import LeanCycle
from aeros.types import WHOLE_RESPONSE


def make_app(**options: Any) -> WebServer:
    app = WebServer(__name__, access_log=False, **options)

    @app.route("/json")
    async def json_() -> Any:
        return jsonify({"message": "Hello, World!"})

    @app.route("/text")
    async def text() -> str:
        return "x" * 2000  # compressed for a client that asks

    @app.route("/cached")
    @app.cache(timeout=60)
    async def cached() -> Any:
        response = jsonify({"cached": True})
        response.set_etag("v1")
        return response

    return app


@pytest.fixture
def taken(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """What each ``send_whole`` call answered (the server's own method, counted)."""
    answers: list[bool] = []
    original = LeanCycle.send_whole

    def counted(self: LeanCycle, status: int, headers: Any, body: bytes) -> bool:
        answer = original(self, status, headers, body)
        answers.append(answer)
        return answer

    monkeypatch.setattr(LeanCycle, "send_whole", counted)
    return answers


def test_a_whole_response_is_written_in_one_call_on_aeros_server(
    live_server: Callable[[WebServer], AbstractContextManager[str]], taken: list[bool]
) -> None:
    """JSON and a compressed body: each written by ``send_whole``, with the headers, body and
    framing the two messages give (a HEAD answer beside them, through ``send``)."""
    with live_server(make_app()) as url, httpx.Client(base_url=url) as client:
        json_ = client.get("/json")
        gzipped = client.get("/text", headers={"accept-encoding": "gzip"})
        head = client.head("/json")
    assert json_.json() == {"message": "Hello, World!"}
    assert json_.headers["content-length"] == str(len(json_.content))
    assert gzipped.headers["content-encoding"] == "gzip"
    assert gzipped.text == "x" * 2000  # httpx decoded it
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == json_.headers["content-length"]
    assert taken == [True, True]  # a HEAD answer goes through Quart's own path


def test_cache_answers_are_written_in_one_call_on_aeros_server(
    live_server: Callable[[WebServer], AbstractContextManager[str]], taken: list[bool]
) -> None:
    """A miss's answer, a hit, a HEAD hit and a gzip hit go to the server in one call each,
    with the bytes the two messages give; a 304 goes as two messages."""
    app = make_app(cache=SimpleCache(), cache_status=True)
    with live_server(app) as url, httpx.Client(base_url=url) as client:
        miss = client.get("/cached")
        hit = client.get("/cached")
        head = client.head("/cached")
        not_modified = client.get("/cached", headers={"if-none-match": hit.headers["etag"]})
    assert miss.json() == hit.json() == {"cached": True}
    assert hit.headers["content-length"] == str(len(hit.content))
    assert head.content == b""
    assert head.headers["content-length"] == hit.headers["content-length"]
    assert not_modified.status_code == 304
    assert not_modified.content == b""
    statuses = [answer.headers["cache-status"] for answer in (miss, hit, head, not_modified)]
    assert ["fwd=uri-miss" in value for value in statuses] == [True, False, False, False]
    assert ["; hit" in value for value in statuses] == [False, True, True, True]
    assert taken == [True, True, True]


def test_a_layer_that_wraps_send_gets_both_messages(
    live_server: Callable[[WebServer], AbstractContextManager[str]], taken: list[bool]
) -> None:
    """A middleware around the app that wraps ``send`` sees the start and the body, as on
    stock Quart: the one-call path is not taken behind it."""
    app = make_app()
    inner = app.asgi_app
    seen: list[str] = []

    async def wrapping(scope: Any, receive: Any, send: Any) -> None:
        async def noting(message: Any) -> None:
            seen.append(message["type"])
            await send(message)

        await inner(scope, receive, noting if scope["type"] == "http" else send)

    app.asgi_app = wrapping  # type: ignore[method-assign]
    with live_server(app) as url, httpx.Client(base_url=url) as client:
        assert client.get("/json").json() == {"message": "Hello, World!"}
    assert seen == ["http.response.start", "http.response.body"]
    assert taken == []


def test_the_send_is_in_the_scope_only_while_the_request_runs(
    live_server: Callable[[WebServer], AbstractContextManager[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The server puts the ``send`` it passes into the request's scope, and takes it out when
    the request ends (it refers to the cycle, which holds the scope)."""
    app = make_app()
    during: list[bool] = []
    after: list[bool] = []

    @app.before_request
    async def look() -> None:
        during.append(request.scope.get(WHOLE_RESPONSE) is not None)

    original = LeanCycle.run_asgi

    async def run_asgi(self: LeanCycle, asgi: Any) -> None:
        await original(self, asgi)
        after.append(WHOLE_RESPONSE in self.scope)

    monkeypatch.setattr(LeanCycle, "run_asgi", run_asgi)
    with live_server(app) as url, httpx.Client(base_url=url) as client:
        assert client.get("/json").status_code == 200
    assert during == [True]
    assert after == [False]
