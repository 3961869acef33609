"""The id of the request being served, for views and for every log record emitted meanwhile.

The request-id layer (:mod:`aeros.middleware.request_id`) sets it for the duration of each
request; a ContextVar, so concurrent requests on one event loop (and the thread a sync view
runs in, which Quart gives a copy of the context) each see their own.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar

__all__ = ["RequestIdFilter", "current_request_id", "request_line_var"]

request_line_var: ContextVar[bytes | None] = ContextVar("aeros.request_id", default=None)
"""The current request's id as the response header line that carries it (``name: id`` and
CRLF, as aeros' server writes it); None outside a request or with request ids off. A line
rather than the id: a request then makes one bytes object for its id, and a string only when
something reads it (:func:`current_request_id`)."""


def current_request_id() -> str | None:
    """The id of the request being served (``aeros.request_id()``), or None outside a request
    or when ``WebServer(request_id=...)`` is off."""
    line = request_line_var.get()
    if line is None:
        return None
    return line[line.index(b": ") + 2 : -2].decode("ascii")  # a header name has no colon


class RequestIdFilter(logging.Filter):
    """Stamp each record with ``record.request_id`` (None outside a request); never drops one.

    aeros' own handlers have it; add it to yours (``handler.addFilter(RequestIdFilter())``) and
    use ``%(request_id)s`` in a format when aeros does not install the log handlers. It must
    run in the thread that logs (a handler filter does; a queue listener's does not).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = current_request_id()
        return True
