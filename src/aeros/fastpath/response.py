"""A response class that builds the common response (a complete body) in one step.

Quart's :class:`~quart.wrappers.response.Response` goes through werkzeug's constructor: a
``Headers`` object filled one validated ``__setitem__`` at a time (``Content-Type``, then
``Content-Length`` through a header property), the status parsed, then the body wrapped. For a
``str`` or ``bytes`` body with no extra headers, which is what ``jsonify``, a returned string
or bytes and ``make_response`` of them produce, :class:`LeanResponse` sets the same
attributes to the same values directly: the content type for each mimetype and the status
line for each code are worked out once (by werkzeug's own code) and remembered. Every other
call, and every subclass, goes through Quart's constructor unchanged.

:func:`encode_header_pairs` is Quart's encoding of a response's headers into the ASGI pairs the
lean connection sends, with the pairs remembered.
"""

from __future__ import annotations

from typing import Any

from quart.utils import encode_headers
from quart.wrappers.response import DataBody, Response
from werkzeug.datastructures import Headers

__all__ = ["LeanResponse", "encode_header_pairs"]

_REMEMBERED = 64  # content types and status lines seen in practice are few
_CONTENT_TYPES: dict[str | None, str] = {}
_STATUSES: dict[int, tuple[str, int]] = {}
_new = object.__new__
# werkzeug's Headers() sets only _list: LeanResponse then makes one without the __init__ call
# (0.8 k instructions); a werkzeug that sets more gets its constructor
_BARE_HEADERS = set(getattr(Headers(), "__dict__", ())) == {"_list"}
# Quart's DataBody(data) sets data, begin 0 and end len(data), nothing more: LeanResponse sets
# them itself (a call fewer); a DataBody that sets more gets its constructor
_BARE_BODY = getattr(DataBody(b"ab"), "__dict__", None) == {"data": b"ab", "begin": 0, "end": 2}


class LeanResponse(Response):
    """Quart's response; a complete ``str``/``bytes`` body without extra headers is built
    directly (same attributes, same values)."""

    def __init__(
        self,
        response: Any = None,
        status: int | None = None,
        headers: Any = None,
        mimetype: str | None = None,
        content_type: str | None = None,
    ) -> None:
        kind = type(response)
        if (
            (kind is bytes or kind is str)
            and headers is None
            and content_type is None
            and (status is None or type(status) is int)
            and type(self) is LeanResponse
        ):
            data: bytes = response.encode() if kind is str else response
            if mimetype is None:
                mimetype = self.default_mimetype
            ctype = _CONTENT_TYPES.get(mimetype)
            if ctype is None:
                ctype = _checked_content_type(mimetype)
            if self.automatically_set_content_length:
                items = [("Content-Type", ctype), ("Content-Length", str(len(data)))]
            else:
                items = [("Content-Type", ctype)]
            fresh = _new(Headers) if _BARE_HEADERS else Headers()
            fresh._list = items  # the storage every Headers method reads
            self.headers = fresh
            code = self.default_status if status is None else status
            line = _STATUSES.get(code)
            if line is None:
                line = self._clean_status(code)
                if len(_STATUSES) < _REMEMBERED:
                    _STATUSES[code] = line
            self._status, self._status_code = line
            self.timeout = Ellipsis
            if self.data_body_class is DataBody and _BARE_BODY:
                body = _new(DataBody)  # its __init__'s three attributes, with no call
                body.data = data
                body.begin = 0
                body.end = len(data)
                self.response = body
            else:
                self.response = self.data_body_class(data)
            return
        super().__init__(response, status, headers, mimetype, content_type)


def _checked_content_type(mimetype: str | None) -> str:
    """The ``Content-Type`` werkzeug stores for ``mimetype`` (validated by werkzeug)."""
    probe = Response(b"", mimetype=mimetype)
    ctype = probe.headers["Content-Type"]
    if len(_CONTENT_TYPES) < _REMEMBERED:
        _CONTENT_TYPES[mimetype] = ctype
    return ctype


_ENCODED: dict[tuple[str, str], tuple[bytes, bytes]] = {}
_ENCODED_MAX = 1024  # Content-Length values, content types, fixed headers: few recur


def encode_header_pairs(headers: Any) -> list[tuple[bytes, bytes]]:
    """Quart's ``encode_headers`` of a response's headers (lower-case UTF-8 names, UTF-8
    values), as the lean connection sends them; pairs remembered."""
    items = getattr(headers, "_list", None)
    if type(items) is not list:
        return encode_headers(headers)
    encoded = []
    memo = _ENCODED
    try:
        for item in items:
            pair = memo.get(item)
            if pair is None:
                pair = (item[0].lower().encode(), item[1].encode())
                if len(memo) >= _ENCODED_MAX:
                    memo.clear()  # one-off values (dates, ids) filled it: start over
                memo[item] = pair
            encoded.append(pair)
    except TypeError:  # an item that is not a (str, str) tuple: Quart's own conversion
        return encode_headers(headers)
    return encoded
