"""What a response carried, its status and body bytes, for the layers that report it.

The access log and the metrics each need the status and the size of every HTTP response once
the request ends (the metrics where aeros' server does not count them in its own cycle).
:func:`when_done` gives them both ways of learning it: on aeros' own server the server
reports it (``scope[RESPONSE_DONE]``: no send wrapper, no coroutine of the layer);
anywhere else ``send`` is wrapped in a :class:`CountingSend` and the report follows the app.
A report of no response (status 0) is told apart by :func:`unanswered_status`; a request
answered in front of the app that no count should include (a health probe, a scrape) is taken
out of the metrics' count by :func:`uncounted`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final

from aeros.types import RESPONSE_DONE, ROUTE, ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "CLIENT_CLOSED_REQUEST",
    "CountingSend",
    "Finished",
    "unanswered_status",
    "uncounted",
    "when_done",
]

Finished = Callable[[Scope, int, int], None]
"""``finished(scope, status, size)``: a finished request's report (``status`` 0: none sent)."""

CLIENT_CLOSED_REQUEST: Final = 499
"""Status logged and counted for a request whose client left before any response (nginx's)."""


def uncounted(scope: Scope) -> None:
    """Leave this request out of the metrics, whoever started its count (aeros' server before
    the app, or the metrics layer): its box (:data:`~aeros.types.ROUTE`, ``[route, start,
    tally]``) leaves the scope, and the tally's in-flight count at once, so a scrape does not
    show itself."""
    box = scope.pop(ROUTE, None)
    if box is not None:
        box[2].started -= 1


def unanswered_status(scope: Scope) -> int:
    """The status to report for a request that ended with none sent (a reported status 0).

    On aeros' server (the request's report comes from the server, ``scope[RESPONSE_DONE]``) an
    app that fails is answered with the server's own 500, and that is the status reported; 0
    means nothing could be sent: the client closed the connection first, 499. Elsewhere the
    layer sees only what the app sent: 0 is an app that failed (raised) before answering, 500.
    """
    return CLIENT_CLOSED_REQUEST if RESPONSE_DONE in scope else 500


class CountingSend:
    """``send`` that notes the status of ``http.response.start`` and adds up the body bytes.

    Attributes:
        status: the response's status; 0 until the response starts.
        size: the body bytes sent so far (as the app sent them: a HEAD answer's body too).
    """

    __slots__ = ("_send", "size", "status")

    def __init__(self, send: Send) -> None:
        self._send = send
        self.status = 0
        self.size = 0

    async def __call__(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.body":
            self.size += len(message.get("body", b""))
        elif kind == "http.response.start":
            self.status = message["status"]
        await self._send(message)


def when_done(
    app: ASGIApp,
    scope: Scope,
    receive: Receive,
    send: Send,
    finished: Finished,
) -> Awaitable[None]:
    """Run ``app`` for this HTTP request and call ``finished(scope, status, size)`` once it
    ends (``status`` 0: no response was started; the app failed or the client left).

    ``finished`` is best a bound method made once: nothing is made per request for it."""
    done = scope.get(RESPONSE_DONE)
    if done is not None:  # aeros' server calls it when the request's task ends
        done.append((finished, scope))
        return app(scope, receive, send)
    return _counted(app, scope, receive, send, finished)


async def _counted(
    app: ASGIApp,
    scope: Scope,
    receive: Receive,
    send: Send,
    finished: Finished,
) -> None:
    counted = CountingSend(send)
    try:
        await app(scope, receive, counted)
    finally:
        finished(scope, counted.status, counted.size)
