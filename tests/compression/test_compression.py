"""Compression end to end: a real server, httpx, curl --compressed, and the seed's example."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest
from quart import Response, jsonify

from aeros import Br, Compress, Gzip, WebServer, Zstd
from tests.support.compression import StreamDecoder, decode
from tests.support.net import free_port, require, wait_for_port

LiveServer = Callable[[WebServer], AbstractContextManager[str]]
ROOT = Path(__file__).resolve().parents[2]
ITEMS = {"items": [{"id": i, "name": f"item {i}", "tags": ["a", "b"]} for i in range(100)]}


def build(app: WebServer) -> WebServer:
    """Routes every test here uses."""

    @app.route("/json")
    async def big_json() -> Response:
        return jsonify(ITEMS)

    @app.route("/small")
    async def small_json() -> Response:
        return jsonify({"ok": True})

    @app.route("/png")
    async def png() -> Response:
        return Response(b"\x89PNG" + b"\x00" * 4000, content_type="image/png")

    @app.route("/html")
    async def html() -> str:
        return "<p>hello</p>" * 200

    @app.route("/etag")
    async def etag() -> Response:
        response = jsonify(ITEMS)
        response.set_etag("v1")
        return response

    return app


def raw_get(url: str, accept: str | None, method: str = "GET") -> tuple[httpx.Headers, bytes]:
    """GET without decoding: the headers and the bytes as they were on the wire."""
    headers = {} if accept is None else {"Accept-Encoding": accept}
    with httpx.Client(timeout=10) as client:
        if accept is None:
            del client.headers["accept-encoding"]
        with client.stream(method, url, headers=headers) as response:
            return response.headers, b"".join(response.iter_raw())


@pytest.fixture
def served(live_server: LiveServer) -> Iterator[str]:
    """The default app (compression not configured: gzip level 2, 500 bytes)."""
    with live_server(build(WebServer(__name__, access_log=False))) as url:
        yield url


def test_compression_default_gzip_on_the_wire(served: str) -> None:
    """By default a large JSON answer is gzip with exact Content-Length and Vary."""
    headers, raw = raw_get(served + "/json", "gzip")
    assert headers["content-encoding"] == "gzip"
    assert headers["vary"] == "accept-encoding"
    assert int(headers["content-length"]) == len(raw)
    assert httpx.Response(200, content=decode("gzip", raw)).json() == ITEMS


def test_compression_httpx_decodes_default(served: str) -> None:
    """httpx (Accept-Encoding: gzip, deflate, br, zstd) gets a body it decodes."""
    response = httpx.get(served + "/json", timeout=10)
    assert response.headers["content-encoding"] == "gzip"
    assert response.json() == ITEMS


@pytest.mark.parametrize(
    ("path", "accept"),
    [
        pytest.param("/small", "gzip", id="under-min-size"),
        pytest.param("/json", None, id="no-accept-encoding"),
        pytest.param("/json", "gzip;q=0, deflate", id="refused"),
        pytest.param("/json", "identity", id="identity"),
    ],
)
def test_compression_identity_still_varies(served: str, path: str, accept: str | None) -> None:
    """A compressible response sent unencoded still says Vary: Accept-Encoding."""
    headers, raw = raw_get(served + path, accept)
    assert "content-encoding" not in headers
    assert headers["vary"] == "accept-encoding"
    assert int(headers["content-length"]) == len(raw)


def test_compression_non_text_untouched(served: str) -> None:
    """An image is not compressed and gets no Vary."""
    headers, raw = raw_get(served + "/png", "gzip")
    assert "content-encoding" not in headers
    assert "vary" not in headers
    assert len(raw) == 4004


def test_compression_head_matches_get_headers(served: str) -> None:
    """HEAD gets the encoding headers a GET gets, and no body."""
    headers, raw = raw_get(served + "/json", "gzip", method="HEAD")
    assert headers["content-encoding"] == "gzip"
    assert headers["vary"] == "accept-encoding"
    assert raw == b""


def test_compression_strong_etag_becomes_weak(served: str) -> None:
    """An encoded body carries a weak ETag; the identity one keeps the strong ETag."""
    encoded, _ = raw_get(served + "/etag", "gzip")
    identity, _ = raw_get(served + "/etag", None)
    assert encoded["etag"] == 'W/"v1"'
    assert identity["etag"] == '"v1"'


@pytest.mark.parametrize("coding", ["br", "zstd", "gzip"])
def test_compression_br_zstd_gzip_decoded_by_client(live_server: LiveServer, coding: str) -> None:
    """With several codecs the client's choice is honoured; httpx and our decoder agree."""
    app = build(WebServer(__name__, access_log=False, compression=[Zstd(), Br(), Gzip()]))
    with live_server(app) as url:
        headers, raw = raw_get(url + "/json", coding)
        assert headers["content-encoding"] == coding
        assert httpx.Response(200, content=decode(coding, raw)).json() == ITEMS
        decoded = httpx.get(url + "/json", headers={"Accept-Encoding": coding}, timeout=10)
        assert decoded.json() == ITEMS
        preferred, _ = raw_get(url + "/json", "gzip, br, zstd")
        assert preferred["content-encoding"] == "zstd"  # server order breaks the tie


def test_compression_none_turns_it_off(live_server: LiveServer) -> None:
    """compression=None sends identity bodies without Vary."""
    with live_server(build(WebServer(__name__, access_log=False, compression=None))) as url:
        headers, raw = raw_get(url + "/json", "gzip")
    assert "content-encoding" not in headers
    assert "vary" not in headers
    assert httpx.Response(200, content=raw).json() == ITEMS


def test_compression_seed_config_after_construction(live_server: LiveServer) -> None:
    """app.config["COMPRESS_*"] + Compress(app) after WebServer() takes effect."""
    app = build(WebServer(__name__, access_log=False))
    app.config["COMPRESS_MIN_SIZE"] = 5
    app.config["COMPRESS_LEVEL"] = 2
    app.config["COMPRESS_MIMETYPES"] = ["text/plain", "application/json"]
    Compress(app)
    with live_server(app) as url:
        small, raw = raw_get(url + "/small", "gzip")
        html, _ = raw_get(url + "/html", "gzip")
    assert small["content-encoding"] == "gzip"  # 12 bytes >= COMPRESS_MIN_SIZE
    assert decode("gzip", raw) == b'{"ok":true}\n'
    assert "content-encoding" not in html  # text/html is not in COMPRESS_MIMETYPES


def test_compression_sse_stream_not_held_back(live_server: LiveServer) -> None:
    """Each server-sent event reaches the client, decodable, before the next is produced."""
    release = threading.Event()
    released: list[bool] = []
    app = WebServer(__name__, access_log=False)

    @app.route("/events")
    async def events() -> Response:
        async def stream():  # type: ignore[no-untyped-def]
            for i in range(3):
                yield f"data: event {i} {'x' * 200}\n\n".encode()
                deadline = time.monotonic() + 5
                while not release.is_set() and time.monotonic() < deadline:
                    await asyncio.sleep(0.01)
                released.append(release.is_set())  # False: the client never saw the event
                release.clear()

        return Response(stream(), content_type="text/event-stream")

    accept = {"Accept-Encoding": "gzip"}
    with (
        live_server(app) as url,
        httpx.Client(timeout=20) as client,
        client.stream("GET", url + "/events", headers=accept) as r,
    ):
        assert r.headers["content-encoding"] == "gzip"
        assert "content-length" not in r.headers
        decoder, text = StreamDecoder("gzip"), b""
        for chunk in r.iter_raw():
            before = text.count(b"\n\n")
            text += decoder.feed(chunk)
            if text.count(b"\n\n") > before:
                release.set()  # a whole event arrived while the server waits
    assert released == [True, True, True]
    assert [e.split(b" ")[2] for e in text.split(b"\n\n") if e] == [b"0", b"1", b"2"]


@pytest.mark.parametrize("codec", [Gzip(), Br(), Zstd()], ids=lambda c: c.name)
def test_compression_curl_compressed(live_server: LiveServer, codec: Any) -> None:
    """curl --compressed negotiates, receives and decodes each coding it was built with."""
    curl = shutil.which("curl")
    require(curl is not None, "curl is not installed (make test installs it)")
    assert curl is not None
    features = subprocess.run([curl, "--version"], capture_output=True, check=True).stdout
    built_with = {"gzip": b"libz", "br": b"brotli", "zstd": b"zstd"}[codec.name]
    require(built_with in features, f"this curl cannot decode {codec.name}")
    with live_server(build(WebServer(__name__, access_log=False, compression=codec))) as url:
        result = subprocess.run(
            [curl, "-sS", "--compressed", "-D", "-", url + "/json"],
            capture_output=True,
            timeout=20,
            check=True,
        )
    head, _, body = result.stdout.partition(b"\r\n\r\n")
    assert f"content-encoding: {codec.name}".encode() in head.lower()
    assert httpx.Response(200, content=body).json() == ITEMS


def test_compression_seed_example_runs() -> None:
    """examples/compression.py (the seed's snippet) serves compressed JSON."""
    port = free_port()
    env = {**os.environ, "AEROS_HOST": "127.0.0.1", "AEROS_PORT": str(port)}
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / "compression.py")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port("127.0.0.1", port, time.monotonic() + 20)
        headers, raw = raw_get(f"http://127.0.0.1:{port}/", "gzip")
        assert headers["content-encoding"] == "gzip"
        assert httpx.Response(200, content=decode("gzip", raw)).json()["response"] == "ok"
        page, _ = raw_get(f"http://127.0.0.1:{port}/page", "gzip")
        assert "content-encoding" not in page
    finally:
        process.terminate()
        process.wait(20)
