"""The compression layer alone, driven by raw ASGI: chunk boundaries, flushes, headers."""

from __future__ import annotations

import zlib
from typing import Any

import pytest

from aeros import Br, ConfigurationError, Gzip, Zstd
from aeros.compression.headers import encoded_headers, is_compressible
from aeros.compression.layer import CompressionMiddleware
from aeros.headers import add_vary
from aeros.types import SKIP_COMPRESSION
from tests.support.asgi import drive
from tests.support.compression import (
    Message,
    StreamDecoder,
    body_of,
    decode,
    scope,
    scripted,
    start_headers,
)

JSON = b'{"data": "' + b"abcdefghij" * 200 + b'"}'  # 2 KB, compressible
CT_JSON = (b"content-type", b"application/json")
GZIP_REQ = [(b"accept-encoding", b"gzip")]
GZIP_ONLY = (Gzip(),)


def length(body: bytes) -> tuple[bytes, bytes]:
    return (b"content-length", str(len(body)).encode())


async def run(
    inner: Any, *, method: str = "GET", req: Any = GZIP_REQ, codecs: Any = GZIP_ONLY
) -> list[Message]:
    return await drive(CompressionMiddleware(inner, codecs), scope(method, req))


async def test_layer_encodes_whole_body_with_exact_length() -> None:
    """Quart's shape (body, then empty end): one encoded chunk, exact Content-Length."""
    sent = await run(scripted(200, [CT_JSON, length(JSON)], [JSON, b""]))
    headers = start_headers(sent)
    assert headers[b"content-encoding"] == b"gzip"
    assert headers[b"vary"] == b"accept-encoding"
    assert int(headers[b"content-length"]) == len(body_of(sent))
    assert decode("gzip", body_of(sent)) == JSON


async def test_layer_buffers_known_length_split_body() -> None:
    """A Content-Length body arriving in pieces is encoded once with the exact length."""
    parts = [JSON[:700], JSON[700:1500], JSON[1500:]]
    sent = await run(scripted(200, [CT_JSON, length(JSON)], [*parts, b""]))
    headers = start_headers(sent)
    assert int(headers[b"content-length"]) == len(body_of(sent))
    assert decode("gzip", body_of(sent)) == JSON


@pytest.mark.parametrize("codec", [Gzip(), Br(), Zstd()], ids=lambda c: c.name)
async def test_layer_streams_and_flushes_every_chunk(codec: Any) -> None:
    """A stream (no Content-Length) is encoded as it goes: each chunk decodable on arrival."""
    chunks = [b"data: %d %s\n\n" % (i, b"x" * 300) for i in range(4)]
    sent: list[Message] = []
    decoder = StreamDecoder(codec.name)
    seen_after: list[bytes] = []

    async def between(index: int) -> None:
        # what a client could decode right now, before the app sends the next chunk
        seen_after.append(decoder.feed(body_of(sent)))
        sent.clear()

    inner = scripted(200, [(b"content-type", b"text/event-stream")], chunks, between=between)
    layer = CompressionMiddleware(inner, (codec,))
    await drive(layer, scope("GET", [(b"accept-encoding", codec.name.encode())]), sent=sent)
    assert seen_after[0].endswith(chunks[0])
    assert b"".join(seen_after) == b"".join(chunks[:-1])


async def test_layer_stream_headers() -> None:
    """A stream loses Content-Length, gets Content-Encoding, Vary, and a weak ETag."""
    headers_in = [(b"content-type", b"text/html"), (b"etag", b'"v1"'), (b"accept-ranges", b"bytes")]
    sent = await run(scripted(200, headers_in, [b"<p>" * 300, b"<p>" * 300, b""]))
    headers = start_headers(sent)
    assert b"content-length" not in headers
    assert b"accept-ranges" not in headers
    assert headers[b"etag"] == b'W/"v1"'
    assert headers[b"content-encoding"] == b"gzip"
    assert decode("gzip", body_of(sent)) == b"<p>" * 600


async def test_layer_holds_start_until_first_body() -> None:
    """http.response.start is not forwarded before the first body chunk decides."""
    forwarded: list[Message] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [CT_JSON]})
        assert forwarded == []
        await send({"type": "http.response.body", "body": JSON, "more_body": False})

    await drive(CompressionMiddleware(inner, (Gzip(),)), scope("GET", GZIP_REQ), sent=forwarded)
    assert [m["type"] for m in forwarded] == ["http.response.start", "http.response.body"]


async def test_layer_small_body_identity_with_vary() -> None:
    """Under min_size: identity body, Vary still set (a larger one would be encoded)."""
    body = b'{"ok": true}'
    sent = await run(scripted(200, [CT_JSON, length(body)], [body, b""]))
    headers = start_headers(sent)
    assert b"content-encoding" not in headers
    assert headers[b"vary"] == b"accept-encoding"
    assert body_of(sent) == body


async def test_layer_no_accept_encoding_identity_with_vary() -> None:
    """A client that accepts no coding gets identity with Vary: Accept-Encoding."""
    sent = await run(scripted(200, [CT_JSON, length(JSON)], [JSON, b""]), req=[])
    headers = start_headers(sent)
    assert b"content-encoding" not in headers
    assert headers[b"vary"] == b"accept-encoding"
    assert body_of(sent) == JSON


@pytest.mark.parametrize(
    ("body", "req", "encoding"),
    [
        pytest.param(JSON, GZIP_REQ, b"gzip", id="encoded"),
        pytest.param(b'{"ok": true}', GZIP_REQ, None, id="small-vary"),
        pytest.param(JSON, [(b"accept-encoding", b"identity")], None, id="not-accepted"),
    ],
)
async def test_layer_reads_headers_given_as_an_iterator_once(
    body: bytes, req: Any, encoding: bytes | None
) -> None:
    """ASGI lets ``headers`` be any iterable: given as a generator, every field the app sent
    reaches the client, whatever the layer decides."""

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        fields = [CT_JSON, (b"x-own", b"1"), length(body)]
        await send({"type": "http.response.start", "status": 200, "headers": iter(fields)})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    sent = await run(inner, req=req)
    headers = start_headers(sent)
    assert headers[b"content-type"] == b"application/json"
    assert headers[b"x-own"] == b"1"
    assert headers.get(b"content-encoding") == encoding
    assert int(headers[b"content-length"]) == len(body_of(sent))


@pytest.mark.parametrize(
    ("status", "headers"),
    [
        pytest.param(200, [(b"content-type", b"image/png")], id="not-text"),
        pytest.param(200, [CT_JSON, (b"content-encoding", b"br")], id="already-encoded"),
        pytest.param(204, [CT_JSON], id="204"),
        pytest.param(304, [CT_JSON], id="304"),
        pytest.param(206, [CT_JSON], id="206"),
        pytest.param(200, [], id="no-content-type"),
    ],
)
async def test_layer_leaves_response_untouched(status: int, headers: Any) -> None:
    """Never re-encode; 204/206/304 and non-text types pass byte for byte, no Vary."""
    headers = [*headers, length(JSON)]
    sent = await run(scripted(status, headers, [JSON, b""]))
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert start["headers"] == headers
    assert body_of(sent) == JSON


async def test_layer_replaces_identity_content_encoding() -> None:
    """'Content-Encoding: identity' is not an encoding: the body is encoded, one header left."""
    sent = await run(scripted(200, [CT_JSON, (b"content-encoding", b"identity")], [JSON]))
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert [v for n, v in start["headers"] if n == b"content-encoding"] == [b"gzip"]
    assert decode("gzip", body_of(sent)) == JSON


async def test_layer_head_gets_get_headers_without_body() -> None:
    """HEAD: Content-Encoding and Vary as for GET, no Content-Length, no identity bytes."""
    sent = await run(scripted(200, [CT_JSON, length(JSON)], [JSON, b""]), method="HEAD")
    headers = start_headers(sent)
    assert headers[b"content-encoding"] == b"gzip"
    assert headers[b"vary"] == b"accept-encoding"
    assert b"content-length" not in headers
    assert body_of(sent) == b""


async def test_layer_skip_compression_scope_key() -> None:
    """An outer layer setting SKIP_COMPRESSION gets the response untouched."""
    headers = [CT_JSON, length(JSON)]
    request = scope("GET", GZIP_REQ)
    request[SKIP_COMPRESSION] = True
    sent = await drive(CompressionMiddleware(scripted(200, headers, [JSON]), (Gzip(),)), request)
    assert start_headers(sent) == dict(headers)
    assert body_of(sent) == JSON


async def test_layer_joins_repeated_accept_encoding_lines() -> None:
    """Two Accept-Encoding lines are one list: gzip;q=0 in the first still refuses gzip."""
    req = [(b"accept-encoding", b"gzip;q=0"), (b"accept-encoding", b"br")]
    sent = await run(scripted(200, [CT_JSON], [JSON]), req=req, codecs=(Gzip(), Br()))
    assert start_headers(sent)[b"content-encoding"] == b"br"


async def test_layer_passes_websocket_and_lifespan() -> None:
    """Non-HTTP scopes go straight through."""
    called: list[str] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        called.append(scope["type"])

    layer = CompressionMiddleware(inner, (Gzip(),))
    await layer({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    assert called == ["lifespan"]


def test_layer_needs_a_codec() -> None:
    """An empty codec list is a configuration error (leave the layer out instead)."""
    with pytest.raises(ConfigurationError, match="at least one codec"):
        CompressionMiddleware(scripted(200, [], []), ())


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param([], b"accept-encoding", id="new"),
        pytest.param([(b"vary", b"Origin")], b"Origin, accept-encoding", id="merged"),
        pytest.param([(b"vary", b"Accept-Encoding")], b"Accept-Encoding", id="present"),
        pytest.param([(b"vary", b"*")], b"*", id="star"),
    ],
)
def test_add_vary_merges_without_mutating(headers: Any, expected: bytes) -> None:
    """add_vary merges into one Vary header and never mutates its input."""
    before = list(headers)
    out = add_vary(headers, b"accept-encoding")
    assert headers == before
    assert dict(out)[b"vary"] == expected
    assert sum(1 for name, _ in out if name == b"vary") == 1


async def test_encoded_headers_match_the_layer() -> None:
    """encoded_headers (what the response cache sends) equals the layer's own start headers."""
    headers = [CT_JSON, length(JSON), (b"etag", b'"strong"'), (b"accept-ranges", b"bytes")]
    sent = await run(scripted(200, headers, [JSON]))
    body = body_of(sent)
    assert zlib.decompress(body, 47) == JSON
    assert sent[0]["headers"] == encoded_headers(headers, Gzip(), len(body))
    assert start_headers(sent)[b"etag"] == b'W/"strong"'
    assert b"accept-ranges" not in start_headers(sent)


@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [
        pytest.param(200, [CT_JSON], True, id="json"),
        pytest.param(200, [(b"content-type", b"image/png")], False, id="png"),
        pytest.param(200, [], False, id="no-type"),
        pytest.param(304, [CT_JSON], False, id="304"),
        pytest.param(101, [CT_JSON], False, id="1xx"),
        pytest.param(200, [CT_JSON, (b"content-encoding", b"br")], False, id="encoded"),
        pytest.param(200, [CT_JSON, (b"content-encoding", b"identity")], True, id="identity"),
    ],
)
def test_is_compressible_follows_the_layer_rules(
    status: int, headers: list[tuple[bytes, bytes]], expected: bool
) -> None:
    """is_compressible (the cache's Vary decision) says what the layer would encode."""
    assert is_compressible(status, headers, (Gzip(),)) is expected


async def test_layer_streams_large_known_length(monkeypatch: pytest.MonkeyPatch) -> None:
    """A body longer than BUFFER_LIMIT is streamed (chunked), not collected in memory."""
    monkeypatch.setattr("aeros.compression.layer.BUFFER_LIMIT", 1000)
    parts = [JSON[:600], JSON[600:]]
    sent = await run(scripted(200, [CT_JSON, length(JSON)], [*parts, b""]))
    headers = start_headers(sent)
    assert b"content-length" not in headers
    assert headers[b"content-encoding"] == b"gzip"
    assert len([m for m in sent if m["type"] == "http.response.body" and m["body"]]) >= 2
    assert decode("gzip", body_of(sent)) == JSON


async def test_layer_other_message_types_pass_identity() -> None:
    """A non-body message where a body was expected (pathsend) gets the identity response."""

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [CT_JSON]})
        await send({"type": "http.response.pathsend", "path": "/srv/static/x.json"})

    sent = await drive(CompressionMiddleware(inner, GZIP_ONLY), scope("GET", GZIP_REQ))
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.pathsend"]
    assert start_headers(sent) == {
        b"content-type": b"application/json",
        b"vary": b"accept-encoding",
    }
