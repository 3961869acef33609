"""The HTTP/1.1 protocol aeros runs uvicorn with: httptools plus limits, deadlines and rules.

uvicorn's ``HttpToolsProtocol`` parses with llhttp, which is strict about framing, but it has no
limit on the size of a request line or header block, no deadline for a request head (a client
can hold a connection open forever by trickling bytes: slowloris), and no body size limit. This
subclass adds those, and the head rules of :mod:`aeros.server.http.rules`, answering each
violation with a fixed 4xx/5xx and ``Connection: close`` (see docs/security.md).

Everything here runs for every request, so the checks are integer compares and a few byte
tests in the parser callbacks uvicorn already has, and one lazy timer per connection keeps the
head, body and keep-alive deadlines (about 1 µs per request in all: measure_overhead.py in
tests/hardening).
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
from typing import Any

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState

from aeros.logging.access import ACCESS_LOGGER, SERVER_ANSWER, log_access
from aeros.logging.formatters import AccessEntry
from aeros.server.config import Limits, ServerConfig
from aeros.server.http.cycle import LeanCycle, batch_for
from aeros.server.http.rules import (
    HEAD_SLACK,
    RejectRequest,
    answer_header_block,
    error_response,
    is_valid_host,
    other_target_status,
    transfer_coding_status,
)

__all__ = ["HardenedHttpToolsProtocol", "build_protocol_class"]

logger = logging.getLogger(__name__)
_access_logger = logging.getLogger(ACCESS_LOGGER)

_SLASH = ord("/")
_NEVER = float("inf")
# Header fields the head rules look at; every other field costs one set lookup.
_FRAMING_HEADERS = frozenset((b"host", b"content-length", b"transfer-encoding", b"expect"))

LINGER_SECONDS = 2.0
"""After an error answer, how long unread request bytes are drained before the socket closes.

Closing a socket with unread input makes the kernel send a reset, which can destroy the answer
before the client reads it; so we half-close, discard what still arrives, and close on the
client's EOF or after this long."""


def build_protocol_class(config: ServerConfig) -> type[asyncio.Protocol]:
    """The protocol class uvicorn should use for ``config``, its limits baked in.

    Pass it as ``uvicorn.Config(http=build_protocol_class(config), ...)``.
    """
    limits: Limits = config.limits

    class Protocol(HardenedHttpToolsProtocol):
        max_request_line = limits.max_request_line
        max_header_size = limits.max_header_size
        max_header_count = limits.max_header_count
        max_body_size = limits.max_body_size
        header_timeout = limits.header_timeout
        body_timeout = limits.body_timeout
        keep_alive_timeout = config.keep_alive_timeout
        max_head_bytes = limits.max_request_line + limits.max_header_size + HEAD_SLACK
        answer_headers = answer_header_block(config.answer_headers)

    return Protocol


class HardenedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with aeros' limits; use :func:`build_protocol_class`.

    The class attributes are the defaults of :class:`aeros.Limits` and ``ServerConfig``.
    """

    max_request_line: int = Limits().max_request_line
    max_header_size: int = Limits().max_header_size
    max_header_count: int = Limits().max_header_count
    max_body_size: int = Limits().max_body_size
    header_timeout: float = Limits().header_timeout
    body_timeout: float = Limits().body_timeout
    keep_alive_timeout: float = 5.0
    max_head_bytes: int = max_request_line + max_header_size + HEAD_SLACK
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
        # uvicorn counts open connections against limit_concurrency, so idle keep-alive clients
        # would cause 503s; aeros counts requests in flight (server.concurrency) instead.
        self.limit_concurrency = None
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
        self._max_target = 0
        self._header_bytes = 0
        self._host: bytes | None = None
        self._content_length: bytes | None = None
        self._transfer_encoding: bytes | None = None
        self._body_bytes = 0
        self._framing_bytes = 0  # bytes received in a body phase since the last body data
        self._reject_status = 0
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
        """uvicorn's graceful-shutdown step, after the queued responses are written."""
        if self._writes.pending:
            self._writes.flush()
        super().shutdown()

    def data_received(self, data: bytes) -> None:
        if self._writes.pending:
            self._writes.flush()
        if self._failed:
            return  # draining after an error answer: nothing more is parsed
        if self._head_pending:
            if not self._head_bytes and self.cycle is not None:
                # A follow-up's head deadline starts with its first byte (the keep-alive
                # timeout applied before it).
                self._head_started = now = self.loop.time()
                if now + self.header_timeout < self._timer_at:
                    self._arm(now + self.header_timeout)
            self._head_bytes += len(data)
        elif self._body_pending:
            self._framing_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self._disarm()  # the WebSocket protocol takes the connection over
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError:
            self._reject(self._reject_status or 400)
            return
        # httptools buffers a header line until it ends, so one endless header is seen only
        # here: everything received while the head is still incomplete is head. Likewise in a
        # chunked body, bytes that carry no body data (chunk extensions, trailer fields) may
        # not exceed a header block.
        if self._head_pending:
            if self._head_bytes > self.max_head_bytes:
                self._reject(431)
        elif self._framing_bytes > self.max_head_bytes:
            self._reject(431)

    # ---- parser callbacks (hot path) -----------------------------------------------------

    def _fail(self, status: int) -> None:
        self._reject_status = status
        raise RejectRequest(status)

    def on_message_begin(self) -> None:
        # uvicorn's, inlined (this runs for every request)
        self.url = b""
        self.expect_100_continue = False
        self.headers = []
        self.scope = {  # type: ignore[typeddict-item]
            "type": "http",
            "asgi": {"version": self.asgi_version, "spec_version": "2.3"},
            "http_version": "1.1",
            "server": self.server,
            "client": self.client,
            "scheme": self.scheme,  # type: ignore[typeddict-item]
            "root_path": self.root_path,
            "headers": self.headers,
            "state": self.app_state.copy(),
        }
        self._header_bytes = 0
        self._host = None
        self._content_length = None
        self._transfer_encoding = None
        self._body_bytes = 0

    def on_url(self, url: bytes) -> None:
        if not self.url:
            # The target may take what the method, two spaces and "HTTP/1.1" leave of the line.
            self._max_target = self.max_request_line - len(self.parser.get_method()) - 10
        self.url += url
        if len(self.url) > self._max_target:
            self._fail(414)

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self._head_pending:
            return  # a trailer field: dropped, never merged into the headers the app has seen
        name = name.lower()
        self._header_bytes += len(name) + len(value)
        if name in _FRAMING_HEADERS:
            self._framing_header(name, value)
        self.headers.append((name, value))

    def _framing_header(self, name: bytes, value: bytes) -> None:
        if name == b"host":
            if self._host is not None:
                self._fail(400)
            self._host = value
        elif name == b"content-length":
            self._content_length = value
        elif name == b"transfer-encoding":
            te = self._transfer_encoding
            self._transfer_encoding = value if te is None else te + b"," + value
        elif value.lower() == b"100-continue":  # expect
            self.expect_100_continue = True

    def on_headers_complete(self) -> None:
        # Sizes are checked once here; memory is bounded meanwhile by data_received's guard.
        count = len(self.headers)
        if count > self.max_header_count or self._header_bytes + 4 * count > self.max_header_size:
            self._fail(431)
        parser = self.parser
        http_version = parser.get_http_version()
        if http_version != "1.1":
            if http_version != "1.0":
                self._fail(505)
            self.scope["http_version"] = http_version
        method = parser.get_method()
        url = self.url
        host = self._host
        if url[0] != _SLASH or b"#" in url:
            status = other_target_status(method, url, host)
            if status:
                self._fail(status)
        if host is None:
            if http_version == "1.1":
                self._fail(400)
        elif not is_valid_host(host):
            self._fail(400)
        has_body = False
        if self._transfer_encoding is not None:
            status = transfer_coding_status(self._transfer_encoding, http_version)
            if status:
                self._fail(status)
            has_body = True
        elif self._content_length is not None:
            # llhttp has checked the digits and refused duplicates and overflow
            length = int(self._content_length)
            if length > self.max_body_size:
                self._fail(413)
            has_body = length > 0
        self._head_pending = False
        self._head_bytes = 0
        self.scope["method"] = method.decode("ascii")
        if parser.should_upgrade() and self._should_upgrade():
            return
        self._start_cycle(url, http_version)
        if has_body:
            self._body_pending = True
            self._framing_bytes = 0
            self._body_at = now = self.loop.time()
            if now + self.body_timeout < self._timer_at:
                self._arm(now + self.body_timeout)

    def _start_cycle(self, url: bytes, http_version: str) -> None:
        """uvicorn's on_headers_complete from parsing the target on (its 503 check dropped,
        its cycle replaced by :class:`aeros.server.http.cycle.LeanCycle`)."""
        parsed_url = httptools.parse_url(url)
        raw_path = parsed_url.path
        path = raw_path.decode("ascii")
        if "%" in path:
            path = urllib.parse.unquote(path)
        self.scope["path"] = self.root_path + path
        self.scope["raw_path"] = self.root_path.encode("ascii") + raw_path
        self.scope["query_string"] = parsed_url.query or b""
        existing_cycle = self.cycle
        self.cycle = cycle = LeanCycle(
            scope=self.scope,
            transport=self.transport,
            flow=self.flow,
            logger=self.logger,
            access_logger=self.access_logger,
            access_log=self.access_log,
            default_headers=self.server_state.default_headers,
            message_event=asyncio.Event(),
            expect_100_continue=self.expect_100_continue,
            keep_alive=http_version != "1.0" and self.parser.should_keep_alive(),
            on_response=self.on_response_complete,
        )
        cycle.writes = self._writes
        if existing_cycle is None or existing_cycle.response_complete:
            self._running = cycle
            self._start_asgi_task(cycle, self.app)
        else:
            # Pipelined requests wait for the ones before them.
            self.flow.pause_reading()
            self.pipeline.appendleft((self.cycle, self.app))

    def on_body(self, body: bytes) -> None:
        self._framing_bytes = 0
        self._body_bytes += len(body)
        if self._body_bytes > self.max_body_size:
            self._fail(413)  # chunked bodies: a known Content-Length was checked at the head
        self._body_at = self.loop.time()
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._head_pending = True
        self._body_pending = False
        super().on_message_complete()

    def on_response_complete(self) -> None:
        """uvicorn's, with the keep-alive deadline kept by the connection timer."""
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        if self._deferred and not self.pipeline:
            # The last request before the rejected one is answered: now the error goes out.
            self._send_error(self._deferred)
            return
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._running = cycle  # type: ignore[assignment]
            self._start_asgi_task(cycle, app)
            return
        now = self.loop.time()
        self._idle_since = now
        if self._head_bytes:
            self._head_started = now  # a pipelined head waited for us, not the other way round
        if now + self.keep_alive_timeout < self._timer_at:
            self._arm(now + self.keep_alive_timeout)

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
