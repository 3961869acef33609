"""uvicorn's request/response cycle with a cheaper response head.

The head's lines come from :mod:`aeros.server.http.head`, which remembers the line of each
header pair it has checked (uvicorn checks each with two regex searches, every time).

uvicorn also writes the head and the body with two socket writes (two system calls, the first
of which wakes the client for half a response). LeanCycle holds the head until the first body
message, which the app nearly always sends at once, and writes both together; a head whose
body has not come by the next event-loop iteration (a stream that waits before its first
chunk) is written alone then, so a client still sees headers as soon as uvicorn would show
them. A caller holding the whole response (status, headers, one body) may hand it over in
one call instead (:meth:`LeanCycle.send_whole`, :data:`aeros.types.WHOLE_RESPONSE`). A
response complete in one message is queued in the loop's write batch
(:mod:`aeros.server.http.writes`) and written with the others finished in the same loop
iteration. A request cancelled at shutdown
logs one warning line and gets the protocol's 503 (uvicorn logs a traceback and sends a 500).
When the app's metrics are on, the cycle counts the request itself, from before the app runs
to its end (``metered``), the common case in place; the request then passes their layer by
(``WebServer.server_entry(counted=True)``).
Everything else (later body chunks, the access log, flow control) is uvicorn's code.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

if TYPE_CHECKING:
    from uvicorn._types import HTTPScope
    from uvicorn.protocols.http.flow_control import FlowControl

from aeros.metrics.meter import Meter, clock
from aeros.metrics.tally import SETTLE_AT, Tally
from aeros.server.http.cycle_ends import CycleEnds
from aeros.server.http.events import PLAIN_EVENT
from aeros.server.http.head import HeadLines
from aeros.server.http.uvicorn_init import (
    first_values,
    made,
    parameters,
    same_state,
    uvicorns_init,
)
from aeros.server.http.writes import WriteBatch, write
from aeros.types import (
    CACHE_STATE,
    HEADER_LINES,
    RATE_LIMIT_STATE,
    RESPONSE_DONE,
    ROUTE,
    WHOLE_RESPONSE,
)

__all__ = ["LeanCycle"]

logger = logging.getLogger(__name__)

_JOIN_LIMIT = 16 << 10  # a body up to this size is copied behind the head; larger: writelines


def _nothing() -> None:
    """A finished cycle's ``on_response``: nothing more to tell the protocol."""


class LeanCycle(CycleEnds, HeadLines, RequestResponseCycle):
    """uvicorn's ``RequestResponseCycle``; only the response head is written differently.

    The bytes written, the errors raised for an invalid header (``RuntimeError``) and the
    framing state it leaves (``chunked_encoding``, ``expected_content_length``, ``keep_alive``)
    are uvicorn's; ``tests/server/test_server_cycle.py`` compares the two.
    """

    # every attribute the response path reads or writes is set on the instance by __init__,
    # in one order, none is a class attribute: on Python 3.12+ the interpreter specializes an
    # instance attribute's load and store only when no class attribute of that name shadows
    # it; shadowed, each was a generic lookup through the type (about 20 ns, and a slot of
    # the interpreter's type cache per name; docs/performance.md, round twenty-one)
    _cut_off: tuple[str, bytes | None] | None  # set by the protocol at shutdown

    def __init__(
        self,
        scope: HTTPScope,
        transport: asyncio.Transport,
        flow: FlowControl,
        logger: logging.Logger,
        access_logger: logging.Logger,
        access_log: bool,
        default_headers: list[tuple[bytes, bytes]],
        message_event: asyncio.Event,
        expect_100_continue: bool,
        keep_alive: bool,
        on_response: Callable[..., None],
    ) -> None:
        """uvicorn's (same parameters, in :data:`_PARAMETERS`' order) and the same state, then
        aeros' own; where uvicorn's sets other state (checked at import), uvicorn's own. Called
        with positional arguments: 9.2 k instructions per request with uvicorn's by keyword,
        4.1 k."""
        self.scope = scope
        self.transport = transport
        self.flow = flow
        self.logger = logger
        self.access_logger = access_logger
        self.access_log = access_log
        self.default_headers = default_headers
        self.message_event = message_event
        self.on_response = on_response
        self.keep_alive = keep_alive
        self.waiting_for_100_continue = expect_100_continue
        self.body = bytearray()
        # uvicorn's first values of the state that changes as the response goes out
        self.disconnected = False
        self.more_body = True
        self.response_started = False
        self.response_complete = False
        self.chunked_encoding: bool | None = None
        self.expected_content_length = 0
        # aeros' own
        self._head: bytes | None = None  # a response head not written yet
        self.writes: WriteBatch | None = None  # set by the protocol; None writes at once
        self._cut_off = None
        self.status = 0  # the status of the response sent (0: none), for RESPONSE_DONE
        self.body_size = 0  # the body bytes sent through send (a HEAD answer's too)
        self.server_status = 0  # the status the server answered in the app's place (0: none)
        self.sets_global = False  # the response sets a name of the global headers

    metered: tuple[Meter, Tally] | None = None
    """The app's :class:`~aeros.metrics.meter.Meter` and its tally when its metrics are on (set
    per server: ``cycle_class``): each request is counted here, before and after the app. In a
    tuple: on Python 3.13 a class attribute that holds an instance of a Python class is loaded
    through an instance with no specialization (a generic lookup per request); a tuple's is."""

    def cut_off(self, reason: str, answer: bytes | None) -> None:
        """The server is about to cancel this request: say ``reason`` in the log line, and
        send ``answer`` (a complete 503 that closes) if the app has not started its response."""
        self._cut_off = (reason, answer)

    async def run_asgi(self, app: Any) -> None:
        """uvicorn's, except that a cancelled request (shutdown cut it off) logs one warning
        line, no traceback, and gets the protocol's 503 instead of a 500; the ``send`` passed
        to the app is in its scope while it runs (:data:`~aeros.types.WHOLE_RESPONSE`)."""
        scope = self.scope
        send = self.send
        scope[WHOLE_RESPONSE] = send  # type: ignore[typeddict-unknown-key]
        metered = self.metered
        if metered is not None:  # the app's metrics: Meter.start in place (one frame fewer)
            meter, tally = metered
            tally.started += 1
            scope[ROUTE] = [None, clock(), tally]  # type: ignore[typeddict-unknown-key]
        try:
            result = await app(scope, self.receive, send)
        except asyncio.CancelledError as exc:
            task = asyncio.current_task()
            if self._cut_off is None and task is not None and not task.cancelling():
                # the app let out a CancelledError of something it awaited (a task another
                # part cancelled); this request was not cancelled: an error like any other
                await self._failed(exc)
            else:
                self._cancelled()
        except BaseException as exc:
            await self._failed(exc)
        else:
            if result is not None:
                msg = "ASGI callable should return None, but returned '%s'."
                self.logger.error(msg, result)
                self.status = self.status or 500  # the app failed (0 would say the client left)
                self._close()
            elif not self.response_started and not self.disconnected:
                self.logger.error("ASGI callable returned without starting response.")
                await self.send_500_response()
            elif not self.response_complete and not self.disconnected:
                self.logger.error("ASGI callable returned without completing response.")
                self._close()
        finally:
            self.on_response = _nothing  # uvicorn's lambda: None, with no function made
            # the send refers to this cycle, which holds the scope: kept, a reference cycle
            scope.pop(WHOLE_RESPONSE, None)  # type: ignore[typeddict-item]
            done: Any = scope.get(RESPONSE_DONE)
            if done:
                # the layers' callbacks, here rather than in a method (one frame fewer a
                # request); one that fails is logged, not raised (the response is out). Then
                # let go of them: they refer to the scope that holds them, and kept, every
                # request would leave a reference cycle for the garbage collector (13 us a
                # request with metrics on, served).
                status = self.status
                size = self.body_size
                for callback, its_scope in done:
                    try:
                        callback(its_scope, status, size)
                    except Exception:
                        logger.exception("a response-done callback failed")
                done.clear()
            if metered is not None:
                # Meter.count's common case in place (one frame fewer): a request with no
                # cache or rate-limit result whose labels have a list of latencies already
                # gets its latency appended to it. A list exists only after Meter.count made
                # it (which scheduled the flush), for labels as it makes them (a known
                # method, a route, a status): a request routed nowhere (route None) or not
                # answered (status 0) finds none and goes there, as any other does. A request
                # with no box (a probe, a scrape: uncounted) is not counted.
                try:
                    box: Any = scope.get(ROUTE)
                    if box is not None:
                        times = (
                            None
                            if CACHE_STATE in scope or RATE_LIMIT_STATE in scope
                            else tally.pending.get((scope["method"], box[0], self.status))
                        )
                        if times is None:
                            meter.count(scope, self.status, self.body_size)  # type: ignore[arg-type]
                        else:
                            times.append(clock() - box[1])
                            tally.wire_bytes += self.body_size
                            if len(times) >= SETTLE_AT:
                                tally.settle()
                except Exception:  # the response is out: logged, as a callback's failure is
                    logger.exception("the metrics' count failed")

    async def receive(self) -> Any:
        """uvicorn's, without awaiting the body event when it is already set (the body has
        come, as a GET's has by the time its app asks): no coroutine of ``Event.wait``."""
        event: Any = self.message_event
        if (
            (event._value if PLAIN_EVENT else event.is_set())  # is_set, in place
            and not self.waiting_for_100_continue
            and not self.disconnected
            and not self.response_complete
        ):
            # uvicorn's steps, in its order; its wait would return at once
            if self.flow.read_paused:  # uvicorn's resume_reading, its check in place
                self.flow.resume_reading()
            if PLAIN_EVENT:
                event._value = False  # clear, in place
            else:
                event.clear()
            message = {
                "type": "http.request",
                "body": bytes(self.body),
                "more_body": self.more_body,
            }
            self.body = bytearray()
            return message
        return await super().receive()

    async def send(self, message: dict[str, object]) -> None:  # type: ignore[override]
        head = self._head
        if head is not None:
            if (
                message["type"] == "http.response.body"
                and not self.disconnected
                and not self.flow.write_paused
            ):
                self._head = None
                self._write_first_body(
                    head,
                    message.get("body", b""),  # type: ignore[arg-type]
                    message.get("more_body", False),  # type: ignore[arg-type]
                )
                return
            self._flush_head()
        if (
            self.response_started
            or message["type"] != "http.response.start"
            or self.access_log
            or self.disconnected
            or self.flow.write_paused
        ):
            if self.server_status:  # the server answered in the app's place: nothing goes out
                pass
            elif message["type"] == "http.response.body":
                self.body_size += len(message.get("body", b""))  # type: ignore[arg-type]
            elif message["type"] == "http.response.start" and not self.response_started:
                self.status = message["status"]  # type: ignore[assignment]
                message = _with_lines(message, self.scope.get(HEADER_LINES))  # type: ignore[arg-type]
            await super().send(message)
            return
        self._head = self._start_head(message["status"], message.get("headers"))  # type: ignore[arg-type]
        asyncio.get_running_loop().call_soon(self._flush_head)

    def send_whole(self, status: int, headers: Any, body: bytes) -> bool:
        """A response start and its only body message at once (:data:`~aeros.types.
        WHOLE_RESPONSE`): written as :meth:`send` writes the two, without holding the head for
        a loop iteration. False, with nothing done, where the messages must go through
        :meth:`send` one by one (a response already started, the access log, a client gone,
        writes paused)."""
        if self.response_started or self.access_log or self.disconnected or self.flow.write_paused:
            return False
        self._write_first_body(self._start_head(status, headers), body, False)
        return True

    def _flush_head(self) -> None:
        """Write a head whose body did not follow it within one loop iteration."""
        head = self._head
        if head is not None:
            self._head = None
            if not self.disconnected and not self.transport.is_closing():
                self.transport.write(head)

    def _write_first_body(self, head: bytes, body: bytes, more_body: bool) -> None:
        """uvicorn's body branch for the first body message, its bytes written behind ``head``.

        A response complete with this message on a connection that stays open goes to the
        loop's :class:`WriteBatch` (when the protocol gave the cycle one).
        """
        self.body_size += len(body)
        data: bytes | tuple[bytes, bytes]
        if self.scope["method"] == "HEAD":
            self.expected_content_length = 0
            data = head
        elif self.chunked_encoding:
            content = [head, b"%x\r\n" % len(body), body, b"\r\n"] if body else [head]
            if not more_body:
                content.append(b"0\r\n\r\n")
            data = b"".join(content)
        else:
            if len(body) > self.expected_content_length:
                self.transport.write(head)
                raise RuntimeError("Response content longer than Content-Length")
            self.expected_content_length -= len(body)
            data = head + body if len(body) <= _JOIN_LIMIT else (head, body)
        if (
            more_body
            or self.expected_content_length != 0
            or self.writes is None
            or not self.keep_alive  # closed right after: on_response must see it closing
        ):
            write(self.transport, data)
        else:
            self.writes.add(self.transport, data)
        if not more_body:
            if self.expected_content_length != 0:
                raise RuntimeError("Response content shorter than Content-Length")
            self.response_complete = True
            event: Any = self.message_event
            if not PLAIN_EVENT or event._waiters:  # the app awaits a disconnect: woken
                event.set()
            else:  # Event.set with nothing to wake, in place
                event._value = True
            if not self.keep_alive:
                self.transport.close()
            self.on_response()


def _with_lines(message: dict[str, object], lines: list[bytes] | None) -> dict[str, object]:
    """``message`` (a response start) with the :data:`~aeros.types.HEADER_LINES` of its scope
    as header pairs, for uvicorn's own ``send`` (an item may hold several lines)."""
    if not lines:
        return message
    # read twice below: an iterator (ASGI allows any iterable) is read once, here
    headers: list[Any] = list(message.get("headers") or ())  # type: ignore[call-overload]
    pairs = [
        pair
        for item in lines
        for pair in (
            [tuple(line.split(b": ", 1)) for line in item[:-2].split(b"\r\n")]
            if type(item) is bytes
            else item.pairs_for(headers)  # type: ignore[attr-defined]  # the global headers
        )
    ]
    return {**message, "headers": [*headers, *pairs]}


_PARAMETERS = parameters(LeanCycle)
"""LeanCycle's parameters in order (uvicorn's names), which the protocol passes by position."""
# a value of its own for each parameter: one stored under another name shows
_STATES = made(LeanCycle, **{name: object() for name in _PARAMETERS})
_FIRST_VALUES = first_values(LeanCycle, _PARAMETERS)
"""LeanCycle's first values of the state it sets itself (immutable); the fallback sets those
uvicorn's ``__init__`` did not."""
_uvicorns_init = uvicorns_init(_PARAMETERS, _FIRST_VALUES)


def _same_state() -> bool:
    """Whether LeanCycle's ``__init__`` gave a new cycle, at import, every attribute uvicorn's
    ``__init__`` sets, with the same values."""
    return same_state(_STATES)


if not _same_state():  # a uvicorn that sets more or other state: its constructor
    LeanCycle.__init__ = _uvicorns_init  # type: ignore[method-assign]
    logger.info("uvicorn's RequestResponseCycle sets other state: each cycle made by it")
