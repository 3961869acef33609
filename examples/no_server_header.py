"""Sending no Server header at all (the seed's include_server_header=False).

By default aeros sends ``server: aeros`` (never a version); this app sends none.

    python examples/no_server_header.py       # then: curl -i http://127.0.0.1:8080/
"""

import os

from aeros import WebServer, jsonify

app = WebServer(
    __name__,
    host=os.environ.get("AEROS_HOST", "127.0.0.1"),
    port=int(os.environ.get("AEROS_PORT", "8080")),
    include_server_header=False,
)


@app.route("/")
async def home():
    return jsonify({"response": "ok"})


if __name__ == "__main__":
    app.run_server()
