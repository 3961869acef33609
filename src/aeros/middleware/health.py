"""Health layer: answer a load balancer's probe in front of the app: 200 serving, 503 draining.

It sits outside the concurrency limit, the access log and the metrics, so a busy worker still
answers its probe, and probes (every few seconds, from every balancer) neither fill the access
log nor count as requests. aeros' server sets ``state[DRAINING]`` in the ASGI lifespan state when
its graceful shutdown starts (:mod:`aeros.server.uvicorn_backend`); with
``WebServer(shutdown_delay=...)`` it keeps serving that long first, so balancers see the 503 and
take the instance out of rotation before it stops accepting connections.
"""

from __future__ import annotations

from collections.abc import Iterable

from aeros.middleware.counting import uncounted
from aeros.middleware.headers import GlobalHeaders
from aeros.types import DRAINING, ASGIApp, Headers, Receive, Scope, Send

__all__ = ["HealthMiddleware"]

_SERVING = b"ok\n"
_DRAINING = b"draining\n"


def _head(body: bytes, headers: GlobalHeaders) -> Headers:
    return headers.apply(
        (
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-store"),
        )
    )


class HealthMiddleware:
    """Answer GET and HEAD on ``path``: 200 ``ok`` while serving, 503 ``draining`` after the
    graceful shutdown started; every other request goes on to the app untouched.

    Args:
        app: the ASGI app to wrap.
        path: the probe's path, such as ``/healthz`` (matched exactly).
        headers: the app's global headers, added to the answers (a :class:`GlobalHeaders`, or
            encoded ``(name, value)`` pairs).
    """

    def __init__(
        self,
        app: ASGIApp,
        path: str,
        headers: GlobalHeaders | Iterable[tuple[bytes, bytes]] = (),
    ) -> None:
        self.app = app
        self.path = path
        if not isinstance(headers, GlobalHeaders):
            headers = GlobalHeaders((name.lower(), value) for name, value in headers)
        self.serving = _head(_SERVING, headers)  # built once: the answers never change
        self.draining = _head(_DRAINING, headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        if method != "GET" and method != "HEAD":
            await self.app(scope, receive, send)
            return
        uncounted(scope)  # a probe: not in the metrics (aeros' server started their count)
        state = scope.get("state")
        draining = state is not None and state.get(DRAINING, False)
        body = _DRAINING if draining else _SERVING
        await send(
            {
                "type": "http.response.start",
                "status": 503 if draining else 200,
                "headers": self.draining if draining else self.serving,
            }
        )
        await send(
            {
                "type": "http.response.body",
                "body": b"" if method == "HEAD" else body,
                "more_body": False,
            }
        )
