"""What aeros' server notes of a request's header fields (``HEAD_NOTES``), and the layers that
read the notes instead of scanning the fields: the notes must say what a scan says, and a
layer in front that changes the fields must make the readers scan again."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest

from aeros import WebServer
from aeros.fastpath.http import inline_body_length
from aeros.types import HEAD_NOTES
from tests.server.hardening.wire import exchange
from tests.support.server import served_by_aeros


def _scanned(scope: Any) -> tuple[int | None, bytes | None]:
    """The body length and Accept-Encoding a scan of the scope's fields finds (the readers'
    own scans, with the notes taken out)."""
    without = {key: value for key, value in scope.items() if key != HEAD_NOTES}
    accept: bytes | None = None
    for name, value in scope["headers"]:
        if name == b"accept-encoding":
            accept = value if accept is None else accept + b"," + value
    return inline_body_length(without), accept


async def _noting_app(scope: Any, receive: Any, send: Any) -> None:
    """Answers with the server's notes and what a scan finds, after reading the body."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    headers = scope["headers"]
    notes = scope[HEAD_NOTES]
    length, accept = _scanned(scope)
    answer = {
        "same_list": notes[0] is headers,
        "count": [notes[1], len(headers)],
        # a scan's length is the noted one up to the inline limit (None above it)
        "length": [inline_body_length(scope), length],
        "noted_length": notes[2],
        "accept": [None if notes[3] is None else notes[3].decode(), accept and accept.decode()],
    }
    body = json.dumps(answer).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


BROWSER = (
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0\r\n"
    b"Accept: text/html,*/*;q=0.8\r\nAccept-Language: en-US,en;q=0.5\r\n"
    b"Cookie: a=b\r\nSec-Fetch-Mode: navigate\r\n"
)


@pytest.mark.parametrize(
    ("head", "body", "noted_length", "accept"),
    [
        (b"GET / HTTP/1.1\r\nHost: h\r\n", b"", -1, None),
        (b"GET / HTTP/1.1\r\nHost: h\r\n" + BROWSER, b"", -1, None),
        (b"GET / HTTP/1.1\r\nHost: h\r\nAccept-Encoding: gzip, br  \r\n", b"", -1, "gzip, br"),
        (
            b"GET / HTTP/1.1\r\nAccept-Encoding: gzip\r\nHost: h\r\n"
            + BROWSER
            + b"accept-encoding: br;q=0.5\r\n",
            b"",
            -1,
            "gzip,br;q=0.5",
        ),
        (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n", b"hello", 5, None),
        (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n", b"", 0, None),
        (
            b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n",
            b"5\r\nhello\r\n0\r\n\r\n",
            None,
            None,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 70000\r\n",
            b"x" * 70000,
            70000,
            None,
        ),
        (b"GET / HTTP/1.0\r\nAccept-Encoding: zstd\r\n", b"", -1, "zstd"),
    ],
    ids=[
        "host-alone",
        "browser",
        "accept-encoding",
        "accept-encoding-twice",
        "content-length",
        "content-length-zero",
        "chunked",
        "over-the-inline-limit",
        "http-1.0",
    ],
)
def test_the_servers_notes_say_what_a_scan_of_the_fields_finds(
    head: bytes, body: bytes, noted_length: int | None, accept: str | None
) -> None:
    app = WebServer(__name__)
    with served_by_aeros(_noting_app, app) as url:
        response = exchange(url, head + b"Connection: close\r\n\r\n" + body).responses[0]
    assert response.status == 200
    answer = json.loads(response.body)
    assert answer["same_list"] is True
    assert answer["count"][0] == answer["count"][1]
    assert answer["noted_length"] == noted_length
    assert answer["length"][0] == answer["length"][1]
    assert answer["accept"] == [accept, accept]


def _compressible_app() -> WebServer:
    app = WebServer(__name__, access_log=False)  # gzip by default

    @app.route("/page")
    async def page() -> Any:
        return {"rows": ["a compressible row of text"] * 200}

    return app


class _ReplacingFront:
    """A user layer that hands on a new list of as many fields, Accept-Encoding's value
    ``identity``."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = [
                (name, b"identity" if name == b"accept-encoding" else value)
                for name, value in scope["headers"]
            ]
            scope = {**scope, "headers": headers}
        await self.app(scope, receive, send)


class _AppendingFront:
    """A user layer that adds ``Accept-Encoding: gzip`` to the server's own list, in place."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope["headers"].append((b"accept-encoding", b"gzip"))
        await self.app(scope, receive, send)


class _RewritingFront:
    """A user layer that rewrites Accept-Encoding to ``identity`` in the server's own list, in
    place: the same list, as many fields."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = scope["headers"]
            for index, (name, _) in enumerate(headers):
                if name == b"accept-encoding":
                    headers[index] = (name, b"identity")
        await self.app(scope, receive, send)


@pytest.mark.parametrize(
    ("front", "sent", "coding"),
    [
        (None, b"Accept-Encoding: gzip\r\n" + BROWSER, "gzip"),
        (None, BROWSER, None),
        (_ReplacingFront, b"Accept-Encoding: gzip\r\n" + BROWSER, None),
        (_AppendingFront, BROWSER, "gzip"),
        (_RewritingFront, b"Accept-Encoding: gzip\r\n" + BROWSER, None),
        ("asgi_app", b"Accept-Encoding: gzip\r\n" + BROWSER, None),
    ],
    ids=[
        "noted",
        "none-noted",
        "list-replaced-in-front",
        "field-appended-in-front",
        "field-rewritten-in-place-in-front",
        "field-rewritten-in-place-by-a-replaced-asgi-app",
    ],
)
def test_compression_follows_the_fields_a_layer_in_front_changed(
    front: Any, sent: bytes, coding: str | None
) -> None:
    app = _compressible_app()
    if front == "asgi_app":
        app.asgi_app = _RewritingFront(app.asgi_app)  # type: ignore[method-assign]
    elif front is not None:
        app.add_middleware(front)
    expected = json.dumps({"rows": ["a compressible row of text"] * 200})
    with app.serve_in_thread(host="127.0.0.1", port=0, timeout=10.0) as url:
        head = b"GET /page HTTP/1.1\r\nHost: h\r\n" + sent + b"Connection: close\r\n\r\n"
        response = exchange(url, head).responses[0]
    assert response.status == 200
    assert response.header("content-encoding") == coding
    body = gzip.decompress(response.body) if coding == "gzip" else response.body
    assert json.loads(body) == json.loads(expected)
