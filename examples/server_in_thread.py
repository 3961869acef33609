"""Starting the server in a separate thread (the seed's snippet) and stopping it cleanly.

``AdvancedThread(target=app.run_server)`` has a ``stop()`` that drains in-flight requests; a
plain ``threading.Thread`` works too, stopped with ``app.stop()``. For scripts and tests,
``with app.serve_in_thread() as base_url:`` binds a free port, waits until the server
accepts, and stops it at the end of the block.

    python examples/server_in_thread.py       # serves until Ctrl-C / SIGTERM
"""

import os
import signal
import threading
import urllib.request

from aeros import AdvancedThread, WebServer, jsonify

app = WebServer(
    __name__,
    host=os.environ.get("AEROS_HOST", "127.0.0.1"),
    port=int(os.environ.get("AEROS_PORT", "8080")),
)


@app.route("/")
async def home():
    return jsonify({"response": "ok", "thread": threading.current_thread().name})


def main() -> None:
    # 1. A short-lived server for a script: a free port, stopped when the block ends.
    with app.serve_in_thread() as base_url, urllib.request.urlopen(base_url + "/") as reply:
        print("serve_in_thread answered:", reply.read().decode())

    # 2. The seed's way: the server runs in a thread until stop() (here: until a signal).
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    thread = AdvancedThread(target=app.run_server, daemon=True)
    thread.start()
    done.wait()
    thread.stop()  # graceful: in-flight requests finish first; returns once it stopped


if __name__ == "__main__":
    main()
