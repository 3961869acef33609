"""A whole response (status, header pairs, one complete body) handed to aeros' server in one call.

Where a layer or the lean HTTP connection holds the whole response and its ``send`` is the one
aeros' server passed the app (:data:`~aeros.types.WHOLE_RESPONSE`: no layer wrapped it), the
server's cycle writes it as it writes the two messages, without the two sends and without
holding the head for the body. Anywhere else (another server, a layer that watches ``send``)
the caller sends the two messages as usual.
"""

from __future__ import annotations

from typing import Any

from aeros.types import WHOLE_RESPONSE

__all__ = ["sent_whole"]


def sent_whole(scope: Any, send: Any, status: int, headers: Any, body: bytes) -> bool:
    """Write the response through aeros' server in one call if ``send`` is the server's own;
    False (nothing sent) when the caller must send ``http.response.start`` and
    ``http.response.body`` itself. ``scope`` and ``send`` as any ASGI caller has them (typed
    or not). May raise as ``send`` raises for an invalid header or a body whose size differs
    from its ``Content-Length``."""
    if scope.get(WHOLE_RESPONSE) is not send:
        return False
    written: bool = send.__self__.send_whole(status, headers, body)
    return written
