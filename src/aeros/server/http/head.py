"""The response head of aeros' cycle, remembered: a repeated header costs one dict lookup.

For every response uvicorn checks each header with two regex searches, lower-cases its name and
builds its line: about 0.5 us per header, 3-4 us for a 7-header response, a tenth of what a
small request costs the server. Most ``(name, value)`` pairs repeat from one response to the
next (``content-type``, ``server``, ``vary``, the ``date`` of this second, a cached entry's
``etag``), so :class:`HeadLines` remembers the line of each pair it has checked and a repeat
costs one dict lookup; a head all of whose pairs were remembered is remembered whole
(:data:`_HEADS`), so the same route's next response in the same second costs one lookup for
all of them. The framing headers (``content-length``, ``transfer-encoding``, ``connection``)
frame the response as in uvicorn; only ``content-length`` is ever remembered (with its value).
The tables are shared by every connection of the process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from uvicorn.protocols.http.httptools_impl import HEADER_RE, HEADER_VALUE_RE, STATUS_LINE

from aeros.middleware.headers import GLOBAL_NAMES, on_global_names
from aeros.types import HEADER_LINES

if TYPE_CHECKING:
    from uvicorn._types import HTTPScope

__all__ = ["HeadLines"]

_FRAMING = frozenset((b"content-length", b"transfer-encoding", b"connection"))
_LINES: dict[tuple[bytes, bytes], bytes] = {}
"""Checked header pairs -> their encoded line; shared by every connection of the process."""
_LENGTHS: dict[tuple[bytes, bytes], tuple[bytes, int]] = {}
"""Checked ``Content-Length`` pairs -> their line and value (framing: not in :data:`_LINES`,
whose pairs only add their line); every response has one, so it is checked once per value."""
_GLOBAL_LINES: dict[tuple[bytes, bytes], bytes] = {}
"""Checked pairs of a global header's name (``GLOBAL_NAMES``) -> their line, never in
:data:`_LINES`, so that a response setting one is noted (``sets_global``): a cache hit, whose
stored entry carries the global headers as pairs, and a view setting one find theirs here."""
_HEADS: dict[tuple[Any, ...], tuple[bytes, int | None, bool]] = {}
"""``(status, *default pairs, *own pairs)`` -> the head's status line and header lines, its
Content-Length (None: none), and whether it sets a global header's name, for a head all of
whose pairs were remembered (:data:`_LINES`, :data:`_LENGTHS`, :data:`_GLOBAL_LINES`): a
repeated head (the same route's response in the same second, whose ``date`` is one of the
default pairs) costs one lookup instead of one per header. Replaced, not emptied, when a
global header's name is registered: a thread that read the old table before then adds its
head to a table no one reads any more."""
_HEADS_LIMIT = 1024  # the table is emptied when it reaches this many heads
_LINES_LIMIT = 4096  # the table is emptied when it reaches this many lines (at most ~1 MiB)
_LINE_LIMIT = 256  # a longer line is checked every time, never remembered


class HeadLines:
    """The response head of :class:`~aeros.server.http.cycle.LeanCycle`: its status line and
    header lines, framed as uvicorn frames them, from the remembered lines where it can.

    A part of the cycle (a base class of it, with its methods only): the attributes below are
    the cycle's, set by its ``__init__``.
    """

    scope: HTTPScope
    default_headers: list[tuple[bytes, bytes]]
    keep_alive: bool
    response_started: bool
    waiting_for_100_continue: bool
    status: int
    sets_global: bool
    chunked_encoding: bool | None
    expected_content_length: int

    def _start_head(self, status_code: int, own: Any) -> bytes:
        """Start the response: the head of ``status_code`` and the header pairs ``own``, with
        the default pairs and the scope's :data:`~aeros.types.HEADER_LINES`, framed as uvicorn
        frames it."""
        self.response_started = True
        self.waiting_for_100_continue = False
        self.status = status_code
        close = False
        own = own or ()
        if type(own) is not list and type(own) is not tuple:
            own = list(own)  # an iterator (ASGI allows any iterable): read below twice
        heads = _HEADS
        key: tuple[Any, ...] | None = (status_code, *self.default_headers, *own)
        try:
            seen = heads.get(key)  # type: ignore[arg-type]
        except TypeError:  # an unhashable pair or value (a list, a bytearray)
            key = seen = None
        content: list[bytes]
        if seen is not None:  # this status and these pairs before, every pair remembered
            content = [seen[0]]
            if seen[1] is not None:
                self.expected_content_length = seen[1]
                self.chunked_encoding = False
            sets_global = seen[2]
        else:
            content = [STATUS_LINE[status_code]]
            close = self._head_lines(own, content, heads, key)
            sets_global = self.sets_global
        added: list[bytes] | None = self.scope.get(HEADER_LINES)  # type: ignore[assignment]
        if added:
            if sets_global:
                # the response set a name of the global headers (DefaultLines), which
                # _new_line or _head_lines noted (_GLOBAL_LINES): those lines less it
                for item in added:
                    content.append(item if type(item) is bytes else item.for_head(own))  # type: ignore[attr-defined]
            else:
                content += added
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
        return b"".join(content)

    def _head_lines(
        self,
        own: Any,
        content: list[bytes],
        heads: dict[tuple[Any, ...], tuple[bytes, int | None, bool]],
        key: tuple[Any, ...] | None,
    ) -> bool:
        """Append the line of each default and own header to ``content`` (its status line);
        returns whether one closes the connection. A head whose every pair was remembered
        goes into ``heads`` under ``key``, with its Content-Length (None: none)."""
        lines = _LINES
        close = fresh = False
        for headers in (self.default_headers, own):
            for pair in headers:
                try:
                    line = lines.get(pair) if type(pair) is tuple else None
                    if line is not None:
                        known = None
                    elif type(pair) is tuple:
                        known = _LENGTHS.get(pair)
                        if known is None:
                            line = _GLOBAL_LINES.get(pair)
                            if line is not None:  # a global header's name, set by the response
                                self.sets_global = True
                    else:
                        known = None
                except TypeError:  # an unhashable value (a bytearray): checked every time
                    line = known = None
                if line is None:
                    if known is None:
                        line, close_now = self._new_line(pair)
                        close = close or close_now
                        fresh = True
                    else:  # a Content-Length checked before: its line and value
                        line, length = known
                        if self.chunked_encoding is None:
                            self.expected_content_length = length
                            self.chunked_encoding = False
                content.append(line)
        if not fresh and key is not None:
            # only remembered lines: none frames otherwise than by Content-Length or closes
            # (new global names replace the table: _forget)
            if len(heads) >= _HEADS_LIMIT:
                heads.clear()
            # None: no Content-Length (a negative one is a length: uvicorn then raises)
            framed = self.expected_content_length if self.chunked_encoding is False else None
            heads[key] = (b"".join(content), framed, self.sets_global)
        return close

    def _new_line(self, pair: tuple[bytes, bytes]) -> tuple[bytes, bool]:
        """Check one header as uvicorn does; returns its line and whether it closes."""
        name, value = pair
        remembered = type(pair) is tuple and type(name) is bytes and type(value) is bytes
        if HEADER_RE.search(name):
            raise RuntimeError("Invalid HTTP header name.")
        if HEADER_VALUE_RE.search(value):
            raise RuntimeError("Invalid HTTP header value.")
        name = name.lower()
        line = b"".join((name, b": ", value, b"\r\n"))
        if name in GLOBAL_NAMES:  # remembered apart: a response that sets it is noted
            self.sets_global = True
            if len(line) <= _LINE_LIMIT and remembered:
                if len(_GLOBAL_LINES) >= _LINES_LIMIT:
                    _GLOBAL_LINES.clear()
                _GLOBAL_LINES[pair] = line
            return line, False
        if name not in _FRAMING:
            if len(line) <= _LINE_LIMIT and remembered:
                if len(_LINES) >= _LINES_LIMIT:
                    _LINES.clear()
                _LINES[pair] = line
                if name in GLOBAL_NAMES:
                    # another thread made global headers of this name since the check
                    # above, and may have swept the table before this line went in: take
                    # it out (DefaultLines.of adds the names before it sweeps, so one of
                    # the two sees the line)
                    _LINES.pop(pair, None)
            return line, False
        if name == b"content-length":
            if self.chunked_encoding is None:
                length = int(value.decode())
                if len(line) <= _LINE_LIMIT and remembered:
                    if len(_LENGTHS) >= _LINES_LIMIT:
                        _LENGTHS.clear()
                    _LENGTHS[pair] = (line, length)
                self.expected_content_length = length
                self.chunked_encoding = False
        elif name == b"transfer-encoding":
            if value.lower() == b"chunked":
                self.expected_content_length = 0
                self.chunked_encoding = True
        elif b"close" in [token.lower().strip() for token in value.split(b",")]:
            self.keep_alive = False
            return line, True
        return line, False


def _forget(names: frozenset[bytes]) -> None:
    """Forget the remembered lines of pairs of these global header names, and every remembered
    head (a head may hold such a line): from now on their lines are remembered apart
    (:data:`_GLOBAL_LINES`), where finding one notes that the response sets it."""
    global _HEADS
    for pair in list(_LINES):  # a copy: another thread's server may add lines
        if pair[0].lower() in names:
            _LINES.pop(pair, None)
    _HEADS = {}  # a new table (see _HEADS)


on_global_names(_forget)
