"""The seed's compression snippet, runnable: Flask-Compress style configuration.

    python examples/compression.py          # AEROS_HOST / AEROS_PORT override 127.0.0.1:8000
    curl --compressed -i http://127.0.0.1:8000/

``COMPRESS_MIN_SIZE = 5`` compresses almost every JSON or text answer; HTML is not in the list,
so ``/page`` is sent as it is (the seed's mimetypes, not the default set).
"""

from __future__ import annotations

import os

from aeros import Compress, WebServer, jsonify

app = WebServer(
    __name__,
    host=os.environ.get("AEROS_HOST", "127.0.0.1"),
    port=int(os.environ.get("AEROS_PORT", "8000")),
)
app.config["COMPRESS_MIN_SIZE"] = 5
app.config["COMPRESS_LEVEL"] = 2
app.config["COMPRESS_MIMETYPES"] = ["text/plain", "application/json"]
Compress(app)


@app.route("/")
async def home():
    return jsonify({"response": "ok", "compressed": "when the client accepts gzip"})


@app.route("/text")
async def text():
    return "plain text, compressed too " * 10, 200, {"Content-Type": "text/plain"}


@app.route("/page")
async def page():
    return "<p>html is not in COMPRESS_MIMETYPES here</p>" * 10


if __name__ == "__main__":
    app.run_server()
