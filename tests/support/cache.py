"""Helpers for the response-cache tests: stores for every backend, a raw ASGI driver."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from quart import Response as QuartResponse
from quart import request

from aeros import FilesystemCache, RedisCache, SimpleCache, TieredCache, WebServer
from aeros.errors import StoreError
from tests.support.asgi import drive

BACKENDS = ("memory", "filesystem", "redis", "tiered")


class FakeClock:
    """A clock that moves only when a test says so: expiry tests advance it instead of
    sleeping. Starts at the real wall-clock time (file times stay plausible)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``."""
        self.now += seconds


def make_store(kind: str, tmp_path: Path, request: Any, **options: Any) -> Any:
    """A fresh store of ``kind``; for redis (and tiered: a SimpleCache in front of Redis) the
    session server is started and flushed."""
    if kind == "memory":
        return SimpleCache(**options)
    if kind == "filesystem":
        return FilesystemCache(tmp_path / "cache", **options)
    redis_server = request.getfixturevalue("redis")
    # behaviour tests, not timeout tests: a busy CI machine can take longer than the 0.1 s
    # default to answer, which would serve a request uncached and fail the test
    options.setdefault("socket_timeout", 1.0)
    if kind == "tiered":
        return TieredCache(local=SimpleCache(), shared=RedisCache(url=redis_server.url, **options))
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


class DictStore:
    """A user's own store: the five protocol methods over a dict, no optional capability.

    ``calls`` counts the calls of each method the cache layer made.
    """

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.calls: Counter[str] = Counter()

    async def get(self, key: str) -> bytes | None:
        self.calls["get"] += 1
        return self.data.get(key)

    def get_nowait(self, key: str) -> bytes | None:
        self.calls["get_nowait"] += 1
        return self.data.get(key)

    async def set(self, key: str, value: bytes, *, ttl: float | None) -> None:
        self.calls["set"] += 1
        self.data[key] = value

    async def delete(self, key: str) -> None:
        self.data.pop(key, None)

    async def delete_group(self, group: str) -> int:
        self.calls["delete_group"] += 1
        return self._drop([key for key in self.data if key[: key.rfind(":") + 1] == group])

    async def delete_prefix(self, prefix: str) -> int:
        self.calls["delete_prefix"] += 1
        return self._drop([key for key in self.data if key.startswith(prefix)])

    def _drop(self, keys: list[str]) -> int:
        for key in keys:
            del self.data[key]
        return len(keys)

    async def clear(self) -> None:
        self.calls["clear"] += 1
        self.data.clear()

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


async def call(app: Any, scope: dict[str, Any]) -> Response:
    """Drive one request through an ASGI app in-process and collect what it sends."""
    response = Response()
    for message in await drive(app, scope):
        if message["type"] == "http.response.start":
            response.status = message["status"]
            response.headers = list(message.get("headers") or [])
        elif message["type"] == "http.response.body":
            response.chunks.append(message.get("body", b""))
    return response


BIG = "cacheable text " * 400  # 6 KB, compressible
LiveServer = Callable[[WebServer], AbstractContextManager[str]]


class Site:
    """A WebServer with cached routes, counting view calls and requests that enter Quart."""

    def __init__(self, store: Any, *, fake_clock: bool = False, **options: Any) -> None:
        self.views: Counter[str] = Counter()
        self.entered = 0
        self.app = app = WebServer(__name__, access_log=False, cache=store, **options)
        self.clock = FakeClock()
        """The cache's clock when ``fake_clock`` is true (else the real one is used)."""
        if fake_clock:  # before the first request builds the cache layer
            app.response_cache.clock = self.clock

        @app.before_request
        async def count_entries() -> None:
            self.entered += 1

        @app.route("/")
        @app.route("/page/<path:path>")
        @app.cache()
        async def page(path: str = "") -> str:
            self.views["page"] += 1
            return f"page {path} {self.views['page']}"

        @app.route("/q")
        @app.cache(timeout=30)
        async def query() -> str:
            self.views["q"] += 1
            return f"{sorted(request.args.items(multi=True))} {self.views['q']}"

        @app.route("/noq")
        @app.cache(timeout=30, query_string=False)
        async def no_query() -> str:
            self.views["noq"] += 1
            return f"noq {self.views['noq']}"

        @app.route("/big")
        @app.cache(timeout=30)
        async def big() -> str:
            self.views["big"] += 1
            return BIG

        @app.route("/header/<name>")
        @app.cache(timeout=30)
        async def with_header(name: str) -> QuartResponse:
            self.views[name] += 1
            headers = {
                "cookie": {"Set-Cookie": "session=abc"},
                "private": {"Cache-Control": "private, max-age=60"},
                "no-store": {"Cache-Control": "no-store"},
                "no-cache": {"Cache-Control": "no-cache"},
                "vary-star": {"Vary": "*"},
                "vary-other": {"Vary": "Accept-Language"},
                "public": {"Cache-Control": "public, max-age=60"},
            }[name]
            return QuartResponse(f"{name} {self.views[name]}", headers=headers)

        @app.route("/status/<int:code>")
        @app.cache(timeout=30)
        async def status(code: int) -> tuple[str, int]:
            self.views[f"status{code}"] += 1
            return f"status {self.views[f'status{code}']}", code

        @app.route("/status-404-ok/<int:code>")
        @app.cache(timeout=30, statuses=(200, 404))
        async def status_ok(code: int) -> tuple[str, int]:
            self.views[f"ok{code}"] += 1
            return f"ok {self.views[f'ok{code}']}", code

        @app.route("/stream")
        @app.cache(timeout=30)
        async def stream() -> QuartResponse:
            self.views["stream"] += 1
            n = self.views["stream"]

            async def chunks() -> AsyncIterator[bytes]:
                for i in range(3):
                    yield f"chunk{i}-{n};".encode()

            return QuartResponse(chunks(), mimetype="text/plain")

        @app.route("/sse")
        @app.cache(timeout=30)
        async def sse() -> QuartResponse:
            self.views["sse"] += 1
            return QuartResponse(f"data: {self.views['sse']}\n\n", mimetype="text/event-stream")

        @app.route("/by-cookie")
        @app.cache(timeout=30, vary=["Cookie"])
        async def by_cookie() -> str:
            self.views["by-cookie"] += 1
            return f"cookie={request.headers.get('cookie')} {self.views['by-cookie']}"

        @app.route("/by-lang")
        @app.cache(timeout=30, vary=["Accept-Language"])
        async def by_lang() -> QuartResponse:
            self.views["by-lang"] += 1
            lang = request.headers.get("accept-language")
            return QuartResponse(
                f"lang={lang} {self.views['by-lang']}", headers={"Vary": "Accept-Language"}
            )

        @app.route("/unless")
        @app.cache(timeout=30, unless=lambda scope: b"fresh" in scope["query_string"])
        async def unless() -> str:
            self.views["unless"] += 1
            return f"unless {self.views['unless']}"

        @app.route("/slow")
        @app.cache(timeout=30)
        async def slow() -> str:
            self.views["slow"] += 1
            await asyncio.sleep(0.3)
            return f"slow {self.views['slow']}"

        @app.route("/short")
        @app.cache(timeout=30)
        async def short() -> str:
            self.views["short"] += 1
            return f"short {self.views['short']}"

        @app.route("/swr")
        @app.cache(timeout=30, stale_while_revalidate=60)
        async def swr() -> str:
            self.views["swr"] += 1
            return f"swr {self.views['swr']}"

        @app.route("/post", methods=["GET", "POST"])
        @app.cache(timeout=30)
        async def post() -> str:
            self.views["post"] += 1
            return f"post {self.views['post']}"


class Records(logging.Handler):
    """Collects the records of one logger (run_server may stop aeros loggers propagating)."""

    def __init__(self, name: str) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []
        self.logger = logging.getLogger(name)

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def __enter__(self) -> Records:
        self.logger.addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        self.logger.removeHandler(self)
