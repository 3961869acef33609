"""Headers layer: global headers and the Server header on every response.

Layers that answer requests themselves (cache hits, CORS preflights) sit in front of this one
and add the same headers with :class:`GlobalHeaders`; a layer that runs the app but adds the
headers to what it sends itself sets ``scope[SKIP_GLOBAL_HEADERS] = True``
(:data:`aeros.types.SKIP_GLOBAL_HEADERS`; the response cache does, so stored entries never hold
them and a hit adds them once per entry).

On aeros' own server neither layer wraps ``send``: it puts the headers' :class:`DefaultLines`
in the request's :data:`~aeros.types.HEADER_LINES`, and the server writes them into the head
of whatever response the request gets, less any name that response sets itself (13.1 k
instructions a request less than the wrapper, of 243.1 k for a JSON request on Python 3.11).

Headers that belong on HTTPS responses only (``Strict-Transport-Security`` from the security
preset) go through a second ``HeadersMiddleware(..., https_only=True)``, outermost in the stack
so that every answer (cache hits and the layers' own refusals included) gets them, decided on
the request's scheme (``https`` directly, or as a trusted proxy said).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from aeros.asgi_entry import asgi3
from aeros.headers import header_line
from aeros.types import (
    HEADER_LINES,
    SKIP_GLOBAL_HEADERS,
    ASGIApp,
    Headers,
    Message,
    Receive,
    Scope,
    Send,
)

__all__ = ["GLOBAL_NAMES", "DefaultLines", "GlobalHeaders", "HeadersMiddleware", "on_global_names"]


GLOBAL_NAMES: set[bytes] = set()
"""Names of the global headers of every :class:`DefaultLines` made in this process. aeros'
server remembers the lines of pairs of these names apart from the others, so that it knows
when a response sets one itself."""
_SWEEPS: list[Callable[[frozenset[bytes]], None]] = []


def on_global_names(sweep: Callable[[frozenset[bytes]], None]) -> None:
    """Call ``sweep(names)`` whenever global headers of new names are made, once the names are
    in :data:`GLOBAL_NAMES` (aeros' server then forgets what it remembered of them)."""
    _SWEEPS.append(sweep)


class DefaultLines(bytes):
    """The header lines of :class:`GlobalHeaders`, as one :data:`~aeros.types.HEADER_LINES`
    item: aeros' server writes them unless the response sets one of their names itself
    (:meth:`for_head`)."""

    pairs: tuple[tuple[bytes, bytes], ...]
    names: frozenset[bytes]

    @classmethod
    def of(cls, pairs: tuple[tuple[bytes, bytes], ...]) -> DefaultLines:
        """The lines of ``pairs`` (lower-case names, checked values); their names go into
        :data:`GLOBAL_NAMES` now, before any response can carry them."""
        lines = cls(b"".join(header_line(name, value) for name, value in pairs))
        lines.pairs = pairs
        lines.names = names = frozenset(name for name, _ in pairs)
        new = names - GLOBAL_NAMES
        if new:
            GLOBAL_NAMES.update(new)  # first: a server that stores a line after this sees it
            for sweep in _SWEEPS:
                sweep(new)
        return lines

    def for_head(self, headers: Iterable[tuple[bytes, bytes]]) -> bytes:
        """The lines to write into a head that carries ``headers``: all of them, less those
        whose name ``headers`` sets (the response's value wins)."""
        kept = self.pairs_for(headers)
        if len(kept) == len(self.pairs):
            return self
        return b"".join(header_line(name, value) for name, value in kept)

    def pairs_for(self, headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        """The pairs whose name ``headers`` does not set (uvicorn's own ``send`` takes
        pairs; :meth:`for_head` joins them into lines)."""
        present = {name.lower() for name, _ in headers}
        return [(name, value) for name, value in self.pairs if name not in present]


class GlobalHeaders:
    """Fixed ``(name, value)`` pairs every response carries unless it sets the name itself.

    Args:
        headers: encoded pairs, names lower-case, already validated
            (see :func:`aeros.headers.check_header`).
    """

    __slots__ = ("headers", "lines", "names")

    def __init__(self, headers: Iterable[tuple[bytes, bytes]]) -> None:
        self.headers = tuple(headers)
        self.lines = DefaultLines.of(self.headers)  # for aeros' server (HEADER_LINES)
        self.names = self.lines.names

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
        server_lines: on aeros' server, hand them to the server (``HEADER_LINES``) instead of
            adding them to the response start. False when a layer outside this one reads or
            changes response headers (user middleware, CORS's ``Vary``): it must see them.
    """

    def __init__(
        self,
        app: ASGIApp,
        headers: GlobalHeaders | Headers,
        *,
        https_only: bool = False,
        server_lines: bool = True,
    ) -> None:
        self.app = app
        self.headers = headers if isinstance(headers, GlobalHeaders) else GlobalHeaders(headers)
        self.https_only = https_only
        self.server_lines = server_lines

    @asgi3
    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # a plain function: the app's coroutine goes back as it is, with no coroutine of this
        # layer around it
        if scope["type"] != "http" or (
            scope.get("scheme") != "https" if self.https_only else SKIP_GLOBAL_HEADERS in scope
        ):
            return self.app(scope, receive, send)
        lines = scope.get(HEADER_LINES) if self.server_lines else None
        if lines is not None:  # aeros' server writes them into whichever response it gets
            lines.append(self.headers.lines)
            return self.app(scope, receive, send)
        return self.app(scope, receive, self.headers.sender(send))
