"""The ``Cache-Status`` response header (RFC 9211): how the response cache served a request.

``WebServer(cache_status=True)`` turns it on. The value is computed for each request and never
stored in an entry (a hit never replays the status of the request that filled it):

- ``aeros; hit; ttl=23``: answered from the cache, fresh for 23 more seconds (a negative ttl:
  a stale entry served while it is refreshed; no ttl: an entry without expiry);
- ``aeros; fwd=uri-miss; stored``: nothing stored for the request; the view ran and its
  response was stored;
- ``aeros; fwd=uri-miss``: the view ran and nothing was stored (a HEAD, or a response shared
  with another request's fill that could not be stored);
- ``aeros; fwd=miss; detail="set-cookie"``: the view ran and its response may not be stored,
  ``detail`` saying why (the words of the ``uncacheable`` warning: ``status``, ``set-cookie``,
  ``cache-control``, ``vary``, ``stream``, ``tags``, ...; ``store-error`` when the store
  failed);
- ``aeros; fwd=bypass``: the cache stepped aside (``unless=``, credentials, a bad Host).
"""

from __future__ import annotations

import math

from aeros.types import Headers, Message, Send

__all__ = [
    "BYPASS",
    "CACHE_STATUS",
    "FORWARDED",
    "STORED",
    "hit",
    "marked",
    "uncacheable",
    "with_status",
]

CACHE_STATUS = b"cache-status"
"""The header's (lower-case) name."""

BYPASS = b"aeros; fwd=bypass"
STORED = b"aeros; fwd=uri-miss; stored"
FORWARDED = b"aeros; fwd=uri-miss"


def hit(fresh_until: float, now: float) -> bytes:
    """A hit on an entry fresh until ``fresh_until`` (negative ttl: served stale)."""
    if math.isinf(fresh_until):
        return b"aeros; hit"
    return b"aeros; hit; ttl=%d" % math.floor(fresh_until - now)


def uncacheable(kind: str) -> bytes:
    """A miss whose response was not stored, for the reason ``kind`` (a fixed word)."""
    return b'aeros; fwd=miss; detail="%s"' % kind.encode("ascii", "replace")


def with_status(headers: Headers, value: bytes) -> Headers:
    """``headers`` (not changed) plus ``Cache-Status: value``."""
    return [*headers, (CACHE_STATUS, value)]


def marked(send: Send, value: bytes) -> Send:
    """``send`` that adds ``Cache-Status: value`` to the response start."""

    async def send_marked(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": with_status(message.get("headers") or [], value)}
        await send(message)

    return send_marked
