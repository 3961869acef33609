"""Log configuration for aeros: coloured console output, access-log formats, queued log I/O.

Nothing here runs on import. :func:`configure_logging` (called by ``run_server()`` and the CLI)
routes the loggers of aeros, uvicorn, Quart and the app to one queue; a listener thread formats
and writes, so a slow terminal or disk never blocks the event loop. It is reference counted:
servers started in threads share one listener, and the last ``stop()`` removes everything.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from logging.handlers import QueueHandler, QueueListener
from typing import Any

from aeros.errors import ConfigurationError
from aeros.logging.formatters import (
    ACCESS_FORMATS,
    AccessEntry,
    AccessFormatter,
    ConsoleFormatter,
    escape,
    use_color,
)

__all__ = [
    "ACCESS_FORMATS",
    "ACCESS_LOGGER",
    "LEVELS",
    "SERVER_ANSWER",
    "SERVER_LOGGER",
    "AccessEntry",
    "AccessFormatter",
    "ConsoleFormatter",
    "LogConfig",
    "LoggingHandle",
    "configure_logging",
    "escape",
    "log_access",
    "log_banner",
    "route_logger",
    "use_color",
]

ACCESS_LOGGER = "aeros.access"
"""Name of the logger that receives one record per request."""
SERVER_ANSWER = "aeros.server_answer"
"""ASGI scope key the server sets to ``(status, bytes sent)`` when it answers a request the app
is handling in the app's place (a 413 for a chunked body over the limit, a 503 when shutdown
cuts the request off): the access-log line shows that answer, not what the app tried to send."""
LEVELS = {"critical": 50, "error": 40, "warning": 30, "info": 20, "debug": 10, "trace": 5}
"""Level names accepted by ``log_level`` (``trace`` is uvicorn's level 5)."""

# Loggers aeros routes, besides the app's own (added by route_logger).
_ROUTED = ("aeros", "uvicorn", "quart")
# Of those, the libraries whose own default handlers are set aside while aeros logs.
_FOREIGN = frozenset({"uvicorn", "quart"})


@dataclass(frozen=True, slots=True, kw_only=True)
class LogConfig:
    """How aeros logs; built by :class:`aeros.WebServer` from its ``log_*`` arguments."""

    level: str | int = "info"
    """Level of the aeros, server and app loggers: a name in :data:`LEVELS` or a number."""
    color: bool | None = None
    """True/False force coloured/plain console output; None: ``NO_COLOR`` > ``FORCE_COLOR`` >
    whether the stream is a terminal."""
    access_log: bool = True
    """Write one access-log line per request (to stdout, and ``access_log_file`` if set)."""
    access_log_format: str = "default"
    """One of :data:`ACCESS_FORMATS`."""
    access_log_file: str | None = None
    """Also append the access log to this file."""
    log_file: str | None = None
    """Also append the server log (everything but the access log) to this file."""

    def __post_init__(self) -> None:
        level = self.level
        if isinstance(level, str) and level.lower() in LEVELS:
            object.__setattr__(self, "level", level.lower())
        elif isinstance(level, bool) or not isinstance(level, int) or level < 0:
            raise ConfigurationError(
                f"log_level={level!r} is not a level; use one of {tuple(LEVELS)} or an int >= 0"
            )
        if self.access_log_format not in ACCESS_FORMATS:
            raise ConfigurationError(
                f"access_log_format={self.access_log_format!r} is not a format; "
                f"use one of {ACCESS_FORMATS}"
            )
        for name in ("color", "access_log"):
            value = getattr(self, name)
            if not isinstance(value, bool) and not (name == "color" and value is None):
                raise TypeError(f"{name}={value!r} must be True or False")
        for name in ("access_log_file", "log_file"):
            path = getattr(self, name)
            if path is not None:
                if not isinstance(path, str | os.PathLike) or not os.fspath(path):
                    raise TypeError(f"{name}={path!r} must be a file path (str or PathLike)")
                object.__setattr__(self, name, os.fspath(path))

    @property
    def levelno(self) -> int:
        """The level as a number."""
        return self.level if isinstance(self.level, int) else LEVELS[self.level]


# ---- the queue, its listener thread, and reference counting ----------------------------


class _QueueHandler(QueueHandler):
    """Put records on the queue as they are: formatting happens in the listener thread."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        if record.args:  # render now: the arguments may change before the listener runs
            record.msg = record.getMessage()
            record.args = None
        return record


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
SERVER_LOGGER = "aeros.server"
"""The name uvicorn's "uvicorn.error" records are shown under: aeros' server, not an error."""


class _ServerEvents(logging.Filter):
    """Drop uvicorn's per-WebSocket lines; show its other events as ``aeros.server``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name != "uvicorn.error":
            return True
        if record.msg in _UVICORN_ACCESS_LIKE:
            return False
        record.name = SERVER_LOGGER  # "uvicorn.error" says error for "Application startup"
        return True


class _Listener(QueueListener):
    def handle(self, record: logging.LogRecord) -> None:
        event = getattr(record, "aeros_flush", None)
        if event is not None:
            event.set()
            return
        super().handle(record)


class _IsAccess(logging.Filter):
    def __init__(self, wanted: bool) -> None:
        super().__init__()
        self.wanted = wanted

    def filter(self, record: logging.LogRecord) -> bool:
        return (record.name == ACCESS_LOGGER) is self.wanted


class LoggingHandle:
    """What :func:`configure_logging` returns; :meth:`stop` releases this configuration."""

    def __init__(self, config: LogConfig) -> None:
        self.config = config
        self.pid = os.getpid()
        self.stopped = False

    def stop(self) -> None:
        """Release this configuration; the last one stops the listener and removes handlers.

        Safe to call twice. Records logged before it are written when it returns.
        """
        _state.release(self)


class _State:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.lock = threading.Lock()
        self.handles: list[LoggingHandle] = []
        self.queue: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
        self.handler = _QueueHandler(self.queue)
        self.handler.addFilter(_ServerEvents())
        self.listener: _Listener | None = None
        self.sinks: list[logging.Handler] = []
        self.active: LogConfig | None = None
        # logger name -> (level, propagate, handlers) before aeros took it over
        self.saved: dict[str, tuple[int, bool, list[logging.Handler]]] = {}
        self.extra: set[str] = getattr(self, "extra", set())  # names survive a fork

    def acquire(self, config: LogConfig) -> LoggingHandle:
        handle = LoggingHandle(config)
        with self.lock:
            self.apply(config)
            self.handles.append(handle)
        return handle

    def release(self, handle: LoggingHandle) -> None:
        with self.lock:
            if handle.stopped or handle.pid != os.getpid():
                return
            handle.stopped = True
            if handle in self.handles:
                self.handles.remove(handle)
            self.apply(self.handles[-1].config if self.handles else None)
            self.flush()

    def route(self, name: str) -> None:
        """Add a logger to the routed set (attached now if logging is configured)."""
        with self.lock:
            self.extra.add(name)
            if self.active is not None:
                self.attach(name, self.active.levelno)

    def names(self) -> list[str]:
        names = list(_ROUTED)
        for name in sorted(self.extra):
            # a child of a routed logger reaches the handler by propagation already
            if not any(name == top or name.startswith(top + ".") for top in names):
                names.append(name)
        return names

    def attach(self, name: str, level: int) -> None:
        logger = logging.getLogger(name)
        if name not in self.saved:
            self.saved[name] = (logger.level, logger.propagate, list(logger.handlers))
            if name in _FOREIGN:
                logger.handlers.clear()  # e.g. uvicorn's own dictConfig: lines would double
        logger.setLevel(level)
        logger.propagate = False
        if self.handler not in logger.handlers:
            logger.addHandler(self.handler)

    def apply(self, config: LogConfig | None) -> None:
        """Make ``config`` the active configuration (None: tear everything down)."""
        if config == self.active and (config is None or self.listener is not None):
            return
        sinks = _build_sinks(config) if config is not None else []  # may raise: change nothing
        self.stop_listener()
        self.active = config
        if config is None:
            self.restore()
            return
        self.sinks = sinks
        self.listener = _Listener(self.queue, *self.sinks, respect_handler_level=True)
        self.listener.start()
        for name in self.names():
            self.attach(name, config.levelno)

    def stop_listener(self) -> None:
        if self.listener is not None:
            self.listener.stop()  # writes what is queued, then joins the thread
            self.listener = None
        for sink in self.sinks:
            sink.close()
        self.sinks = []

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until the listener has written everything queued before this call."""
        if self.listener is None:
            return
        event = threading.Event()
        marker = logging.LogRecord("aeros", logging.INFO, "", 0, "", None, None)
        marker.aeros_flush = event
        self.queue.put_nowait(marker)
        event.wait(timeout)

    def restore(self) -> None:
        """Give every routed logger back its level, propagation and handlers."""
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
        # In a forked child the listener thread does not exist and the lock may be held by a
        # thread that is gone: start over; the worker calls configure_logging again.
        self.restore()
        for sink in self.sinks:
            if isinstance(sink, logging.FileHandler):
                sink.close()
        self.reset()

    def shutdown(self) -> None:
        with self.lock:
            self.stop_listener()


def _open(option: str, path: str) -> logging.FileHandler:
    try:
        return logging.FileHandler(path, encoding="utf-8")  # append mode: workers share it
    except OSError as exc:
        raise ConfigurationError(
            f"{option}={path!r} cannot be opened for appending: {exc}"
        ) from exc


def _build_sinks(config: LogConfig) -> list[logging.Handler]:
    level = config.levelno
    sinks: list[logging.Handler] = []
    server: list[tuple[logging.Handler, logging.Formatter]] = [
        (logging.StreamHandler(sys.stderr), ConsoleFormatter(use_color(sys.stderr, config.color)))
    ]
    if config.log_file:
        server.append((_open("log_file", config.log_file), ConsoleFormatter()))
    access: list[tuple[logging.Handler, logging.Formatter]] = []
    if config.access_log:
        fmt = config.access_log_format
        color = use_color(sys.stdout, config.color)
        access.append((logging.StreamHandler(sys.stdout), AccessFormatter(fmt, color)))
        if config.access_log_file:
            try:
                file = _open("access_log_file", config.access_log_file)
            except ConfigurationError:
                for sink, _ in server:
                    sink.close()
                raise
            access.append((file, AccessFormatter(fmt)))
    for group, is_access in ((server, False), (access, True)):
        for sink, formatter in group:
            sink.setFormatter(formatter)
            sink.setLevel(level)
            sink.addFilter(_IsAccess(is_access))
            sinks.append(sink)
    return sinks


# ---- access records: built cheaply on the event loop, formatted by the listener ---------

# what LogRecord.relativeCreated is measured from
_start_time: float = logging._startTime  # type: ignore[attr-defined]
_pid = os.getpid()


def _update_pid() -> None:
    global _pid
    _pid = os.getpid()


# Every LogRecord attribute that is the same for all access records; formatters read them
# from the instance __dict__ (``%(name)s``), so each record gets a copy, not class attributes.
_FIXED: dict[str, Any] = {
    "name": ACCESS_LOGGER,
    "levelno": logging.INFO,
    "levelname": "INFO",
    "args": None,
    "exc_info": None,
    "exc_text": None,
    "stack_info": None,
    "pathname": "",
    "filename": "",
    "module": "",
    "funcName": None,
    "lineno": 0,
    "thread": None,
    "threadName": None,
    "processName": None,
    "taskName": None,
}


class _AccessRecord(logging.LogRecord):
    """A LogRecord built without ``LogRecord.__init__``'s caller lookup and bookkeeping."""

    def __init__(self, entry: AccessEntry) -> None:
        now = time.time()
        fields = _FIXED.copy()
        fields["msg"] = entry
        fields["created"] = now
        fields["msecs"] = int(now % 1 * 1000) + 0.0
        fields["relativeCreated"] = (now - _start_time) * 1000
        fields["process"] = _pid
        self.__dict__ = fields


_access_logger = logging.getLogger(ACCESS_LOGGER)


def log_access(entry: AccessEntry) -> None:
    """Hand one request's raw fields to the ``aeros.access`` logger (formatted off the loop).

    The caller checks ``logging.getLogger(ACCESS_LOGGER).isEnabledFor(logging.INFO)`` first
    when it wants to skip collecting the fields; a server that answers a request itself (a
    400 for a malformed head, say) calls this too, so every answer gets its line.
    """
    _access_logger.handle(_AccessRecord(entry))


_state = _State()


def _after_fork_in_child() -> None:
    _update_pid()
    _state.after_fork()


if hasattr(os, "register_at_fork"):  # POSIX; Windows has no fork
    os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(lambda: _state.shutdown())


def configure_logging(config: LogConfig) -> LoggingHandle:
    """Route aeros', uvicorn's, Quart's and the app's loggers to aeros' handlers.

    Server log to stderr (and ``config.log_file``); access log to stdout (and
    ``config.access_log_file``). Records go through a queue to one listener thread that
    formats and writes. Call it as often as needed, also in forked workers: each call returns
    a handle, the latest active configuration wins, and the last ``handle.stop()`` removes the
    handlers and stops the thread.
    """
    if not isinstance(config, LogConfig):
        raise TypeError(
            f"configure_logging(config={config!r}) needs an aeros.logging.config.LogConfig"
        )
    return _state.acquire(config)


def route_logger(name: str) -> logging.Logger:
    """Return logger ``name``, routed to aeros' handlers whenever logging is configured."""
    if name not in _state.extra:  # unlocked fast path: WebServer.logger calls this each time
        _state.route(name)
    return logging.getLogger(name)


def _names(items: Iterable[Any]) -> str:
    names = [str(getattr(item, "name", "") or type(item).__name__.lower()) for item in items]
    return ", ".join(names) if names else "off"


def log_banner(base_url: str, workers: int, store: Any, codecs: Any) -> None:
    """Log the one-line start-up banner: address, workers, cache store, compression codecs."""
    cache = "off" if store is None else type(store).__name__
    logging.getLogger("aeros").info(
        "serving on %s (workers: %d, cache: %s, compression: %s)",
        base_url,
        workers,
        cache,
        _names(codecs or ()),
    )
