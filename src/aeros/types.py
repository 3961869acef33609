"""ASGI type aliases and the scope keys layers share.

Headers in the hot path stay raw ``list[tuple[bytes, bytes]]`` with lower-case names, as
servers deliver them (ASGI spec). The header grammar and helpers are in :mod:`aeros.headers`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final

__all__ = [
    "CACHE_STATE",
    "RATE_LIMIT_STATE",
    "SKIP_COMPRESSION",
    "SKIP_GLOBAL_HEADERS",
    "ASGIApp",
    "Headers",
    "Message",
    "Receive",
    "Scope",
    "Send",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

SKIP_COMPRESSION: Final = "aeros.skip_compression"
"""Scope key: when an outer layer sets ``scope[SKIP_COMPRESSION] = True`` the compression
layer passes the response through untouched (the response cache sets it on a miss so it
receives the identity body, stores it, and encodes for the client itself)."""

SKIP_GLOBAL_HEADERS: Final = "aeros.skip_global_headers"
"""Scope key: present when an outer layer adds the global headers to this response itself
(the response cache does, so stored entries never hold them)."""

CACHE_STATE: Final = "aeros.cache_state"
"""Scope key: what the response cache did for this request (``"hit"``, ``"miss"``,
``"stale"``, ``"bypass"``, ``"uncacheable"``, ``"error"``); the access log prints it."""

RATE_LIMIT_STATE: Final = "aeros.rate_limit_state"
"""Scope key: set by the rate-limit layer when it refused the request (``"429"``) or could not
count it (``"error"``: the storage failed); the access log prints it as ``limit=...``."""
