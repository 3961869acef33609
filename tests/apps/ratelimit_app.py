"""Two workers counting one rate limit in a storage: ``python ratelimit_app.py STORAGE LIMIT
FAIL_OPEN URL_FILE``. ``GET /`` answers ``ok`` from a cached view; every response names its
worker in ``X-Worker``. The URL is written to URL_FILE once serving."""

from __future__ import annotations

import os
import sys

from aeros import RateLimit, SimpleCache, WebServer

storage, limit, fail_open, url_file = sys.argv[1:5]
app = WebServer(
    __name__,
    workers=2,
    cache=SimpleCache(),
    access_log=False,
    log_level="warning",
    # Redis gets 2 s, not the default 0.1 s: on a loaded CI machine a slow answer would count
    # as a failure and fail open (a 200 the test expects to be a 429). A stopped redis-server
    # refuses connections at once, so the outage test does not wait for the timeout.
    rate_limit=RateLimit(limit, storage=storage, fail_open=fail_open == "open", socket_timeout=2.0),
)


@app.route("/")
@app.cache(timeout=60)
async def home() -> str:
    return "ok"


class WorkerPid:
    """Outermost layer: every response, 429s and cache hits included, names its worker."""

    def __init__(self, inner):  # type: ignore[no-untyped-def]
        self.inner = inner

    async def __call__(self, scope, receive, send):  # type: ignore[no-untyped-def]
        async def send_pid(message):  # type: ignore[no-untyped-def]
            if message["type"] == "http.response.start":
                pid = str(os.getpid()).encode()
                message["headers"] = [*message.get("headers", []), (b"x-worker", pid)]
            await send(message)

        await self.inner(scope, receive, send_pid)


app.asgi_app = WorkerPid(app.asgi_app)  # type: ignore[method-assign]


def started(url: str) -> None:
    with open(url_file + ".tmp", "w") as f:
        f.write(url)
    os.replace(url_file + ".tmp", url_file)


if __name__ == "__main__":
    app.run_server(port=0, on_started=started)
