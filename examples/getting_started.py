"""The seed's getting-started program, with only the import lower-cased.

    python examples/getting_started.py        # then: curl http://127.0.0.1:8080/

AEROS_HOST / AEROS_PORT override the address (the tests serve it on a free port).
"""

import os

from quart import jsonify

from aeros import WebServer

app = WebServer(
    __name__,
    host=os.environ.get("AEROS_HOST", "127.0.0.1"),
    port=int(os.environ.get("AEROS_PORT", "8080")),
)


@app.route("/")
async def home():
    return jsonify({"response": "ok"})


if __name__ == "__main__":
    app.run_server()  # app.run() is the same call; Ctrl-C / SIGTERM drain gracefully
