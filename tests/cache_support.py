"""Helpers for the response-cache tests: stores for every backend, a raw ASGI driver."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aeros import FilesystemCache, RedisCache, SimpleCache
from aeros.errors import StoreError

BACKENDS = ("memory", "filesystem", "redis")


def make_store(kind: str, tmp_path: Path, request: Any, **options: Any) -> Any:
    """A fresh store of ``kind``; for redis the session server is started and flushed."""
    if kind == "memory":
        return SimpleCache(**options)
    if kind == "filesystem":
        return FilesystemCache(tmp_path / "cache", **options)
    redis_server = request.getfixturevalue("redis")
    return RedisCache(url=redis_server.url, **options)


class FailingStore:
    """A store whose every call raises StoreError (a backend that is down)."""

    timeout = 60.0

    def __init__(self) -> None:
        self.calls = 0

    async def get(self, key: str) -> bytes | None:
        self.calls += 1
        raise StoreError("down")

    async def set(self, key: str, value: bytes, *, ttl: float | None) -> None:
        self.calls += 1
        raise StoreError("down")

    async def delete(self, key: str) -> None:
        raise StoreError("down")

    async def clear(self) -> None:
        raise StoreError("down")

    async def aclose(self) -> None:
        return None


class Response:
    """What an ASGI app sent for one request."""

    def __init__(self) -> None:
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None


def http_scope(
    path: str = "/",
    *,
    method: str = "GET",
    query: bytes = b"",
    headers: Sequence[tuple[bytes, bytes]] = ((b"host", b"testserver"),),
) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query,
        "headers": list(headers),
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "state": {},
        "extensions": {},
    }


async def call(app: Any, scope: dict[str, Any]) -> Response:
    """Drive one request through an ASGI app in-process and collect what it sends."""
    response = Response()
    sent = False
    disconnect = asyncio.Event()

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await disconnect.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            response.status = message["status"]
            response.headers = list(message.get("headers") or [])
        elif message["type"] == "http.response.body":
            response.chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                disconnect.set()

    await app(scope, receive, send)
    return response
