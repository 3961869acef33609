"""Headers layer: global headers and the Server header on every response.

Layers that answer requests themselves (cache hits, CORS preflights) sit in front of this one
and add the same headers with :class:`GlobalHeaders`; a layer that runs the app but adds the
headers to what it sends itself sets ``scope[SKIP_GLOBAL_HEADERS] = True``
(:data:`aeros.types.SKIP_GLOBAL_HEADERS`; the response cache does, so stored entries never hold
them and a hit adds them once per entry).

Headers that belong on HTTPS responses only (``Strict-Transport-Security`` from the security
preset) go through a second ``HeadersMiddleware(..., https_only=True)``, outermost in the stack
so that every answer (cache hits and the layers' own refusals included) gets them, decided on
the request's scheme (``https`` directly, or as a trusted proxy said).
"""

from __future__ import annotations

from collections.abc import Iterable

from aeros.types import SKIP_GLOBAL_HEADERS, ASGIApp, Headers, Message, Receive, Scope, Send

__all__ = ["GlobalHeaders", "HeadersMiddleware"]


class GlobalHeaders:
    """Fixed ``(name, value)`` pairs every response carries unless it sets the name itself.

    Args:
        headers: encoded pairs, names lower-case, already validated
            (see :func:`aeros.headers.check_header`).
    """

    __slots__ = ("headers", "names")

    def __init__(self, headers: Iterable[tuple[bytes, bytes]]) -> None:
        self.headers = tuple(headers)
        self.names = frozenset(name for name, _ in self.headers)

    def __bool__(self) -> bool:
        return bool(self.headers)

    def apply(self, headers: Iterable[tuple[bytes, bytes]]) -> Headers:
        """A new list: ``headers`` plus the global ones it does not set (the view's value wins).

        The common case (no global name already set) costs one hashed lookup per header: ASGI
        names are lower-case, so ``.lower()`` runs only on a name that is not.
        """
        names = self.names
        headers = list(headers)
        for name, _ in headers:
            if name in names or (not name.islower() and name.lower() in names):
                present = {name.lower() for name, _ in headers}
                headers += [(name, value) for name, value in self.headers if name not in present]
                return headers
        headers += self.headers
        return headers

    def sender(self, send: Send) -> Send:
        """Wrap ``send`` so the response start gets the global headers."""
        apply = self.apply

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = apply(message.get("headers") or ())
            await send(message)

        return send_with_headers


class HeadersMiddleware:
    """Add fixed headers to every HTTP response, errors and 404s included.

    Args:
        app: the inner ASGI app.
        headers: the global headers. A header the response already carries is left as the
            view set it, so a view can override a global default.
        https_only: add them only to requests whose ``scope["scheme"]`` is ``https`` (and
            whatever else set ``SKIP_GLOBAL_HEADERS``: these are not the global headers).
    """

    def __init__(
        self, app: ASGIApp, headers: GlobalHeaders | Headers, *, https_only: bool = False
    ) -> None:
        self.app = app
        self.headers = headers if isinstance(headers, GlobalHeaders) else GlobalHeaders(headers)
        self.https_only = https_only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.https_only:
            if scope["type"] == "http" and scope.get("scheme") == "https":
                await self.app(scope, receive, self.headers.sender(send))
            else:
                await self.app(scope, receive, send)
            return
        if scope["type"] != "http" or SKIP_GLOBAL_HEADERS in scope:
            await self.app(scope, receive, send)
            return
        await self.app(scope, receive, self.headers.sender(send))
