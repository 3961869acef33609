"""The compression layer leaves whole bodies to aeros' lean connection (``COMPRESSION``): the
same status, headers and bytes as its ``send`` wrapper gives, on every path a response takes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from quart import Response, jsonify, request
from quart.asgi import ASGIHTTPConnection

from aeros import WebServer
from aeros.compression.layer import CompressionMiddleware
from aeros.types import COMPRESSION
from tests.compression.test_compression import ITEMS
from tests.compression.test_compression import build as build_routes
from tests.support.compression import decode


def build(*, lean: bool) -> WebServer:
    app = build_routes(WebServer(__name__, access_log=False))  # /json, /small, /png, ...
    if not lean:  # Quart's own connection: the layer wraps send, as on any other app
        app.asgi_http_class = ASGIHTTPConnection

    @app.route("/stream")
    async def stream() -> Response:
        async def parts() -> AsyncIterator[bytes]:
            for index in range(3):
                yield b"line %d " % index * 200

        return Response(parts(), content_type="text/plain")

    @app.route("/left-to-connection")
    async def left() -> str:
        return str(COMPRESSION in request.scope)

    @app.route("/upload", methods=["POST"])
    async def upload() -> Response:
        return jsonify({"size": len(await request.get_data()), **ITEMS})

    return app


def _layer(app: WebServer) -> Any:
    layer = app.build_stack()
    while not isinstance(layer, CompressionMiddleware):
        layer = getattr(layer, "app", None) or layer.__self__  # a layer's bound __call__
    return layer


def test_the_lean_connection_takes_the_work_and_any_other_leaves_it() -> None:
    assert _layer(build(lean=True)).lean is True
    assert _layer(build(lean=False)).lean is False


@pytest.fixture(scope="module")
def urls() -> Iterator[dict[str, str]]:
    lean, wrapped = build(lean=True), build(lean=False)
    with lean.serve_in_thread(port=0) as lean_url, wrapped.serve_in_thread(port=0) as other:
        yield {"lean": lean_url, "wrapped": other}


def _get(url: str, accept: str | None, method: str = "GET", **options: Any) -> Any:
    with httpx.Client(timeout=10) as client:
        if accept is None:
            del client.headers["accept-encoding"]
        headers = {} if accept is None else {"accept-encoding": accept}
        with client.stream(method, url, headers=headers, **options) as response:
            raw = b"".join(response.iter_raw())
    kept = {name: value for name, value in response.headers.items() if name != "date"}
    return response.status_code, kept, raw


@pytest.mark.parametrize("path", ["/json", "/small", "/png", "/stream", "/missing"])
@pytest.mark.parametrize("accept", ["gzip", "br", "gzip;q=0, identity", None])
def test_same_answers_with_and_without_the_send_wrapper(
    urls: dict[str, str], path: str, accept: str | None
) -> None:
    lean = _get(urls["lean"] + path, accept)
    wrapped = _get(urls["wrapped"] + path, accept)
    assert lean == wrapped
    _, headers, raw = lean
    if path == "/json" and accept == "gzip":  # br is not a default codec
        assert headers["content-encoding"] == accept
        assert int(headers["content-length"]) == len(raw)
        assert httpx.Response(200, content=decode(accept, raw)).json() == ITEMS


def test_whole_bodies_are_left_to_the_connection_but_head_is_not(urls: dict[str, str]) -> None:
    assert _get(urls["lean"] + "/left-to-connection", "gzip")[2] == b"True"
    assert _get(urls["wrapped"] + "/left-to-connection", "gzip")[2] == b"False"
    lean_head = _get(urls["lean"] + "/json", "gzip", method="HEAD")
    assert lean_head == _get(urls["wrapped"] + "/json", "gzip", method="HEAD")
    assert lean_head[1]["content-encoding"] == "gzip"


def test_a_chunked_upload_takes_quarts_path_and_is_still_encoded(urls: dict[str, str]) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: Transfer-Encoding: chunked
        yield b"a" * 100
        yield b"b" * 100

    status, headers, raw = _get(urls["lean"] + "/upload", "gzip", method="POST", content=chunks())
    assert status == 200
    assert headers["content-encoding"] == "gzip"
    assert httpx.Response(200, content=decode("gzip", raw)).json() == {"size": 200, **ITEMS}


async def test_codecs_given_as_an_iterator_still_encode_on_the_lean_path() -> None:
    """``codecs`` may be any iterable (read once): each codec gets its whole-body encoder."""
    from aeros.compression.codecs import Gzip

    body = b'{"items": "' + b"x" * 4000 + b'"}'

    async def connection(scope: Any, receive: Any, send: Any) -> None:  # as the lean one does
        headers = [(b"content-type", b"application/json")]
        headers, data = scope[COMPRESSION].whole(200, headers, body)
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": data, "more_body": False})

    layer = CompressionMiddleware(connection, iter([Gzip()]), lean=True)
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "headers": [(b"accept-encoding", b"gzip")]}
    await layer(scope, None, send)
    headers = dict(sent[0]["headers"])
    assert headers[b"content-encoding"] == b"gzip"
    assert decode("gzip", sent[1]["body"]) == body


def _by_the_rules(encoder: Any, status: int, headers: list[Any], body: bytes) -> Any:
    """What ``whole`` answers, worked out from plan() and the module's helpers every time."""
    from aeros.compression.rules import AS_IS, VARY, encode_whole, plan, with_vary

    what, _, vary = plan(status, headers, encoder.codec, encoder.codecs)
    if what == AS_IS:
        return headers, body
    if what == VARY or encoder.codec is None:
        return with_vary(headers, vary), body
    return encode_whole(encoder.codec, headers, body, vary)


@pytest.mark.parametrize("status", [101, 200, 201, 204, 206, 304, 404, 500])
@pytest.mark.parametrize(
    "first",
    [
        (b"content-type", b"application/json"),
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-type", b"image/png"),
        (b"content-encoding", b"gzip"),
        (b"content-encoding", b"identity"),
        (b"vary", b"Cookie"),
        (b"x-other", b"1"),
    ],
)
@pytest.mark.parametrize("size", [10, 5000])
def test_a_remembered_two_field_head_gets_what_the_rules_give(
    status: int, first: tuple[bytes, bytes], size: int
) -> None:
    """``whole`` remembers its answer for a head of one field and a Content-Length (what
    LeanResponse builds) by that field: the first and the remembered answer are the rules'."""
    layer = _layer(build(lean=True))
    body = b'{"k": "%s"}' % (b"v" * size)
    head = [first, (b"content-length", str(len(body)).encode())]
    for encoder in (layer._identity, *layer._encoders.values()):
        expected = _by_the_rules(encoder, status, list(head), body)
        for _ in range(2):  # the second answer comes from what was remembered
            assert encoder.whole(status, list(head), body) == expected


def test_a_two_field_head_of_lists_takes_the_rules() -> None:
    """A head whose fields are lists (unhashable: nothing to remember them by) is decided by
    the rules each time instead of failing."""
    layer = _layer(build(lean=True))
    body = b'{"k": 1}'
    head: list[Any] = [[b"content-type", b"application/json"], [b"content-length", b"8"]]
    for encoder in (layer._identity, *layer._encoders.values()):
        assert encoder.whole(200, head, body) == _by_the_rules(encoder, 200, head, body)
