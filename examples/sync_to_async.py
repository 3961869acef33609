"""Calling blocking code from an async view without blocking the server (the seed's snippet).

``sync_to_async`` runs the function in a worker thread; the event loop keeps serving other
requests meanwhile. A plain ``def`` view works too: Quart runs it in a thread pool (aeros logs
that once per view).

    python examples/sync_to_async.py          # then: curl http://127.0.0.1:8080/
"""

import os
import time

from aeros import WebServer
from aeros.misc import jsonify, sync_to_async

app = WebServer(
    __name__,
    host=os.environ.get("AEROS_HOST", "127.0.0.1"),
    port=int(os.environ.get("AEROS_PORT", "8080")),
)


@sync_to_async
def sync_method():
    time.sleep(0.2)  # stands for a blocking call: a legacy client, a file, a CPU-bound step
    return "ok"


@app.route("/")
async def home():
    status = await sync_method()
    return jsonify({"response": status})


@app.route("/sync")
def sync_view():
    """A sync view: Quart runs it in its thread pool."""
    time.sleep(0.05)
    return jsonify({"response": "ok", "view": "sync"})


if __name__ == "__main__":
    app.run_server()
