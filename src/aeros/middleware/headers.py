"""Headers layer: global headers and the Server header on every response."""

from __future__ import annotations

from collections.abc import Iterable

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
                headers = message.get("headers") or ()
                # The common case (no header of ours already set) must cost one hashed lookup per
                # header: ASGI names are lower-case, so .lower() runs only on a name that is not.
                for name, _ in headers:
                    if name in names or (not name.islower() and name.lower() in names):
                        message["headers"] = _merge(headers, extra)
                        break
                else:
                    message["headers"] = [*headers, *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _merge(
    headers: Iterable[tuple[bytes, bytes]], extra: tuple[tuple[bytes, bytes], ...]
) -> Headers:
    """``headers`` plus those of ``extra`` it does not already set (the view's value wins)."""
    headers = list(headers)
    present = {name.lower() for name, _ in headers}
    return [*headers, *((name, value) for name, value in extra if name not in present)]
