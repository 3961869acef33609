"""The demo server ``make demo`` starts: a tour of aeros' batteries on a few routes.

    make demo                                  # or: python examples/demo.py
    curl -i http://127.0.0.1:8000/             # JSON, global headers, Server: aeros
    curl -i http://127.0.0.1:8000/items/7      # cached server-side for 30 s (access log: hit/miss)
    curl -i --compressed http://127.0.0.1:8000/text   # gzip when the client accepts it
    curl -i http://127.0.0.1:8000/slow         # a sync view: Quart runs it in a thread pool

AEROS_HOST / AEROS_PORT override the address; AEROS_WORKERS the number of worker processes.
"""

from __future__ import annotations

import os
import time

from aeros import CacheControl, CacheTypes, SimpleCache, WebServer, jsonify

app = WebServer(
    __name__,
    host=os.environ.get("AEROS_HOST", "127.0.0.1"),
    port=int(os.environ.get("AEROS_PORT", "8000")),
    worker_threads=int(os.environ.get("AEROS_WORKERS", "1")),
    cache=SimpleCache(timeout=10, threshold=500),
    global_headers={"X-Frame-Options": "DENY"},
)


@app.route("/")
async def home():
    return jsonify(
        {
            "response": "ok",
            "try": ["/items/7", "/text", "/slow", "/time"],
        }
    )


@app.route("/items/<int:item_id>")
@app.cache(timeout=30)  # answered from the cache, in front of Quart, for 30 s
@CacheControl(CacheTypes.PUBLIC, max_age=60)  # browsers and CDNs may keep it 60 s
async def item(item_id: int):
    return jsonify({"id": item_id, "name": f"item {item_id}", "made_at": time.time()})


@app.route("/text")
async def text():
    # large and text-like: compressed when the client sends Accept-Encoding
    return "\n".join(f"line {n}: aeros compresses what is worth compressing" for n in range(200))


@app.route("/slow")
def slow():
    time.sleep(0.1)  # blocking, but in Quart's thread pool: other requests keep flowing
    return jsonify({"response": "done in a thread"})


@app.route("/time")
@CacheControl(CacheTypes.NO_STORE)
async def now():
    return jsonify({"time": time.time()})


if __name__ == "__main__":
    app.run_server()
