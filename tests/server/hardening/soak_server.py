"""The soak test's server: a cached route over a byte-capped memory cache, in its own process."""

from __future__ import annotations

import os
import resource

from aeros import SimpleCache, WebServer, jsonify

CACHE_BYTES = 2 * 1024 * 1024  # far below what the key space would fill: eviction is exercised


def build() -> tuple[WebServer, SimpleCache]:
    cache = SimpleCache(timeout=30, threshold=1_000_000, max_bytes=CACHE_BYTES)
    app = WebServer(__name__, access_log=False, cache=cache)

    @app.route("/cached/<int:n>")
    @app.cache(timeout=30)
    async def cached(n: int) -> str:
        return f"item {n} " + "x" * 2000

    @app.route("/plain")
    async def plain() -> object:
        return jsonify({"ok": True, "items": list(range(20))})

    @app.route("/stats")
    async def stats() -> object:
        return jsonify(
            {
                "pid": os.getpid(),
                "cache_bytes": cache.size_bytes,
                "cache_max_bytes": cache.max_bytes,
                "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            }
        )

    return app, cache


if __name__ == "__main__":
    server, _ = build()
    server.run_server(host="127.0.0.1", port=0, on_started=lambda url: print(url, flush=True))
