"""What the HTTP protocol does on its own, without the app: deadlines and its own answers.

:class:`ConnectionControl` is the base of the protocol class aeros runs
(:class:`~aeros.server.http.protocol.HardenedHttpToolsProtocol`, which parses and checks
requests). It keeps one lazy timer per connection for the head, body and keep-alive
deadlines, and writes the answers the server makes itself: a 4xx for a request the parser
refused, a 408 for one that trickled in too slowly, a 503 for one cut off at shutdown, each with
``Connection: close`` and in order after the answers owed to earlier pipelined requests.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState

from aeros.logging.access import ACCESS_LOGGER, SERVER_ANSWER, log_access
from aeros.logging.formatters import AccessEntry
from aeros.server.config import Limits
from aeros.server.http.cycle import LeanCycle
from aeros.server.http.rules import error_response
from aeros.server.http.writes import batch_for

__all__ = ["DRAIN_IDLE_SECONDS", "LINGER_SECONDS", "ConnectionControl"]

logger = logging.getLogger(__name__)
_access_logger = logging.getLogger(ACCESS_LOGGER)

_NEVER = float("inf")
_CLOSE = (b"connection", b"close")

DRAIN_IDLE_SECONDS = 1.0
"""On shutdown, how long an idle keep-alive connection stays open for a request already on
its way (answered with ``Connection: close``) before it is closed. Closing it at once would
reset such a request: a failed request for a client, under load, at every worker restart."""

LINGER_SECONDS = 2.0
"""After an error answer, how long unread request bytes are drained before the socket closes.

Closing a socket with unread input makes the kernel send a reset, which can destroy the answer
before the client reads it; so we half-close, discard what still arrives, and close on the
client's EOF or after this long."""


class ConnectionControl(HttpToolsProtocol):
    """uvicorn's httptools protocol plus the connection's deadlines and the server's own answers.

    The parsing subclass moves the state flags below (``_head_pending``, ``_head_bytes``,
    ``_body_pending``, ``_running``) as a request goes through; this class reads them to know
    which deadline applies and whether an answer can go out now.
    """

    header_timeout: float = Limits().header_timeout
    """Seconds a client has to send a complete request head."""
    body_timeout: float = Limits().body_timeout
    """Seconds a request body may stay idle between chunks."""
    keep_alive_timeout: float = 5.0
    """Seconds an idle keep-alive connection stays open."""
    answer_headers: bytes = b""
    """Header lines (the app's global headers) added to every answer the server makes."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        # One lazy timer per connection serves the head, body and keep-alive deadlines: state
        # changes only move timestamps, and the timer, when it fires, works out which deadline
        # applies now and re-arms itself if that lies ahead. So a request costs a clock read or
        # two instead of arming and cancelling timers (uvicorn arms one per request).
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = _NEVER
        self._linger_timer: asyncio.TimerHandle | None = None
        self._head_started = 0.0  # loop time the pending head's deadline counts from
        self._idle_since = 0.0  # loop time the last response completed
        self._body_at = 0.0  # loop time body bytes last arrived
        # True while the next bytes belong to a request head (parser between messages or
        # inside a head); the head deadline and the head-size guard apply only then.
        self._head_pending = True
        self._body_pending = False
        self._head_bytes = 0
        self._failed = False
        self._deferred = 0
        self._running: LeanCycle | None = None  # the cycle whose app task runs (not a queued one)
        # Responses finished in one loop iteration are written together (server/cycle.py);
        # whatever this protocol writes or closes itself, and new input, flushes them first so
        # a connection's bytes stay in order.
        self._writes = batch_for(self.loop)

    # ---- connection ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # A first request's head deadline counts from the connection: a client may not idle
        # before its first byte either.
        self._head_started = now = self.loop.time()
        self._arm(now + self.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._linger_timer is not None:
            self._linger_timer.cancel()
            self._linger_timer = None
        super().connection_lost(exc)

    def shutdown(self) -> None:
        """The graceful-shutdown step: every response from now on says ``Connection: close``
        and closes; a busy connection closes after its response (uvicorn's), an idle one
        after :data:`DRAIN_IDLE_SECONDS` without a request (or sooner, at its own deadline)."""
        if self._writes.pending:
            self._writes.flush()
        # The server's per-response headers (a list uvicorn rebuilds each tick, and no longer
        # once it shuts down) reach the responses not yet started on every connection.
        defaults = self.server_state.default_headers
        if _CLOSE not in defaults:
            defaults.append(_CLOSE)
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            cycle.keep_alive = False
            return
        now = self.loop.time()
        until = now + DRAIN_IDLE_SECONDS
        # the idle deadlines shortened for this connection only (class attributes otherwise)
        self.keep_alive_timeout = min(self.keep_alive_timeout, until - self._idle_since)
        self.header_timeout = min(self.header_timeout, until - self._head_started)
        if self._timer_at > until:
            self._arm(until)

    def cut_off(self, reason: str) -> None:
        """Prepare the request in flight for cancellation at shutdown (the server cancels it).

        An app that has not started its response is answered ``503`` with ``Connection:
        close`` by its cycle, and its access-log line shows that; one that has is cut off.
        """
        cycle = self._running
        if cycle is None or cycle.response_complete:
            return
        answer = None
        if not (cycle.response_started or cycle.disconnected or self.transport.is_closing()):
            answer = error_response(503, self.server_state.default_headers, self.answer_headers)
            cycle.scope[SERVER_ANSWER] = (503, len(answer))  # type: ignore[literal-required]
        cycle.cut_off(reason, answer)

    # ---- deadlines -----------------------------------------------------------------------

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.loop.call_at(when, self._timer_fired)
        self._timer_at = when

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = _NEVER

    def _deadline(self) -> float:
        """When this connection is next due for closing, in loop time (never: the app has it)."""
        cycle = self.cycle
        if self._head_pending:
            if self.pipeline or (cycle is not None and not cycle.response_complete):
                return _NEVER  # answering earlier requests; re-armed when they are done
            if self._head_bytes or cycle is None:
                return self._head_started + self.header_timeout
            return self._idle_since + self.keep_alive_timeout
        if self._body_pending:
            if self.flow.read_paused:  # we stopped reading (the app is behind): not idle
                self._body_at = self.loop.time()
            return self._body_at + self.body_timeout
        return _NEVER

    def _timer_fired(self) -> None:
        if self._writes.pending:
            self._writes.flush()
        self._timer = None
        self._timer_at = _NEVER
        deadline = self._deadline()
        if deadline > self.loop.time():
            if deadline != _NEVER:
                self._arm(deadline)
        elif self._body_pending or self._head_bytes:
            self._reject(408)  # a head or body that trickled in too slowly
        else:
            self.transport.close()  # idle: closed without a word, as keep-alive ends

    # ---- answering errors ----------------------------------------------------------------

    def _reject(self, status: int) -> None:
        """Answer ``status`` with Connection: close once earlier answers are out; parse no more."""
        self._failed = True
        self._disarm()
        logger.debug("rejected request from %s: %d", self.client, status)
        cycle = None if self._head_pending else self.cycle
        if cycle is not None:
            queued = [entry for entry in self.pipeline if entry[0] is cycle]
            if queued:
                self.pipeline.remove(queued[0])  # never started: behaves like a bad head
            elif cycle.response_started:
                self.transport.close()  # too late for a status: the app has answered
                return
            else:
                # The app is running: it sees a disconnect, and anything it sends is dropped.
                # Its access-log line (written when it returns) shows this answer.
                cycle.disconnected = True
                cycle.message_event.set()
                self._send_error(status, in_place_of=cycle)
                return
        current = self.cycle
        if self.pipeline or (current is not None and not current.response_complete):
            self._deferred = status  # answered in order, after the requests before it
            self.flow.pause_reading()
            return
        self._send_error(status)

    def _send_error(self, status: int, in_place_of: RequestResponseCycle | None = None) -> None:
        """Write the ``status`` answer and close; ``in_place_of``: the running cycle it answers."""
        if self._writes.pending:
            self._writes.flush()
        transport = self.transport
        if transport.is_closing():
            return
        self._failed = True
        response = error_response(status, self.server_state.default_headers, self.answer_headers)
        transport.write(response)
        if in_place_of is not None:
            in_place_of.scope[SERVER_ANSWER] = (status, len(response))  # type: ignore[literal-required]
            in_place_of.answered_in_place(status)  # type: ignore[attr-defined]
        elif _access_logger.isEnabledFor(logging.INFO):
            # Refused before any ASGI app saw it, so the access layer cannot log it: log it here,
            # so refused requests (attacks among them) show in the access log like any other.
            log_access(
                AccessEntry(self.client, "-", b"-", b"", "1.1", status, len(response), 0.0, None)
            )
        if transport.can_write_eof():
            transport.write_eof()
            self.flow.resume_reading()
            self._linger_timer = self.loop.call_later(LINGER_SECONDS, transport.close)
        else:
            transport.close()
