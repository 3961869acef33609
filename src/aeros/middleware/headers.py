"""Headers layer: global headers and the Server header on every response."""

from __future__ import annotations

from aeros.middleware.types import ASGIApp, Headers, Message, Receive, Scope, Send

__all__ = ["HeadersMiddleware"]


class HeadersMiddleware:
    """Add fixed headers to every HTTP response, errors and 404s included.

    Args:
        app: the inner ASGI app.
        headers: encoded ``(name, value)`` pairs, names lower-case, already validated
            (see :func:`aeros.middleware.types.check_header`). A header the response already
            carries is left as the view set it, so a view can override a global default.
    """

    def __init__(self, app: ASGIApp, headers: Headers) -> None:
        self.app = app
        self.headers = tuple(headers)
        self.names = frozenset(name for name, _ in headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self.headers
        names = self.names

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.get("headers") or []
                present = {name.lower() for name, _ in headers} & names
                if present:
                    extra_now = tuple((n, v) for n, v in extra if n not in present)
                    message["headers"] = [*headers, *extra_now]
                else:
                    message["headers"] = [*headers, *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)
