"""uvicorn's request/response cycle with a cheaper response head.

For every response uvicorn checks each header with two regex searches, lower-cases its name and
builds its line: about 0.5 us per header, 3-4 us for a 7-header response, a tenth of what a
small request costs the server. Most ``(name, value)`` pairs repeat from one response to the
next (``content-type``, ``server``, ``vary``, the ``date`` of this second, a cached entry's
``etag``), so :class:`LeanCycle` remembers the line of each pair it has checked and a repeat
costs one dict lookup. The framing headers (``content-length``, ``transfer-encoding``,
``connection``) are looked at every time, as uvicorn does. Bodies, the access log and flow
control stay uvicorn's own code.
"""

from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import (
    HEADER_RE,
    HEADER_VALUE_RE,
    STATUS_LINE,
    RequestResponseCycle,
)

__all__ = ["LeanCycle"]

_FRAMING = frozenset((b"content-length", b"transfer-encoding", b"connection"))
_LINES: dict[tuple[bytes, bytes], bytes] = {}
"""Checked header pairs -> their encoded line; shared by every connection of the process."""
_LINES_LIMIT = 4096  # the table is emptied when it reaches this many lines (at most ~1 MiB)
_LINE_LIMIT = 256  # a longer line is checked every time, never remembered


class LeanCycle(RequestResponseCycle):
    """uvicorn's ``RequestResponseCycle``; only the response head is written differently.

    The bytes written, the errors raised for an invalid header (``RuntimeError``) and the
    framing state it leaves (``chunked_encoding``, ``expected_content_length``, ``keep_alive``)
    are uvicorn's; ``tests/test_server_cycle.py`` compares the two.
    """

    async def send(self, message: dict[str, object]) -> None:  # type: ignore[override]
        if (
            self.response_started
            or message["type"] != "http.response.start"
            or self.access_log
            or self.disconnected
            or self.flow.write_paused
        ):
            await super().send(message)  # type: ignore[arg-type]
            return
        self.response_started = True
        self.waiting_for_100_continue = False
        status_code: int = message["status"]  # type: ignore[assignment]
        content = [STATUS_LINE[status_code]]
        lines = _LINES
        close = False
        for headers in (self.default_headers, message.get("headers") or ()):
            for pair in headers:  # type: ignore[attr-defined]
                line = lines.get(pair) if type(pair) is tuple else None
                if line is None:
                    line, close_now = self._new_line(pair)
                    close = close or close_now
                content.append(line)
        if not self.keep_alive and not close:
            content.append(b"connection: close\r\n")
        if (
            self.chunked_encoding is None
            and self.scope["method"] != "HEAD"
            and status_code not in (204, 304)
        ):
            self.chunked_encoding = True  # neither Content-Length nor Transfer-Encoding given
            content.append(b"transfer-encoding: chunked\r\n")
        content.append(b"\r\n")
        self.transport.write(b"".join(content))

    def _new_line(self, pair: tuple[bytes, bytes]) -> tuple[bytes, bool]:
        """Check one header as uvicorn does; returns its line and whether it closes."""
        name, value = pair
        if HEADER_RE.search(name):
            raise RuntimeError("Invalid HTTP header name.")
        if HEADER_VALUE_RE.search(value):
            raise RuntimeError("Invalid HTTP header value.")
        name = name.lower()
        line = b"".join((name, b": ", value, b"\r\n"))
        if name not in _FRAMING:
            if len(line) <= _LINE_LIMIT and type(pair) is tuple:
                if len(_LINES) >= _LINES_LIMIT:
                    _LINES.clear()
                _LINES[pair] = line
            return line, False
        if name == b"content-length":
            if self.chunked_encoding is None:
                self.expected_content_length = int(value.decode())
                self.chunked_encoding = False
        elif name == b"transfer-encoding":
            if value.lower() == b"chunked":
                self.expected_content_length = 0
                self.chunked_encoding = True
        elif b"close" in [token.lower().strip() for token in value.split(b",")]:
            self.keep_alive = False
            return line, True
        return line, False
