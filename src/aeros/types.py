"""ASGI type aliases and the scope keys layers share.

Headers in the hot path stay raw ``list[tuple[bytes, bytes]]`` with lower-case names, as
servers deliver them (ASGI spec). The header grammar and helpers are in :mod:`aeros.headers`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final, Protocol

__all__ = [
    "CACHE_STATE",
    "COALESCED",
    "COMPRESSION",
    "DRAINING",
    "GIVEN_REQUEST_ID",
    "HEADER_LINES",
    "HEAD_NOTES",
    "PEER",
    "RATE_LIMIT_STATE",
    "RESPONSE_DONE",
    "ROUTE",
    "SKIP_COMPRESSION",
    "SKIP_GLOBAL_HEADERS",
    "UNNOTED",
    "WHOLE_RESPONSE",
    "ASGIApp",
    "Headers",
    "Message",
    "Receive",
    "ResponseEncoder",
    "Scope",
    "Send",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

SKIP_COMPRESSION: Final = "aeros.skip_compression"
"""Scope key: when an outer layer sets ``scope[SKIP_COMPRESSION] = True`` the compression
layer passes the response through untouched (the response cache sets it on a miss so it
receives the identity body, stores it, and encodes for the client itself)."""

COMPRESSION: Final = "aeros.compression"
"""Scope key: a :class:`ResponseEncoder` the compression layer puts in instead of wrapping
``send``, when the app's connection is aeros' lean one (:mod:`aeros.fastpath.http`), which
knows a whole body and its headers at once: that connection encodes them (or adds ``Vary``)
with one call, and wraps ``send`` with :meth:`ResponseEncoder.sender` for any other body."""


class ResponseEncoder(Protocol):
    """What :data:`COMPRESSION` holds: the compression layer's decision for one request."""

    def whole(self, status: int, headers: Headers, body: bytes) -> tuple[Headers, bytes]:
        """A complete response's headers and body as the client gets them (new lists; the
        ``headers`` given are not changed)."""

    def sender(self, send: Send) -> Send:
        """``send`` wrapped to encode a response sent in any other way (a stream)."""


SKIP_GLOBAL_HEADERS: Final = "aeros.skip_global_headers"
"""Scope key: present when an outer layer adds the global headers to this response itself
(the response cache does, so stored entries never hold them)."""

CACHE_STATE: Final = "aeros.cache_state"
"""Scope key: what the response cache did for this request (``"hit"``, ``"miss"``,
``"stale"``, ``"bypass"``, ``"uncacheable"``, ``"error"``); the access log prints it."""

PEER: Final = "aeros.peer"
"""Scope key: the address of the connection's peer, set by aeros' server when proxy headers are
honoured (``scope["client"]`` is then the forwarded client). Layers that trust a header only
from a proxy (the request id) check this; without it, ``scope["client"]`` is the peer."""

HEADER_LINES: Final = "aeros.header_lines"
"""Scope key: a list that aeros' HTTP server puts in every request's scope. A layer may append
complete header lines to it, one or more per item (``b"x-request-id: 4f2a...\r\n"``: a
lower-case name, a value it made or checked itself, no CR or LF inside; each line ends with CR
LF); the server writes them into the head of this request's response, whoever starts that
response. An item of the global headers (:class:`aeros.middleware.headers.DefaultLines`, a
``bytes`` subclass) loses the lines whose name the response sets itself. Layers that find no
such key (another server, the test client) wrap ``send`` instead. A list, so the copies of the
scope that inner layers make share it."""

GIVEN_REQUEST_ID: Final = "aeros.given_request_id"
"""Scope key: put in by aeros' HTTP server in every request's scope: the value of the
request's first ``X-Request-ID`` header (bytes, as in ``scope["headers"]``), None when it has
none. The request-id layer reads it instead of scanning the headers on every request; whether
the id is taken is the layer's decision (the peer, the value's form). The key is taken out
where the scope may have passed other code before aeros' layers (``WebServer.asgi_app``: an
ASGI wrapper, a subclass, a replaced ``asgi_app``), which may have changed the headers: the
layer then scans them."""

HEAD_NOTES: Final = "aeros.head_notes"
"""Scope key: put in by aeros' HTTP server in every HTTP request's scope, what it noted of the
header fields as it parsed them: ``(headers, count, body_length, accept_encoding)``.
``headers`` is the scope's ``"headers"`` list as the server made it and ``count`` its length
then; ``body_length`` is what a scan of the fields would find: None with a
``Transfer-Encoding``, else the ``Content-Length``, -1 with neither; ``accept_encoding`` is
the ``Accept-Encoding`` lines joined by commas (bytes), None without one. So the fields are
read once, in the server, instead of once per layer that looks for one.

A layer uses the notes only while ``scope["headers"]`` is still that list with that many
fields (a new list, or a field appended, makes it scan). Code that could change the fields
in place goes without them: the key is taken out by ``WebServer.asgi_app`` (an ASGI wrapper,
a subclass, a replaced ``asgi_app``: every way in except the server's direct one) and in
front of the user's layers (``add_middleware``)."""

UNNOTED: Final[tuple[None, int, None, None]] = (None, -1, None, None)
"""What a layer takes for :data:`HEAD_NOTES` where the scope has none (another server, a test
client): its first item is no headers list, so the layer scans the fields."""

WHOLE_RESPONSE: Final = "aeros.whole_response"
"""Scope key: the ``send`` aeros' HTTP server passed the app (a bound method of its
request/response cycle). A caller that holds a whole response (status, header pairs, one
complete body) and whose own ``send`` is this very object, so no layer wrapped it, may call
``send.__self__.send_whole(status, headers, body)``: the head and the body are then written as
``send`` writes the two messages, without holding the head for the body. It returns False
(having done nothing) where the two messages must go through ``send`` (the response started,
the socket's writes are paused, the access log is the server's)."""

RESPONSE_DONE: Final = "aeros.response_done"
"""Scope key: a list that aeros' HTTP server puts in every request's scope beside
:data:`HEADER_LINES`. A layer may append a pair ``(callback, scope)``, its own scope (a layer
outside may have given it a copy); the server calls ``callback(scope, status, size)`` once the
request's task ends (response sent, app failed, request cancelled) with the status it sent
(an app that failed gets the server's own 500, so 0 means nothing could be sent: the client
left first) and the body bytes sent through ``send`` (a HEAD answer's too). A pair, not a
closure or a partial: a bound method made once serves every request. Layers that report on
finished requests (the access log; the metrics where the server does not count them itself)
use it instead of wrapping ``send`` and awaiting the app; without the key (another server, the
test client) they wrap ``send``. The server empties the list after the calls: the pairs refer
to the scope."""

ROUTE: Final = "aeros.route"
"""Scope key: a list put in where the metrics' count of the request starts (aeros' server
before the app, or the metrics layer), ``[route template, start, tally]``: the template that
matched (``/items/<int:item_id>``, never the raw path) goes in its first item while the app
routes the request (None until then); the metrics label requests with it. A request left out
of the metrics (a health probe, a scrape) has it taken out (``counting.uncounted``)."""

DRAINING: Final = "aeros.draining"
"""Key of the ASGI lifespan state (``scope["state"]``) that aeros' server sets to True when
its graceful shutdown starts; the health endpoint then answers 503."""

COALESCED: Final = "aeros.cache_coalesced"
"""Scope key: True when the response cache answered this request with the result of a fill
another request was running (a coalesced miss; ``CACHE_STATE`` says ``hit``)."""
RATE_LIMIT_STATE: Final = "aeros.rate_limit_state"
"""Scope key: set by the rate-limit layer when it refused the request (``"429"``) or could not
count it (``"error"``: the storage failed); the access log prints it as ``limit=...``."""
