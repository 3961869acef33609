"""Where each request of a connection starts and ends: its cycle made, its task started (as
uvicorn starts it: scheduled, never eagerly; docs/performance.md, round twenty-nine), and the
next one started or the keep-alive deadline armed when its response is out.

:class:`RequestStarts` is a base class of
:class:`~aeros.server.http.protocol.HardenedHttpToolsProtocol`, which sets the state it reads
in its ``__init__``; the head's parsing and limits stay there.
"""

from __future__ import annotations

import contextvars
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from aeros.server.http.answers import ConnectionControl
from aeros.server.http.cycle import LeanCycle
from aeros.server.http.events import MESSAGE_EVENT, PLAIN_EVENT
from aeros.server.http.targets import Target, parse_target

__all__ = ["UVICORNS_MESSAGE_COMPLETE", "RequestStarts"]

UVICORNS_MESSAGE_COMPLETE = (
    PLAIN_EVENT
    and HttpToolsProtocol.on_message_complete.__code__.co_names
    == (
        "parser",
        "should_upgrade",
        "_should_upgrade",
        "cycle",
        "response_complete",
        "more_body",
        "message_event",
        "set",
    )
)
"""Whether :meth:`RequestStarts.on_message_complete` makes uvicorn's steps in place (its call
and ``Event.set``'s fewer a request): while uvicorn's code reads these names and the cycle's
event keeps asyncio's plain state (:data:`~aeros.server.http.events.PLAIN_EVENT`); else it
calls uvicorn's."""


class RequestStarts(ConnectionControl):
    """The start and end of each request of a connection (the protocol's ``__init__`` sets
    the state below)."""

    cycle_class: type[LeanCycle] = LeanCycle  # with the app's global headers for its 500
    targets: dict[bytes, Target]  # the targets parsed so far (aeros.server.http.targets)
    _fresh: bool  # uvicorn's reset_contextvars: each request's task in an empty context
    _context: contextvars.Context  # the connection's: each request's context starts as it

    def _start_cycle(self, url: bytes, http_version: str) -> None:
        """uvicorn's on_headers_complete from parsing the target on (its 503 check dropped,
        its cycle replaced by :class:`aeros.server.http.cycle.LeanCycle`)."""
        scope = self.scope
        target = self.targets.get(url)
        if target is None:
            target = parse_target(self.targets, self.root_path, url)
        scope["path"], scope["raw_path"], scope["query_string"] = target
        existing_cycle = self.cycle
        # by position (LeanCycle's order): a call by keyword cost 4.7 k instructions more
        # read, then called: Python 3.12+ never specializes self.x(...) for a class attribute
        # x that is not a function
        cycle_class = self.cycle_class
        self.cycle = cycle = cycle_class(
            self.scope,
            self.transport,
            self.flow,
            self.logger,
            self.access_logger,
            self.access_log,
            self.server_state.default_headers,
            MESSAGE_EVENT(),  # message_event: asyncio's, its waiters made when awaited
            self.expect_100_continue,
            http_version != "1.0" and self.parser.should_keep_alive(),  # keep_alive
            self.on_response_complete,
        )
        cycle.writes = self._writes
        if existing_cycle is None or existing_cycle.response_complete:
            self._running = cycle
            self._start_asgi_task(cycle, self.app)
        else:
            # Pipelined requests wait for the ones before them.
            self.flow.pause_reading()
            self.pipeline.appendleft((self.cycle, self.app))

    def on_message_complete(self) -> None:
        self._head_pending = True
        self._body_pending = False
        if UVICORNS_MESSAGE_COMPLETE:  # uvicorn's steps, in its order
            current = self.cycle
            if not (
                (self.parser.should_upgrade() and self._should_upgrade())
                or current.response_complete
            ):
                current.more_body = False
                event: Any = current.message_event
                if event._waiters:  # the app awaits the body: woken
                    event.set()
                else:  # Event.set with nothing to wake, in place
                    event._value = True
        else:
            super().on_message_complete()

    def _start_asgi_task(self, cycle: Any, app: Any) -> None:
        """uvicorn's, the task's context a copy of the connection's (an empty one with
        ``reset_contextvars``) rather than of the current one: a pipelined request is started
        from inside the previous request's ``send``, and would copy its context variables."""
        context = contextvars.Context() if self._fresh else self._context.copy()
        task = self.loop.create_task(cycle.run_asgi(app), context=context)
        task.add_done_callback(self.tasks.discard)
        self.tasks.add(task)

    def on_response_complete(self) -> None:
        """uvicorn's, with the keep-alive deadline kept by the connection timer."""
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        if self._deferred and not self.pipeline:
            # The last request before the rejected one is answered: now the error goes out.
            self._send_error(self._deferred)
            return
        if self.flow.read_paused:  # uvicorn's resume_reading, its check in place
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
