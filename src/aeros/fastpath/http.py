"""A lean ASGI HTTP connection for WebServer: Quart's own, without per-request tasks.

Quart's :class:`quart.asgi.ASGIHTTPConnection` starts two tasks per request (one reads the
body, one runs the app), waits on both, and wraps sending in ``asyncio.wait_for`` (which on
Python 3.11 starts a third task). It also sends every body as one message with
``more_body=True`` followed by an empty closing message.

:class:`LeanHTTPConnection` keeps Quart's behaviour and does less work:

- A request without a body, or with a small body of known length, is read in the server's own
  task before the view runs, and the app runs there too: no task, no ``asyncio.wait``. Bodies
  that are chunked, larger than :data:`INLINE_BODY_LIMIT` or sent over HTTP/2 take Quart's own
  path, which hands the body to the view while it arrives; so does a small body that has not
  all come within ``BODY_TIMEOUT`` (a client that stalls), with what came so far: a view that
  reads it then gets 408 after ``BODY_TIMEOUT`` more, one that does not answers at once.
  On aeros' server, with its own ``send`` and ``receive`` passed in (no layer wraps either), a
  request whose head has no body (no ``Transfer-Encoding`` and no ``Content-Length``, or 0) is
  not received at all: its body is empty, and the connection does what ``receive()`` would
  do besides (reading resumed if pipelining paused it; no view run for a client that left).
  A request that expects ``100 Continue`` is received, which sends it.
- A complete body (``bytes``, ``str``, JSON) goes out as one ``http.response.body`` message
  with ``more_body=False``, encoded here when the compression layer left its encoder in the
  scope (:data:`~aeros.types.COMPRESSION`) instead of wrapping ``send``.
- The response timeout (``RESPONSE_TIMEOUT`` or ``Response.timeout``) arms a timer only when
  sending a complete body has to wait for the client (``asyncio.timeout`` costs ~3.6 us per
  request even when nothing waits), and never when it is ``None``.
- A streaming body is sent while a watcher listens for the client going away, as Quart does,
  so an endless event stream stops when its client disconnects.

One difference remains: a view that is still computing when its client disconnects runs to
completion (as in Starlette and Flask) instead of being cancelled; its response is dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar, Literal, cast
from urllib.parse import urlparse

from quart.asgi import ASGIHTTPConnection, _handle_exception, _normalise_path
from quart.utils import cancel_tasks, raise_task_exceptions
from quart.wrappers.response import DataBody, Response
from werkzeug.datastructures import Headers

from aeros.fastpath.awaiting import Resume, replaying, send_two, wait_for_disconnect
from aeros.fastpath.dispatch import LEAN_STATE, handle_request, note_route, uses_lean_dispatch
from aeros.fastpath.request import LeanRequest, complete_requests_match, scope_headers
from aeros.fastpath.response import encode_header_pairs
from aeros.types import (
    COMPRESSION,
    HEAD_NOTES,
    ROUTE,
    UNNOTED,
    WHOLE_RESPONSE,
    ResponseEncoder,
    Send,
)

if TYPE_CHECKING:
    from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable
    from quart.wrappers import Request

__all__ = ["INLINE_BODY_LIMIT", "LeanHTTPConnection"]

INLINE_BODY_LIMIT = 64 * 1024
"""Bodies up to this many bytes (by ``Content-Length``) are read before the view runs."""

_INLINE_HTTP_VERSIONS = frozenset({"1.0", "1.1"})
_NO_OWNER: Any = object()  # the owner of a receive that is not a bound method: no cycle


def inline_body_length(scope: Any) -> int | None:
    """How much body to read before the view runs: its length if known, -1 if unknown, else None.

    None (take Quart's streaming path) for chunked bodies, bodies over
    :data:`INLINE_BODY_LIMIT` and HTTP/2 or later, where a view may read while the body arrives.
    -1 means no ``Content-Length``: on HTTP/1.x there is then normally no body at all, but an
    in-process caller (Quart's test client) may still send one, so it is read all the same.
    """
    if scope["http_version"] not in _INLINE_HTTP_VERSIONS:
        return None
    length = -1
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                return None
        elif name == b"transfer-encoding":
            return None
    return length if length <= INLINE_BODY_LIMIT else None


class LeanHTTPConnection(ASGIHTTPConnection):
    """Quart's ASGI HTTP connection with no per-request tasks (see the module docstring)."""

    READS_COMPRESSION: ClassVar[bool] = True
    """It encodes responses for the compression layer (:data:`~aeros.types.COMPRESSION`):
    WebServer's compression layer then wraps no ``send``."""

    async def __call__(self, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        scope = self.scope
        headers = scope["headers"]
        notes: Any = scope.get(HEAD_NOTES, UNNOTED)
        length: int | None
        cycle: Any  # aeros' server's request/response cycle, whose send and receive these are
        # send is the server's own, with no layer between (WHOLE_RESPONSE): read once
        own_send = scope.get(WHOLE_RESPONSE) is send
        if (
            notes[0] is headers
            and notes[1] == len(headers)
            and (length := notes[2]) is not None
            and length < 1
            and own_send
            and (cycle := send.__self__) is getattr(receive, "__self__", _NO_OWNER)  # type: ignore[attr-defined]
            and not cycle.waiting_for_100_continue  # receive() sends the 100 Continue
        ):
            # aeros' server parsed the head (HEAD_NOTES): no Transfer-Encoding and no
            # Content-Length, or 0, so the body is empty and complete; its own send and
            # receive are here (no layer between): nothing to receive, a coroutine and a
            # message fewer. What its receive() would do besides:
            flow = cycle.flow
            if flow.read_paused:  # read on (paused behind pipelined requests), so a client
                flow.resume_reading()  # that leaves meanwhile is seen
            if cycle.disconnected:
                return  # the client left before the view ran
            request = self._complete_request(send, b"")
        else:
            data = await self._body(notes, receive, send)
            if data is None:
                return
            request = self._complete_request(send, data)
        # the response, made here rather than in a coroutine of its own (one fewer a request)
        app = self.app
        try:
            # uses_lean_dispatch(app), its decision read in place once made (a call fewer)
            state = app.__dict__.get(LEAN_STATE, app)
            if state is None or (state is app and uses_lean_dispatch(app)):
                response = await handle_request(app, request)
            else:
                response = await app.handle_request(request)
        except Exception as error:
            response = await _handle_exception(app, error)

        body = response.response
        # what the compression layer left this connection to do (COMPRESSION), if anything
        encoder: ResponseEncoder | None = scope.get(COMPRESSION)  # type: ignore[assignment]
        if type(body) is DataBody:
            data = body.data
            if body.begin != 0 or body.end != len(data):
                data = data[body.begin : body.end]
            status = response.status_code
            encoded = encode_header_pairs(response.headers)
            if encoder is not None:  # the compression layer's work, in one call
                encoded, data = encoder.whole(status, encoded, data)
            # sent_whole's check and call, written in (a call fewer a request): aeros' server
            # writes it as the two messages below when its send comes with no layer between
            if own_send and send.__self__.send_whole(status, encoded, data):  # type: ignore[attr-defined]
                return
            start = {"type": "http.response.start", "status": status, "headers": encoded}
            end = {"type": "http.response.body", "body": data, "more_body": False}
            sending = send_two(send, start, end)
            # the response timeout: only where sending may wait for the client
            timeout = _response_timeout(app, response)
            if timeout is None:
                await sending
                return
            # Run the sends up to their first wait. Usually there is none (the server buffers
            # the bytes), so no timer is armed at all; a client too slow to take the bytes
            # makes the server wait, and only then does the rest run under the timeout.
            try:
                waiting_on = sending.send(None)
            except StopIteration:
                return
            try:
                async with asyncio.timeout(timeout):
                    await Resume(sending, waiting_on)
            except TimeoutError:
                pass
            return

        # A streaming body: send it while watching for the client to go away, as Quart does.
        if encoder is not None:
            send = _encoding(encoder, send)
        sender = asyncio.ensure_future(
            self._send_with_timeout(send, response, _response_timeout(app, response))
        )
        watcher = asyncio.ensure_future(wait_for_disconnect(receive))
        done, pending = await asyncio.wait([sender, watcher], return_when=asyncio.FIRST_COMPLETED)
        await cancel_tasks(pending)
        raise_task_exceptions(done)

    async def _body(
        self, notes: Any, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> bytes | None:
        """The request's whole body, received before the view runs; None when the request
        was served otherwise (Quart's path: a chunked body, one too large, HTTP/2, or one that
        stalls past ``BODY_TIMEOUT``) or the client left first."""
        scope = self.scope
        length: int | None
        if notes[0] is scope["headers"] and notes[1] == len(scope["headers"]):
            # aeros' server found the framing fields as it parsed them (an HTTP/1.x request)
            length = notes[2]
            if length is not None and length > INLINE_BODY_LIMIT:
                length = None
        else:
            length = inline_body_length(scope)
        if length is None:
            await self._quarts_path(receive, send)
            return None
        # A body that has come (a GET's, from another server or through a layer that wraps
        # send or receive) is given at once: this receive() does not wait.
        message = await receive()
        if message["type"] != "http.request":
            return None  # as in Quart: the client left before the view ran
        data = message.get("body", b"")
        if message.get("more_body", False):
            chunks = [data]
            try:  # the rest, within BODY_TIMEOUT (armed only here: most bodies come whole)
                async with asyncio.timeout(self.app.config["BODY_TIMEOUT"]):
                    while True:
                        message = await receive()
                        if message["type"] != "http.request":
                            return None
                        chunks.append(message.get("body", b""))
                        if not message.get("more_body", False):
                            break
            except TimeoutError:  # a client that stalls: Quart's path, with what came so far
                so_far = {"type": "http.request", "body": b"".join(chunks), "more_body": True}
                await self._quarts_path(replaying(so_far, receive), send)
                return None
            data = b"".join(chunks)
        return data

    async def _quarts_path(self, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        """Quart's own connection: the view runs while the body arrives (two tasks)."""
        encoder: ResponseEncoder | None = self.scope.get(COMPRESSION)  # type: ignore[assignment]
        if encoder is not None:  # the compression layer's send wrapper
            send = _encoding(encoder, send)
        await super().__call__(receive, send)

    def _complete_request(self, send: ASGISendCallable, data: bytes) -> Request:
        """The request for this scope and its whole body ``data``.

        :meth:`LeanRequest.complete` when the app's request class has it and builds what
        Quart's constructor builds (checked once per class), else Quart's constructor.
        """
        request_class = self.app.request_class
        lean = _LEAN_CONSTRUCTORS.get(request_class)
        if lean is None:
            lean = _lean_constructor(request_class, self._request_arguments(send))
        if lean is not False:
            scope = self.scope
            config = self.app.config
            path, root_path = _target(scope)
            headers: Headers | None = None  # made on first access, on HTTP/1.1
            if scope["http_version"] < "1.1":  # HTTP/1.0 gets its default Host now
                headers = _headers_for(scope, config)
            # the arguments spelled out: no tuple and dict of them to unpack per request
            return lean(  # type: ignore[no-any-return]
                scope["method"],
                scope["scheme"],
                path,
                scope["query_string"],
                headers,
                root_path,
                scope["http_version"],
                scope,
                data,
                max_content_length=config["MAX_CONTENT_LENGTH"],
                body_timeout=config["BODY_TIMEOUT"],
                send_push_promise=partial(self._send_push_promise, send),
            )
        args, kwargs = self._request_arguments(send)
        request: Request = request_class(*args, **kwargs)
        # Quart 0.22 and 0.23 store bodies differently; set_result is the call both have.
        request.body.set_result(data)
        return request

    def _create_request_from_scope(self, send: ASGISendCallable) -> Request:
        """Quart's request for this scope, with the headers converted in one pass."""
        args, kwargs = self._request_arguments(send)
        return self.app.request_class(*args, **kwargs)

    def _request_arguments(self, send: ASGISendCallable) -> tuple[tuple[Any, ...], Any]:
        """The arguments of Quart's request constructor for this scope."""
        scope = self.scope
        config = self.app.config
        path, root_path = _target(scope)
        args = (
            scope["method"],
            scope["scheme"],
            path,
            scope["query_string"],
            _headers_for(scope, config),
            root_path,
            scope["http_version"],
            scope,
        )
        kwargs = {
            "max_content_length": config["MAX_CONTENT_LENGTH"],
            "body_timeout": config["BODY_TIMEOUT"],
            "send_push_promise": partial(self._send_push_promise, send),
        }
        return args, kwargs

    async def handle_request(self, request: Request, send: ASGISendCallable) -> None:
        """Quart's (its own path: streamed or chunked bodies), then the route noted for the
        metrics as the lean dispatch notes it."""
        try:
            await super().handle_request(request, send)
        finally:
            box = self.scope.get(ROUTE)
            if box is not None:
                note_route(box, request)

    async def _send_with_timeout(
        self, send: ASGISendCallable, response: Any, limit: float | None
    ) -> None:
        try:
            async with asyncio.timeout(limit):
                await self._send_response(send, response)
        except TimeoutError:
            pass


def _response_timeout(app: Any, response: Any) -> float | None:
    """How long sending ``response`` may take: its own ``timeout`` (a Quart ``Response``'s,
    unless Ellipsis), else the app's ``RESPONSE_TIMEOUT``; None: no limit."""
    if isinstance(response, Response) and response.timeout is not Ellipsis:
        return cast(float | None, response.timeout)
    return cast(float | None, app.config["RESPONSE_TIMEOUT"])


def _target(scope: Any) -> tuple[str, str]:
    """The request's path and root path as Quart's connection works them out."""
    path = scope["path"]
    path = path if path[0] == "/" else urlparse(path).path
    root_path = scope.get("root_path", "")
    if root_path != "":
        path = _normalise_path(path, root_path)
    return path, root_path


def _headers_for(scope: Any, config: Any) -> Headers:
    """The scope's headers as Quart's request has them (HTTP/1.0: a default ``Host``)."""
    headers = scope_headers(scope)
    if scope["http_version"] < "1.1":
        headers.setdefault("Host", config["SERVER_NAME"] or "")
    return headers


_LEAN_CONSTRUCTORS: dict[type, Callable[..., Any] | Literal[False]] = {}
"""Request class -> its ``complete`` (bound once: Python 3.12+ never specializes the load of a
classmethod from a class, and it would make a bound method per request), or False: Quart's
constructor builds its requests."""


def _lean_constructor(request_class: Any, arguments: Any) -> Callable[..., Any] | Literal[False]:
    """``request_class.complete`` if it may build this app's requests, else False (decided
    once per class)."""
    known = _LEAN_CONSTRUCTORS.get(request_class)
    if known is None:
        lean = (
            isinstance(request_class, type)
            and issubclass(request_class, LeanRequest)
            and complete_requests_match(request_class, *arguments)
        )
        known = _LEAN_CONSTRUCTORS[request_class] = request_class.complete if lean else False
    return known


def _encoding(encoder: ResponseEncoder, send: ASGISendCallable) -> ASGISendCallable:
    """``send`` wrapped by the compression layer's sender (for bodies sent in parts)."""
    return cast("ASGISendCallable", encoder.sender(cast("Send", send)))
