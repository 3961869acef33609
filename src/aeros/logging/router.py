"""Which logger goes where: aeros', uvicorn's, Quart's and the app's loggers, onto one queue.

While logging is installed (:mod:`aeros.logging.config`), every routed logger gets one
:class:`logging.handlers.QueueHandler` and stops propagating; uvicorn's and Quart's own
handlers are set aside (their lines would double) and uvicorn's ``uvicorn.error`` events are
shown as ``aeros.server``. When logging is removed, each logger gets back its level,
propagation and handlers.
"""

from __future__ import annotations

import logging
import queue
import threading
from logging.handlers import QueueHandler

from aeros.logging.context import RequestIdFilter
from aeros.logging.formatters import AccessEntry

__all__ = ["ROUTED", "SERVER_LOGGER", "Router", "route_logger", "router"]

ROUTED = ("aeros", "uvicorn", "quart")
"""Loggers always routed, besides the app's own (added by :func:`route_logger`)."""
# Of those, the libraries whose own default handlers are set aside while aeros logs.
_FOREIGN = frozenset({"uvicorn", "quart"})

SERVER_LOGGER = "aeros.server"
"""The name uvicorn's "uvicorn.error" records are shown under: aeros' server, not an error."""

# uvicorn (and the websockets library it hands its logger to) logs every WebSocket's handshake,
# opening and closing on "uvicorn.error" at INFO: access-log lines that duplicate aeros' own
# (one per connection, in aeros.access) and that appear even with the access log off.
_UVICORN_ACCESS_LIKE = frozenset(
    {
        '%s - "WebSocket %s" [accepted]',
        '%s - "WebSocket %s" 403',
        '%s - "WebSocket %s" %d',
        "connection open",
        "connection closed",
    }
)


class _QueueHandler(QueueHandler):
    """Put records on the queue as they are: formatting happens in the listener thread."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        if record.args:  # render now: the arguments may change before the listener runs
            record.msg = record.getMessage()
            record.args = None
        return record


class _ServerEvents(logging.Filter):
    """Drop uvicorn's per-WebSocket lines; show its other events as ``aeros.server``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name != "uvicorn.error":
            return True
        if record.msg in _UVICORN_ACCESS_LIKE:
            return False
        record.name = SERVER_LOGGER  # "uvicorn.error" says error for "Application startup"
        return True


class Router:
    """The routed loggers, the queue they write to, and what they had before aeros took over."""

    def __init__(self) -> None:
        self.extra: set[str] = set()  # names added by route_logger; they survive a fork
        self.reset()

    def reset(self) -> None:
        """Start over with a new queue (a forked child: the listener thread is not there)."""
        self.lock = threading.Lock()
        # records, and access entries queued as they are (put_access)
        self.queue: queue.SimpleQueue[logging.LogRecord | AccessEntry] = queue.SimpleQueue()
        self.handler = _QueueHandler(self.queue)
        self.handler.addFilter(_ServerEvents())
        self.handler.addFilter(RequestIdFilter())  # in the logging thread: the request's id
        self.level: int | None = None  # routing is on while this is set
        # logger name -> (level, propagate, handlers) before aeros took it over
        self.saved: dict[str, tuple[int, bool, list[logging.Handler]]] = {}

    def put_access(self, entry: AccessEntry, logger: logging.Logger) -> bool:
        """Queue an access entry of ``logger`` (``aeros.access``, level INFO) as it is when
        logging it would reach this router's handler and nothing else (the listener formats
        it for the access sinks without a record); False: log a record of it with
        ``logger.handle``.

        What ``Logger.handle`` would check is checked here (the logger not disabled, no filter
        on it, and, walking up as ``callHandlers`` does, the first logger with handlers has
        this router's alone and does not propagate); the calls in between cost the event loop
        ~1.5 us per request. The handler's own filters concern server records (uvicorn's
        lines, the request id a console line reads from the record), never an access record,
        which carries its fields, the id included, in its entry. An entry on the queue also
        saves making the record: 16 fields copied per request, on the event loop.
        """
        if self.level is None or logger.disabled or logger.filters:
            return False
        current: logging.Logger | None = logger
        while current is not None:
            handlers = current.handlers
            if handlers:
                if len(handlers) != 1 or handlers[0] is not self.handler or current.propagate:
                    return False
                if self.handler.level > logging.INFO:
                    return False
                self.queue.put_nowait(entry)
                return True
            current = current.parent if current.propagate else None
        return False

    def route(self, name: str) -> None:
        """Add a logger to the routed set (attached now if routing is on)."""
        with self.lock:
            self.extra.add(name)
            if self.level is not None:
                self._attach(name, self.level)

    def names(self) -> list[str]:
        """Every routed logger name; a child of a routed logger is left to propagation."""
        names = list(ROUTED)
        for name in sorted(self.extra):
            if not any(name == top or name.startswith(top + ".") for top in names):
                names.append(name)
        return names

    def start(self, level: int) -> None:
        """Route every logger to the queue at ``level``."""
        with self.lock:
            self.level = level
            for name in self.names():
                self._attach(name, level)

    def stop(self) -> None:
        """Give every routed logger back its level, propagation and handlers."""
        with self.lock:
            self.level = None
            for name, (level, propagate, handlers) in self.saved.items():
                logger = logging.getLogger(name)
                logger.removeHandler(self.handler)
                for handler in handlers:
                    if handler not in logger.handlers:
                        logger.addHandler(handler)
                logger.setLevel(level)
                logger.propagate = propagate
            self.saved.clear()

    def after_fork(self) -> None:
        """In a forked child: undo the routing and start over; the lock may be held by a
        thread that does not exist there, and the listener thread is gone."""
        self.lock = threading.Lock()
        self.stop()
        self.reset()

    def _attach(self, name: str, level: int) -> None:
        logger = logging.getLogger(name)
        if name not in self.saved:
            self.saved[name] = (logger.level, logger.propagate, list(logger.handlers))
            if name in _FOREIGN:
                logger.handlers.clear()  # e.g. uvicorn's own dictConfig: lines would double
        logger.setLevel(level)
        logger.propagate = False
        if self.handler not in logger.handlers:
            logger.addHandler(self.handler)


router = Router()
"""The process's one router (:mod:`aeros.logging.config` starts and stops it)."""


def route_logger(name: str) -> logging.Logger:
    """Return logger ``name``, routed to aeros' handlers whenever logging is configured."""
    if name not in router.extra:  # unlocked fast path: WebServer.logger calls this each time
        router.route(name)
    return logging.getLogger(name)
