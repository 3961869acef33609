"""One instance of a fleet: 2 workers, a TieredCache over a shared Redis, a value in a file.

``python tiered_app.py REDIS_URL DATA_FILE CALLS_FILE``:

- ``GET /thing`` answers the value (cached 300 s, tagged ``things``);
- ``GET /slow/<n>`` sleeps 0.3 s, appends a line to CALLS_FILE (every view call of every worker
  and instance counts) and is cached 300 s;
- ``POST /admin/purge-tag`` purges the tag ``things``;
- ``GET /admin/local`` says how many entries the answering worker's local tier holds.

Every answer, hits included, has ``X-Worker: <pid>``. The local tiers keep values 60 s, so only
an invalidation message can explain a local tier dropping one sooner. stdout: ``URL <base url>``
once serving.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from aeros import RedisCache, SimpleCache, TieredCache, WebServer
from aeros.types import ASGIApp, Message, Receive, Scope, Send

REDIS_URL, DATA, CALLS = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])

app = WebServer(
    __name__,
    port=0,
    workers=2,
    cache=TieredCache(
        local=SimpleCache(), shared=RedisCache(url=REDIS_URL, socket_timeout=1.0), local_ttl=60
    ),
    cache_status=True,
    access_log=False,
    log_level="warning",
)


class WorkerHeader:
    """Outside the response cache: every answer, hits included, names the worker that sent it."""

    def __init__(self, inner: ASGIApp) -> None:
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_marked(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), (b"x-worker", str(os.getpid()).encode())]
                message = {**message, "headers": headers}
            await send(message)

        await self.inner(scope, receive, send_marked)


app.add_middleware(WorkerHeader)


@app.route("/thing")
@app.cache(timeout=300, tags=["things"])
async def thing() -> str:
    return DATA.read_text()


@app.route("/slow/<int:n>")
@app.cache(timeout=300)
async def slow(n: int) -> str:
    with CALLS.open("a") as calls:  # one short append: lines from every process stay whole
        calls.write(f"{os.getpid()} {n}\n")
    await asyncio.sleep(0.3)
    return f"slow {n}"


@app.route("/admin/local")
async def local_entries() -> str:
    """How many entries this worker's local tier holds."""
    return str(len(app.response_cache.store.local))


@app.post("/admin/purge-tag")
async def purge_tag() -> str:
    return str(await app.response_cache.purge(tag="things"))


if __name__ == "__main__":
    app.run_server(on_started=lambda url: os.write(1, f"URL {url}\n".encode()))
