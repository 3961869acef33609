"""The HTTP/1.1 protocol aeros runs uvicorn with: httptools plus limits, deadlines and rules.

uvicorn's ``HttpToolsProtocol`` parses with llhttp, which is strict about framing, but it has no
limit on the size of a request line or header block, no deadline for a request head (a client
can hold a connection open forever by trickling bytes: slowloris), and no body size limit. This
subclass adds those, and the head rules of :mod:`aeros.server.http.rules`, answering each
violation with a fixed 4xx/5xx and ``Connection: close`` (see docs/security.md); the deadlines
and those answers are :mod:`aeros.server.http.answers`'.

Everything here runs for every request, so the checks are integer compares and a few byte
tests in the parser callbacks uvicorn already has, and one lazy timer per connection keeps the
head, body and keep-alive deadlines (about 1 µs per request in all: measure_overhead.py in
tests/hardening).
"""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

import httptools

from aeros.headers import KNOWN_HOSTS
from aeros.metrics.meter import Meter
from aeros.server.config import Limits, ServerConfig
from aeros.server.http.cycle import LeanCycle
from aeros.server.http.rules import (
    HASH,
    HEAD_SLACK,
    RejectRequest,
    answer_header_block,
    answer_header_pairs,
    is_valid_host,
    other_target_status,
    transfer_coding_status,
)
from aeros.server.http.starts import RequestStarts
from aeros.server.http.targets import targets_for
from aeros.types import GIVEN_REQUEST_ID, HEAD_NOTES, HEADER_LINES, RESPONSE_DONE

__all__ = ["HardenedHttpToolsProtocol", "build_protocol_class"]

_SLASH = ord("/")
_REQUEST_ID = b"x-request-id"
_ACCEPT_ENCODING = b"accept-encoding"
# Header fields the head rules look at, the request id's (noted for the request-id layer) and
# Accept-Encoding (noted for the compression layer, HEAD_NOTES); every other field costs one
# set lookup.
_NOTED_HEADERS = frozenset(
    (b"host", b"content-length", b"transfer-encoding", b"expect", _REQUEST_ID, _ACCEPT_ENCODING)
)


def build_protocol_class(
    config: ServerConfig, meter: Meter | None = None
) -> type[asyncio.Protocol]:
    """The protocol class uvicorn should use for ``config``, its limits baked in; ``meter``:
    the app's :class:`aeros.metrics.meter.Meter`, which then counts each request.

    Pass it as ``uvicorn.Config(http=build_protocol_class(config), ...)``.
    """
    limits: Limits = config.limits

    class Cycle(LeanCycle):
        answer_pairs = answer_header_pairs(config.answer_headers)
        https_pairs = answer_header_pairs(config.https_answer_headers)
        metered = None if meter is None else (meter, meter.tally)

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
        cycle_class = Cycle

    return Protocol


class HardenedHttpToolsProtocol(RequestStarts):
    """uvicorn's httptools protocol with aeros' limits; use :func:`build_protocol_class`.

    The class attributes are the defaults of :class:`aeros.Limits` and ``ServerConfig``; the
    deadlines and the server's own answers are :class:`ConnectionControl`'s, each request's
    start and end :class:`~aeros.server.http.starts.RequestStarts`'.
    """

    max_request_line: int = Limits().max_request_line
    max_header_size: int = Limits().max_header_size
    max_header_count: int = Limits().max_header_count
    max_body_size: int = Limits().max_body_size
    max_head_bytes: int = max_request_line + max_header_size + HEAD_SLACK

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # uvicorn's (config, server_state, app_state, loop)
        # uvicorn counts open connections against limit_concurrency, so idle keep-alive clients
        # would cause 503s; aeros counts requests in flight (server.concurrency) instead.
        self.limit_concurrency = None
        self._max_target = 0
        self._header_bytes = 0
        self._host: bytes | None = None
        self._content_length: bytes | None = None
        self._transfer_encoding: bytes | None = None
        self._accept_encoding: bytes | None = None
        self._body_bytes = 0
        self._framing_bytes = 0  # bytes received in a body phase since the last body data
        self._reject_status = 0
        # uvicorn's opt-in reset_contextvars: each request's task in an empty context
        self._fresh = bool(getattr(self.config, "reset_contextvars", False))
        self._context = contextvars.copy_context()  # the connection's: each request's starts
        self.targets = targets_for(self.root_path)  # set from uvicorn's config just above

    # ---- input ---------------------------------------------------------------------------

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
            HEADER_LINES: [],  # lines layers add to this response's head (request id, ...)
            GIVEN_REQUEST_ID: None,  # an X-Request-ID's value once parsed
            RESPONSE_DONE: [],  # called when the request ends (access log, ...)
        }
        self._header_bytes = 0
        self._host = None
        self._content_length = None
        self._transfer_encoding = None
        self._accept_encoding = None
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
        # llhttp keeps trailing whitespace, which is not part of a field value (RFC 9110 5.5);
        # uvicorn strips it too
        value = value.rstrip(b" \t")
        self._header_bytes += len(name) + len(value)
        if name in _NOTED_HEADERS:
            # the fields of nearly every request, when first seen, inline (no call)
            if name == b"host" and self._host is None:
                self._host = value
            elif name == _ACCEPT_ENCODING and self._accept_encoding is None:
                self._accept_encoding = value
            else:
                self._noted_header(name, value)
        self.headers.append((name, value))

    def _noted_header(self, name: bytes, value: bytes) -> None:
        if name == b"host":
            if self._host is not None:
                self._fail(400)
            self._host = value
        elif name == b"content-length":
            self._content_length = value
        elif name == b"transfer-encoding":
            te = self._transfer_encoding
            self._transfer_encoding = value if te is None else te + b"," + value
        elif name == _ACCEPT_ENCODING:
            # several lines are one comma-separated list (RFC 9110 5.3), as a scan joins them
            ae = self._accept_encoding
            self._accept_encoding = value if ae is None else ae + b"," + value
        elif name == _REQUEST_ID:
            # the first one, as a scan of the headers would find it; the request-id layer
            # then needs no scan of its own (GIVEN_REQUEST_ID)
            scope = self.scope
            if scope[GIVEN_REQUEST_ID] is None:  # type: ignore[typeddict-item]
                scope[GIVEN_REQUEST_ID] = value  # type: ignore[typeddict-unknown-key]
        elif value.lower() == b"100-continue":  # expect
            self.expect_100_continue = True

    def on_headers_complete(self) -> None:
        # Sizes are checked once here; memory is bounded meanwhile by data_received's guard.
        headers = self.headers
        count = len(headers)
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
        if url[0] != _SLASH or HASH in url:
            status = other_target_status(method, url, host)
            if status:
                self._fail(status)
        if host is None:
            if http_version == "1.1":
                self._fail(400)
        elif host not in KNOWN_HOSTS and not is_valid_host(host):  # a call only for a new one
            self._fail(400)
        has_body = False
        length: int | None = -1  # no framing field: no body
        if self._transfer_encoding is not None:
            status = transfer_coding_status(self._transfer_encoding, http_version)
            if status:
                self._fail(status)
            has_body = True
            length = None
        elif self._content_length is not None:
            # llhttp has checked the digits and refused duplicates and overflow
            length = int(self._content_length)
            if length > self.max_body_size:
                self._fail(413)
            has_body = length > 0
        self._head_pending = False
        self._head_bytes = 0
        scope = self.scope
        scope["method"] = method.decode("ascii")
        # what the layers would otherwise find by scanning the fields (HEAD_NOTES)
        scope[HEAD_NOTES] = (headers, count, length, self._accept_encoding)  # type: ignore[typeddict-unknown-key]
        if parser.should_upgrade() and self._should_upgrade():
            return
        self._start_cycle(url, http_version)
        if has_body:
            self._body_pending = True
            self._framing_bytes = 0
            self._body_at = now = self.loop.time()
            if now + self.body_timeout < self._timer_at:
                self._arm(now + self.body_timeout)

    def on_body(self, body: bytes) -> None:
        self._framing_bytes = 0
        self._body_bytes += len(body)
        if self._body_bytes > self.max_body_size:
            self._fail(413)  # chunked bodies: a known Content-Length was checked at the head
        self._body_at = self.loop.time()
        super().on_body(body)
