"""Who a rate limit counts: the ``key=`` of :class:`~aeros.ratelimit.policy.RateLimit`.

A key function takes the ASGI scope and returns the identity a request is counted under, or
None to leave the request out of that limit. Identities carry a kind prefix (``a:`` address,
``h:`` header, ``f:`` your function) so a header value can never pose as an address.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from aeros.errors import ConfigurationError
from aeros.headers import is_token
from aeros.types import Scope

__all__ = ["KeyFunc", "client_address", "compile_key"]

KeyFunc = Callable[[Scope], str | None]

_LONGEST = 128  # longer identities are hashed: a 16 KB header must not become a 16 KB key


def client_address(scope: Scope) -> str:
    """``a:<client address>``: the peer, or what a trusted proxy said it forwarded for.

    The server rewrites ``scope["client"]`` from ``X-Forwarded-For`` only when the peer is in
    ``forwarded_allow_ips`` and ``proxy_headers=True`` (uvicorn's proxy-headers handling), so
    a client cannot pick its own address by sending that header.
    """
    client = scope.get("client")
    return "a:" + client[0] if client else "a:-"


def _bounded(identity: str) -> str:
    if len(identity) <= _LONGEST:
        return identity
    digest = hashlib.blake2b(identity.encode("utf-8", "surrogatepass"), digest_size=16)
    return identity[:2] + "#" + digest.hexdigest()


def compile_key(api: str, key: Any) -> KeyFunc:
    """The key function for ``key``: None (client address), a header name, or a callable.

    A header name counts requests by that header's value; a request without the header is
    counted by its client address. A callable gets the ASGI scope and returns a str (the
    identity) or None (the limit does not apply to this request).

    Raises:
        ConfigurationError: ``key`` is none of these, or not a valid header name.
    """
    if key is None:
        return client_address
    if isinstance(key, str):
        if not is_token(key):
            raise ConfigurationError(
                f"{api}(key={key!r}) is not a header name (letters, digits, -); give None "
                "(the client address), a header name or a function of the ASGI scope"
            )
        name = key.lower().encode("ascii")

        def by_header(scope: Scope) -> str:
            for header, value in scope["headers"]:
                if header == name:
                    return _bounded("h:" + value.decode("latin-1"))
            return client_address(scope)

        return by_header
    if callable(key):
        function: Callable[[Scope], Any] = key

        def by_function(scope: Scope) -> str | None:
            identity = function(scope)
            return None if identity is None else _bounded("f:" + str(identity))

        return by_function
    raise ConfigurationError(
        f"{api}(key={key!r}) must be None (the client address), a header name (str) or a "
        "function of the ASGI scope returning a str or None"
    )
