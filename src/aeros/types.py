"""ASGI type aliases and the few header helpers every layer shares.

Headers in the hot path stay raw ``list[tuple[bytes, bytes]]`` with lower-case names, as
servers deliver them (ASGI spec); nothing here allocates for a request that needs no work.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = [
    "ASGIApp",
    "Headers",
    "Message",
    "Receive",
    "Scope",
    "Send",
    "check_header",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

_FORBIDDEN = frozenset("\r\n\x00")
_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


def check_header(name: str, value: str, *, where: str) -> tuple[bytes, bytes]:
    """Validate one configured header and return it encoded for the wire.

    Raises:
        ConfigurationError: the name is not an RFC 9110 token, or the value holds CR, LF or NUL
            (which would let a configured value split a response).
    """
    from aeros.errors import ConfigurationError

    if not isinstance(name, str) or not isinstance(value, str):
        raise ConfigurationError(
            f"{where}: header names and values must be str; got {name!r}: {value!r}"
        )
    if not name or not set(name) <= _TOKEN_CHARS:
        raise ConfigurationError(
            f"{where}: header name {name!r} is not a valid token (letters, digits, !#$%&'*+-.^_`|~)"
        )
    if _FORBIDDEN & set(value):
        raise ConfigurationError(
            f"{where}: header {name!r} has a value with CR, LF or NUL, which is refused: {value!r}"
        )
    try:
        encoded = value.encode("latin-1")
    except UnicodeEncodeError as exc:
        raise ConfigurationError(
            f"{where}: header {name!r} value must be latin-1 encodable; got {value!r}"
        ) from exc
    return name.lower().encode("ascii"), encoded
