"""Headers on every response, errors and 404s included (the seed's global headers).

    python examples/global_headers.py         # then: curl -i http://127.0.0.1:8080/

Header names and values with CR, LF or NUL are refused when the app is built.
"""

import os

from aeros import WebServer, jsonify

app = WebServer(
    __name__,
    host=os.environ.get("AEROS_HOST", "127.0.0.1"),
    port=int(os.environ.get("AEROS_PORT", "8080")),
    global_headers={
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    },
)


@app.route("/")
async def home():
    return jsonify({"response": "ok"})


@app.route("/own")
async def own():
    # a view's own header wins over the global one
    return jsonify({"response": "ok"}), 200, {"X-Frame-Options": "SAMEORIGIN"}


if __name__ == "__main__":
    app.run_server()
