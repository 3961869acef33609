"""Helpers for the compression, CORS and Cache-Control tests: a raw ASGI driver and decoders.

The driver calls one layer with a scripted inner app and records every message it sends, so
tests can see chunk boundaries and when each chunk left (an HTTP client cannot).
"""

from __future__ import annotations

import zlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import brotli
import zstandard

from tests.support.asgi import Message, http_scope

Headers = list[tuple[bytes, bytes]]


def scope(method: str = "GET", headers: Sequence[tuple[bytes, bytes]] = ()) -> dict[str, Any]:
    """An HTTP scope for ``/`` as a server builds it (lower-case header names, a Host)."""
    return http_scope("/", method=method, headers=[(b"host", b"testserver"), *headers])


def scripted(
    status: int,
    headers: Headers,
    chunks: Sequence[bytes],
    *,
    between: Callable[[int], Awaitable[None]] | None = None,
) -> Callable[..., Awaitable[None]]:
    """An inner ASGI app that sends ``chunks`` (the last with ``more_body`` false).

    ``between(i)`` is awaited after chunk ``i`` is sent, so a test can look at what the layer
    has forwarded so far.
    """

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": status, "headers": list(headers)})
        for index, chunk in enumerate(chunks):
            last = index == len(chunks) - 1
            await send({"type": "http.response.body", "body": chunk, "more_body": not last})
            if between is not None and not last:
                await between(index)
        if not chunks:
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    return app


def start_headers(sent: Sequence[Message]) -> dict[bytes, bytes]:
    """The response headers of the recorded ``http.response.start`` (one value per name)."""
    start = next(m for m in sent if m["type"] == "http.response.start")
    return {name: value for name, value in start["headers"]}


def body_of(sent: Sequence[Message]) -> bytes:
    return b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


class StreamDecoder:
    """Incremental decoder for one coding: what a client can decode from the bytes so far."""

    def __init__(self, coding: str) -> None:
        self.coding = coding
        if coding == "gzip":
            self._obj: Any = zlib.decompressobj(47)
        elif coding == "br":
            self._obj = brotli.Decompressor()
        elif coding == "zstd":
            self._obj = zstandard.ZstdDecompressor().decompressobj()
        else:
            raise ValueError(coding)

    def feed(self, data: bytes) -> bytes:
        if self.coding == "br":
            return bytes(self._obj.process(data))
        return bytes(self._obj.decompress(data))


def decode(coding: str, data: bytes) -> bytes:
    """Decode a whole body in ``coding`` (gzip, br, zstd)."""
    if coding == "gzip":
        return zlib.decompress(data, 47)
    if coding == "br":
        return bytes(brotli.decompress(data))
    if coding == "zstd":
        return bytes(zstandard.ZstdDecompressor().decompressobj().decompress(data))
    raise ValueError(coding)
