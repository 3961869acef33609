"""The demo server `make demo` starts: a few routes showing aeros' batteries."""

from __future__ import annotations

import os

from quart import jsonify

from aeros import WebServer

app = WebServer(
    __name__,
    host=os.environ.get("AEROS_HOST", "127.0.0.1"),
    port=int(os.environ.get("AEROS_PORT", "8000")),
    global_headers={"X-Frame-Options": "DENY"},
)


@app.route("/")
async def home():
    return jsonify({"response": "ok"})


@app.route("/items/<int:item_id>")
async def item(item_id: int):
    return jsonify({"id": item_id, "name": f"item {item_id}"})


if __name__ == "__main__":
    app.run_server()
