"""The access logger: one cheap item per request, handed to the logging queue.

The access-log layer and the server (for the answers it makes itself) build an
:class:`~aeros.logging.formatters.AccessEntry` of raw fields and call :func:`log_access`.
When nothing but aeros' own handler would see it, the entry itself goes on the queue (no
``LogRecord`` at all); otherwise a record that skips ``LogRecord.__init__``'s caller lookup
goes through ``Logger.handle``, so a handler of the user's gets it. Formatting happens later in
the listener thread (:mod:`aeros.logging.listener`), never on the event loop.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from aeros.logging.formatters import AccessEntry
from aeros.logging.router import router

__all__ = ["ACCESS_LOGGER", "SERVER_ANSWER", "log_access"]

ACCESS_LOGGER = "aeros.access"
"""Name of the logger that receives one record per request."""
SERVER_ANSWER = "aeros.server_answer"
"""ASGI scope key the server sets to ``(status, bytes sent)`` when it answers a request the app
is handling in the app's place (a 413 for a chunked body over the limit, a 503 when shutdown
cuts the request off): the access-log line shows that answer, not what the app tried to send."""

# what LogRecord.relativeCreated is measured from
_start_time: float = logging._startTime  # type: ignore[attr-defined]
_pid = os.getpid()


def _update_pid() -> None:
    global _pid
    _pid = os.getpid()


if hasattr(os, "register_at_fork"):  # POSIX; Windows has no fork
    os.register_at_fork(after_in_child=_update_pid)

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
        now = entry.created
        fields = _FIXED.copy()
        fields["msg"] = entry
        fields["created"] = now
        fields["msecs"] = int(now % 1 * 1000) + 0.0
        fields["relativeCreated"] = (now - _start_time) * 1000
        fields["process"] = _pid
        self.__dict__ = fields


_access_logger = logging.getLogger(ACCESS_LOGGER)
# bound once: a method call on a from-imported name is never specialized
_put_access = router.put_access


def log_access(entry: AccessEntry) -> None:
    """Hand one request's raw fields to the ``aeros.access`` logger (formatted off the loop).

    The caller checks ``logging.getLogger(ACCESS_LOGGER).isEnabledFor(logging.INFO)`` first
    when it wants to skip collecting the fields; a server that answers a request itself (a
    400 for a malformed head, say) calls this too, so every answer gets its line.
    """
    entry.created = time.time()
    if not _put_access(entry, _access_logger):
        _access_logger.handle(_AccessRecord(entry))
