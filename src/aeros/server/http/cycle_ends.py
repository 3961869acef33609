"""How a request's cycle ends when it does not end well, for
:class:`~aeros.server.http.cycle.LeanCycle`: the server's 500 for an app that failed before its
response (with the app's global headers), the connection closed after one that failed once its
response had started, a request cut off at shutdown (a 503 when nothing was sent yet) and a
status the server answered in the app's place.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from uvicorn._types import HTTPScope

    from aeros.server.http.writes import WriteBatch

__all__ = ["CycleEnds"]

logger = logging.getLogger("aeros.server.http.cycle")  # where these lines were logged before

_500_HEADERS = (  # uvicorn's
    (b"content-type", b"text/plain; charset=utf-8"),
    (b"content-length", b"21"),
    (b"connection", b"close"),
)


class CycleEnds:
    """The ends of :class:`~aeros.server.http.cycle.LeanCycle` other than a response sent.

    A part of the cycle (a base class of it, with its methods only): the attributes below are
    the cycle's, set by its ``__init__``, except the answers' header pairs, which the server
    sets per server (``cycle_class``).
    """

    scope: HTTPScope
    transport: asyncio.Transport
    logger: logging.Logger
    writes: WriteBatch | None
    send: Callable[[Any], Awaitable[None]]
    response_started: bool
    response_complete: bool
    disconnected: bool
    status: int
    body_size: int
    server_status: int
    _cut_off: tuple[str, bytes | None] | None

    answer_pairs: tuple[tuple[bytes, bytes], ...] = ()
    """The app's global headers (security headers included) for the 500 the server answers
    in the app's place, as its other answers carry them (set per server: ``cycle_class``)."""
    https_pairs: tuple[tuple[bytes, bytes], ...] = ()
    """Added too when the request's scheme is ``https`` (a trusted proxy said so): HSTS."""

    async def send_500_response(self) -> None:
        """uvicorn's 500 for an app that failed before its response, with ``answer_pairs``
        (and ``https_pairs`` for a request that came over HTTPS through a trusted proxy)."""
        headers = [*_500_HEADERS, *self.answer_pairs]
        if self.https_pairs and self.scope.get("scheme") == "https":
            headers += self.https_pairs
        await self.send({"type": "http.response.start", "status": 500, "headers": headers})
        await self.send(
            {"type": "http.response.body", "body": b"Internal Server Error", "more_body": False}
        )

    async def _failed(self, exc: BaseException) -> None:
        """uvicorn's answer to an app that raised: a 500, or the connection closed when the
        response had started."""
        self.logger.error("Exception in ASGI application", exc_info=exc)
        if not self.response_started:
            await self.send_500_response()
        else:
            self._close()

    def _close(self) -> None:
        """Close the connection after the responses waiting in the loop's write batch: a
        response this request completed before its app failed goes out first, as uvicorn
        (which writes at once) sends it."""
        if self.writes is not None and self.writes.pending:
            self.writes.flush()
        self.transport.close()

    def answered_in_place(self, status: int) -> None:
        """The server answered this request itself while the app ran (a body over the limit):
        the RESPONSE_DONE callbacks report ``status``, whatever the app sends after it."""
        self.server_status = self.status = status
        self.body_size = 0

    def _cancelled(self) -> None:
        reason, answer = self._cut_off or ("cancelled", None)
        transport = self.transport
        answered = False
        if (
            answer is not None
            and not self.response_started
            and not self.disconnected
            and not transport.is_closing()
        ):
            if self.writes is not None and self.writes.pending:
                self.writes.flush()  # earlier responses on this connection go first
            transport.write(answer)
            self.response_started = self.response_complete = answered = True
            self.status = 503
        logger.warning(
            "%s %s cut off (%s): %s",
            self.scope["method"],
            self.scope["path"],
            reason,
            "answered 503" if answered else "connection closed",
        )
        self._close()
