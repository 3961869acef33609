"""Log configuration for aeros: :class:`LogConfig`, and installing and removing the handlers.

Nothing here runs on import. :func:`configure_logging` (called by ``run_server()`` and the CLI)
has the router (:mod:`aeros.logging.router`) send the loggers of aeros, uvicorn, Quart and the
app to one queue; a listener thread formats and writes, so a slow terminal or disk never blocks
the event loop. It is reference counted: servers started in threads share one listener, and
the last ``stop()`` removes everything.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aeros._validate import boolean
from aeros.errors import ConfigurationError
from aeros.logging.formatters import ACCESS_FORMATS, AccessFormatter, ConsoleFormatter, use_color
from aeros.logging.listener import FileSink, Listener, StreamSink
from aeros.logging.router import router

__all__ = ["LEVELS", "LogConfig", "LoggingHandle", "configure_logging", "log_banner"]

LEVELS = {"critical": 50, "error": 40, "warning": 30, "info": 20, "debug": 10, "trace": 5}
"""Level names accepted by ``log_level`` (``trace`` is uvicorn's level 5)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LogConfig:
    """How aeros logs; built by :class:`aeros.WebServer` from its log options.

    Each field is the ``WebServer`` keyword of the same name, except ``level``
    (``log_level``).
    """

    level: str | int = "info"
    """Level of the aeros, server and app loggers: a name in :data:`LEVELS` or a number."""
    color: bool | None = None
    """True/False force coloured/plain console output; None: ``NO_COLOR`` > ``FORCE_COLOR`` >
    whether the stream is a terminal."""
    access_log: bool = True
    """Write one access-log line per request (to stdout, and ``access_log_file`` if set)."""
    access_log_format: str = "default"
    """One of :data:`~aeros.logging.formatters.ACCESS_FORMATS`."""
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
                f"WebServer(log_level={level!r}) is not a level; use one of {tuple(LEVELS)} "
                "or an int >= 0"
            )
        if self.access_log_format not in ACCESS_FORMATS:
            raise ConfigurationError(
                f"WebServer(access_log_format={self.access_log_format!r}) is not a format; "
                f"use one of {ACCESS_FORMATS}"
            )
        if self.color is not None and not isinstance(self.color, bool):
            raise ConfigurationError(f"WebServer(color={self.color!r}) must be True, False or None")
        boolean("WebServer", "access_log", self.access_log)
        for name in ("access_log_file", "log_file"):
            path = getattr(self, name)
            if path is not None:
                if not isinstance(path, str | os.PathLike) or not os.fspath(path):
                    raise ConfigurationError(
                        f"WebServer({name}={path!r}) must be a file path (str or PathLike)"
                    )
                object.__setattr__(self, name, os.fspath(path))

    @property
    def levelno(self) -> int:
        """The level as a number."""
        return self.level if isinstance(self.level, int) else LEVELS[self.level]


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
    """The active configuration, its handles, the listener thread and its sinks."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.lock = threading.Lock()
        self.handles: list[LoggingHandle] = []
        self.listener: Listener | None = None
        self.active: LogConfig | None = None

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

    def apply(self, config: LogConfig | None) -> None:
        """Make ``config`` the active configuration (None: tear everything down)."""
        if config == self.active and (config is None or self.listener is not None):
            return
        sinks = _build_sinks(config) if config is not None else ([], [])  # may raise: no change
        self.stop_listener()
        self.active = config
        if config is None:
            router.stop()
            return
        server, access = sinks
        self.listener = Listener(router.queue, server, access)
        self.listener.start()
        router.start(config.levelno)

    def stop_listener(self) -> None:
        listener = self.listener
        if listener is not None:
            listener.stop()  # writes what is queued, then joins the thread
            self.listener = None
            for sink in listener.sinks:
                sink.close()

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until the listener has written everything queued before this call."""
        if self.listener is None:
            return
        event = threading.Event()
        marker = logging.LogRecord("aeros", logging.INFO, "", 0, "", None, None)
        marker.aeros_flush = event
        router.queue.put_nowait(marker)
        event.wait(timeout)

    def after_fork(self) -> None:
        # In a forked child the listener thread does not exist and the lock may be held by a
        # thread that is gone: start over; the worker calls configure_logging again.
        router.after_fork()
        if self.listener is not None:
            for sink in self.listener.sinks:
                if isinstance(sink, logging.FileHandler):
                    sink.close()
        self.reset()

    def shutdown(self) -> None:
        with self.lock:
            self.stop_listener()


def _open(option: str, path: str) -> FileSink:
    try:
        return FileSink(path, encoding="utf-8")  # append mode: workers share it
    except OSError as exc:
        raise ConfigurationError(
            f"{option}={path!r} cannot be opened for appending: {exc}"
        ) from exc


def _build_sinks(config: LogConfig) -> tuple[list[StreamSink], list[StreamSink]]:
    """The server log's sinks and the access log's."""
    level = config.levelno
    server: list[tuple[StreamSink, logging.Formatter]] = [
        (StreamSink(sys.stderr), ConsoleFormatter(use_color(sys.stderr, config.color)))
    ]
    if config.log_file:
        server.append((_open("log_file", config.log_file), ConsoleFormatter()))
    access: list[tuple[StreamSink, logging.Formatter]] = []
    if config.access_log:
        fmt = config.access_log_format
        color = use_color(sys.stdout, config.color)
        access.append((StreamSink(sys.stdout), AccessFormatter(fmt, color)))
        if config.access_log_file:
            try:
                file = _open("access_log_file", config.access_log_file)
            except ConfigurationError:
                for sink, _ in server:
                    sink.close()
                raise
            access.append((file, AccessFormatter(fmt)))
    for sink, formatter in (*server, *access):
        sink.setFormatter(formatter)
        sink.setLevel(level)
    return [sink for sink, _ in server], [sink for sink, _ in access]


_state = _State()

if hasattr(os, "register_at_fork"):  # POSIX; Windows has no fork
    os.register_at_fork(after_in_child=_state.after_fork)
atexit.register(lambda: _state.shutdown())


def configure_logging(config: LogConfig) -> LoggingHandle:
    """Route aeros', uvicorn's, Quart's and the app's loggers to aeros' handlers.

    Server log to stderr (and ``config.log_file``); access log to stdout (and
    ``config.access_log_file``). Records go through a queue to one listener thread that
    formats and writes. Call it as often as needed, also in forked workers: each call returns
    a handle, the latest active configuration wins, and the last ``handle.stop()`` removes the
    handlers and stops the thread.

    Raises:
        ConfigurationError: ``config`` is not a :class:`LogConfig`, or a log file cannot be
            opened.
    """
    if not isinstance(config, LogConfig):
        raise ConfigurationError(
            f"configure_logging(config={config!r}) needs an aeros.logging.config.LogConfig"
        )
    return _state.acquire(config)


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
