"""Two workers, each with its own SimpleCache, serving a value kept in a file.

``python memory_cache_app.py DATA_FILE``: ``GET /thing`` answers ``<pid> <value>`` (cached for
300 s); ``PUT /thing`` writes the value (a write invalidation); ``POST /admin/<action>`` clears or
purges the cache through the worker that gets the request (``clear``, ``clear-sync``,
``purge-path``, ``purge-endpoint``, ``purge-tag``). A line ``clear`` on stdin makes the
supervisor's process call ``app.clear_cache()`` and print ``CLEARED``. stdout: ``URL <base url>``
once serving.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

from quart import request

from aeros import SimpleCache, WebServer

DATA = Path(sys.argv[1])

app = WebServer(
    __name__,
    port=0,
    workers=2,
    cache=SimpleCache(timeout=300),
    access_log=False,
    log_level="warning",
)


def say(line: str) -> None:
    os.write(1, (line + "\n").encode())


@app.route("/thing", methods=["GET", "PUT"])
@app.cache(timeout=300, tags=["things"])
async def thing() -> str:
    if request.method == "PUT":
        DATA.write_text((await request.get_data()).decode())
        return "stored"
    return f"{os.getpid()} {DATA.read_text()}"


@app.post("/admin/clear")
async def clear() -> str:
    await app.response_cache.clear()
    return "cleared"


@app.post("/admin/clear-sync")
def clear_sync() -> str:  # a sync view: clear_cache() runs its own loop in Quart's thread pool
    app.clear_cache()
    return "cleared"


@app.post("/admin/purge-path")
async def purge_path() -> str:
    return str(await app.response_cache.purge("/thing"))


@app.post("/admin/purge-tag")
async def purge_tag() -> str:
    return str(await app.response_cache.purge(tag="things"))


@app.post("/admin/purge-endpoint")
async def purge_endpoint() -> str:
    return str(await app.response_cache.purge(endpoint="thing"))


def clear_from_stdin() -> None:
    for line in sys.stdin:
        if line.strip() == "clear":
            app.clear_cache()
            say("CLEARED")


def started(url: str) -> None:
    # started only now: the workers' fork helper exists, so this thread is never forked
    threading.Thread(target=clear_from_stdin, daemon=True).start()
    say(f"URL {url}")


if __name__ == "__main__":
    app.run_server(on_started=started)
