"""Compression layer: encode response bodies with a coding the client accepts.

Per request the layer negotiates a codec from ``Accept-Encoding`` (one memoised dict lookup)
and wraps ``send`` in a :class:`CompressingSender`, which holds ``http.response.start`` until
the first body chunk says what to do. On WebServer's own (lean) connection it wraps nothing:
it leaves a :class:`WholeEncoder` in the scope (:data:`~aeros.types.COMPRESSION`), and the
connection, which has a whole body and its headers at once, applies the same rules in one call
(2.6 us per small JSON response in process instead of 3.4). The rules (:func:`plan`):

- status 1xx/204/206/304, a ``Content-Encoding`` already set, or a mimetype no codec handles:
  sent untouched (``Vary`` too, the response does not vary by coding);
- compressible but the client accepts no coding, or the body is under ``min_size``: sent as it
  is with ``Vary: Accept-Encoding``;
- a whole body (``more_body`` false, or as long as ``Content-Length`` says): encoded at once
  with the exact new ``Content-Length``, a weak ETag and ``Vary``;
- a stream: encoded as it streams, flushed after every chunk so server-sent events and
  progressive HTML reach the client when the app sends them;
- HEAD: the headers a GET would get, without the body work.

The response cache reuses :class:`CompressingSender` to stream a response it does not store,
and builds encoded headers for its entries with :mod:`aeros.compression.headers`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Any, Protocol

from aeros._done import DONE
from aeros.asgi_entry import asgi3
from aeros.compression.codecs import Codec, StreamEncoder
from aeros.compression.headers import ACCEPT_ENCODING, UNTOUCHED_STATUS, encoded_headers
from aeros.compression.negotiate import Negotiator
from aeros.compression.rules import AS_IS, VARY, VARY_FIELD, encode_whole, plan, with_vary
from aeros.errors import ConfigurationError
from aeros.headers import add_vary
from aeros.types import (
    COMPRESSION,
    HEAD_NOTES,
    SKIP_COMPRESSION,
    UNNOTED,
    ASGIApp,
    Headers,
    Message,
    Receive,
    Scope,
    Send,
)

__all__ = ["AppBytesCounter", "CompressingSender", "CompressionMiddleware", "WholeEncoder"]

BUFFER_LIMIT = 1 << 20
"""A body with a ``Content-Length`` up to this many bytes that arrives in several chunks is
collected and encoded at once (exact ``Content-Length``); a larger one is streamed."""


_FIRSTS_REMEMBERED = 64


class AppBytesCounter(Protocol):
    """Where the layer adds up the body bytes the app sent it (the metrics' tally)."""

    app_bytes: int


# sender states
_START, _HOLD, _BUFFER, _STREAM, _PASS, _HEAD = range(6)


class CompressingSender:
    """``send`` wrapper that encodes one response; see the module docstring for the rules.

    Args:
        send: the ASGI ``send`` to forward to.
        codec: the negotiated codec, or None when the client accepts no coding.
        codecs: every codec the app uses (a compressible response gets ``Vary`` even when
            sent unencoded).
        head: the request is HEAD: headers as for GET, no body work.
        counter: adds up the body bytes it is given, before any encoding (the metrics' "app"
            bytes); None: not counted.
    """

    __slots__ = (
        "_buffer",
        "_encoder",
        "_expected",
        "_start",
        "_state",
        "codec",
        "codecs",
        "counter",
        "head",
        "send",
    )

    def __init__(
        self,
        send: Send,
        codec: Codec | None,
        codecs: Sequence[Codec],
        *,
        head: bool = False,
        counter: AppBytesCounter | None = None,
    ) -> None:
        self.send = send
        self.counter = counter
        self.codec = codec
        self.codecs = codecs
        self.head = head
        self._state = _START
        self._start: Message | None = None
        self._expected = -1
        self._buffer: bytearray  # set when a split body is collected (_BUFFER)
        self._encoder: StreamEncoder | None = None

    def __call__(self, message: Message) -> Awaitable[None]:
        # a plain function returning what to await: a response passed on (most of them, and
        # every one left alone once its start is decided) costs no coroutine of its own
        counter = self.counter
        if counter is not None and message["type"] == "http.response.body":
            counter.app_bytes += len(message.get("body", b""))
        state = self._state
        if state == _PASS:
            return self.send(message)
        if state == _START:
            now = self._on_start(message)
            return DONE if now is None else self.send(now)
        if state == _STREAM:
            return self._on_stream(message)
        if state == _HOLD:
            return self._on_first_body(message)
        if state == _BUFFER:
            return self._on_buffer(message)
        # _HEAD: the headers promised an encoding; identity bytes must not follow them
        if message["type"] == "http.response.body" and message.get("body"):
            message = {**message, "body": b""}
        return self.send(message)

    def _on_start(self, message: Message) -> Message | None:
        """Decide from the response start (no await: most responses are decided here); the
        message to send now, or None when it is held until the first body chunk."""
        if message["type"] != "http.response.start":
            return message
        self._state = _PASS
        headers: Any = message.get("headers") or []
        if type(headers) is not list and type(headers) is not tuple:
            # an iterator (ASGI allows any iterable): read by plan() and again when sent
            headers = message["headers"] = list(headers)
        what, length, vary = plan(message["status"], headers, self.codec, self.codecs)
        if what == AS_IS:
            return message
        codec = self.codec
        if what == VARY or codec is None or 0 <= length < codec.min_size:
            message["headers"] = with_vary(headers, vary)
            return message
        if self.head:
            message["headers"] = encoded_headers(headers, codec, None)
            self._state = _HEAD
            return message
        self._start = message
        self._expected = length
        self._state = _HOLD
        return None

    async def _send_start(self, headers: Headers) -> None:
        start = self._start
        assert start is not None  # internal state, set before _HOLD
        start["headers"] = headers
        self._start = None
        await self.send(start)

    async def _send_identity(self, message: Message) -> None:
        start = self._start
        assert start is not None  # internal state, set before _HOLD
        self._state = _PASS
        await self._send_start(add_vary(start.get("headers") or [], ACCEPT_ENCODING))
        await self.send(message)

    async def _send_whole(self, body: bytes, more_body: bool) -> None:
        codec = self.codec
        start = self._start
        assert codec is not None  # internal state
        assert start is not None
        self._state = _PASS
        # vary=True: look for a Vary field to merge into (_on_start did not keep whether it had one)
        headers, body = encode_whole(codec, start.get("headers") or [], body, vary=True)
        await self._send_start(headers)
        await self.send({"type": "http.response.body", "body": body, "more_body": more_body})

    async def _on_first_body(self, message: Message) -> None:
        if message["type"] != "http.response.body":  # pathsend, trailers: leave them be
            await self._send_identity(message)
            return
        body: bytes = message.get("body", b"")
        more_body: bool = message.get("more_body", False)
        expected = self._expected
        if not more_body or len(body) >= expected >= 0:
            await self._send_whole(body, more_body)
        elif 0 <= expected <= BUFFER_LIMIT:
            self._buffer = bytearray(body)
            self._state = _BUFFER
        else:
            await self._begin_stream(body, more_body)

    async def _on_buffer(self, message: Message) -> None:
        if message["type"] != "http.response.body":
            await self._begin_stream(bytes(self._buffer), True)
            await self.send(message)
            return
        buffer = self._buffer
        buffer += message.get("body", b"")
        more_body: bool = message.get("more_body", False)
        if not more_body or len(buffer) >= self._expected:
            self._buffer = bytearray()
            await self._send_whole(bytes(buffer), more_body)

    async def _begin_stream(self, body: bytes, more_body: bool) -> None:
        codec = self.codec
        start = self._start
        assert codec is not None  # internal state
        assert start is not None
        self._encoder = codec.encoder()
        self._state = _STREAM
        await self._send_start(encoded_headers(start.get("headers") or [], codec, None))
        await self._encode_chunk(body, more_body)

    async def _on_stream(self, message: Message) -> None:
        if message["type"] != "http.response.body":
            await self.send(message)
            return
        await self._encode_chunk(message.get("body", b""), message.get("more_body", False))

    async def _encode_chunk(self, body: bytes, more_body: bool) -> None:
        encoder = self._encoder
        assert encoder is not None  # internal state, set with _STREAM
        out = b""
        if body:
            # flush every chunk: the app chose its chunk boundaries (SSE events, HTML parts)
            out = encoder.compress(body) + encoder.flush()
        if not more_body:
            out += encoder.finish()
            self._state = _PASS
            self._encoder = None
        if out or not more_body:
            await self.send({"type": "http.response.body", "body": out, "more_body": more_body})


class WholeEncoder:
    """The layer's decision for one codec (None: the client accepts none), left to aeros' lean
    connection (:data:`~aeros.types.COMPRESSION`): a whole body is encoded in one call, with no
    ``send`` wrapper and no object per request; any other body gets a
    :class:`CompressingSender`. Same rules, same bytes."""

    __slots__ = ("_by_first", "codec", "codecs", "counter")

    def __init__(
        self, codec: Codec | None, codecs: Sequence[Codec], counter: AppBytesCounter | None
    ) -> None:
        self.codec = codec
        self.codecs = codecs
        self.counter = counter
        # what plan() says of a head of two fields, the second Content-Length, by the first
        # (the response LeanResponse builds: its Content-Type, then its Content-Length)
        self._by_first: dict[tuple[bytes, bytes], int] = {}

    def whole(self, status: int, headers: Headers, body: bytes) -> tuple[Headers, bytes]:
        """The headers and body the client gets for this complete response."""
        if self.counter is not None:
            self.counter.app_bytes += len(body)
        if len(headers) == 2 and status >= 200 and status not in UNTOUCHED_STATUS:
            # jsonify's, a returned str's: plan() depends on the first field alone (the
            # second is no Content-Encoding or Vary), so its answer is remembered by it
            first, second = headers
            if second[0] == b"content-length" and type(first) is tuple:  # a list: no key
                what = self._by_first.get(first)
                if what is None:
                    what = self._remember(first, second)
                if what == AS_IS:
                    return headers, body
                if what == VARY:
                    return [first, second, VARY_FIELD], body
                return encode_whole(self.codec, headers, body, False)  # type: ignore[arg-type]
        what, _, vary = plan(status, headers, self.codec, self.codecs)
        if what == AS_IS:
            return headers, body
        codec = self.codec
        if what == VARY or codec is None:
            return with_vary(headers, vary), body
        return encode_whole(codec, headers, body, vary)

    def _remember(self, first: tuple[bytes, bytes], second: tuple[bytes, bytes]) -> int:
        """plan()'s answer for a head of ``first`` and a Content-Length, remembered (up to
        :data:`_FIRSTS_REMEMBERED` first fields, then emptied: an app's content types are
        few)."""
        what, _, _ = plan(200, [first, second], self.codec, self.codecs)
        if len(self._by_first) >= _FIRSTS_REMEMBERED:
            self._by_first.clear()  # one-off fields (a multipart boundary) filled it: start over
        self._by_first[first] = what
        return what

    def sender(self, send: Send) -> Send:
        """``send`` wrapped to encode a response that is not one complete body."""
        return CompressingSender(send, self.codec, self.codecs, counter=self.counter)


class CompressionMiddleware:
    """Compress HTTP response bodies with a coding the client accepts.

    Args:
        app: the inner ASGI app.
        codecs: the codecs to offer, in order of preference (ties in the client's weights go
            to the earlier one). At least one.
        counter: adds up the body bytes the app sends, before encoding, those of the responses
            it passes through untouched (``SKIP_COMPRESSION``) included: the metrics' count of
            what views produced, with no layer of its own. None: not counted.
    """

    def __init__(
        self,
        app: ASGIApp,
        codecs: Sequence[Codec],
        counter: AppBytesCounter | None = None,
        *,
        lean: bool = False,
    ) -> None:
        self.app = app
        self.counter = counter
        self.codecs: tuple[Codec, ...] = tuple(codecs)
        if not self.codecs:
            raise ConfigurationError(
                "CompressionMiddleware(codecs=()) needs at least one codec; leave the layer "
                "out to turn compression off"
            )
        self.negotiate = Negotiator(self.codecs)
        # lean: the app's connection reads COMPRESSION (WebServer on aeros' lean connection);
        # one encoder per codec (by identity: codecs are frozen dataclasses holding a memo)
        self.lean = lean
        self._identity = WholeEncoder(None, self.codecs, counter)
        self._encoders = {
            id(codec): WholeEncoder(codec, self.codecs, counter) for codec in self.codecs
        }

    @asgi3
    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # a plain function: the app's coroutine goes back as it is, with no coroutine of this
        # layer around it (the sender does the work)
        if scope["type"] != "http":
            return self.app(scope, receive, send)
        if scope.get(SKIP_COMPRESSION):  # an outer layer encodes (a response-cache miss)
            if self.counter is None:
                return self.app(scope, receive, send)
            counting = CompressingSender(send, None, self.codecs, counter=self.counter)
            counting._state = _PASS  # counts, changes nothing
            return self.app(scope, receive, counting)
        headers = scope["headers"]
        notes = scope.get(HEAD_NOTES, UNNOTED)
        accept: bytes | None
        if notes[0] is headers and notes[1] == len(headers):
            accept = notes[3]  # found by aeros' server as it parsed the fields
        else:
            accept = None
            for name, value in headers:
                if name == ACCEPT_ENCODING:
                    # several Accept-Encoding lines are one comma-separated list (RFC 9110 5.3)
                    accept = value if accept is None else accept + b"," + value
        # no Accept-Encoding: no coding (and no call to negotiate)
        codec = None if accept is None else self.negotiate(accept)
        if self.lean and scope["method"] != "HEAD":  # the connection encodes: no wrapper
            scope[COMPRESSION] = self._identity if codec is None else self._encoders[id(codec)]
            return self.app(scope, receive, send)
        head = scope["method"] == "HEAD"
        sender = CompressingSender(send, codec, self.codecs, head=head, counter=self.counter)
        return self.app(scope, receive, sender)
