"""HTTP header grammar and helpers shared by the layers and the server.

One definition of each rule: the RFC 9110 token (header names, methods, ``Vary`` entries),
the ``Host`` values aeros lets through, header lookup on raw ASGI headers, ``Vary`` merging,
and the check of a configured header. Headers stay raw ``list[tuple[bytes, bytes]]`` with
lower-case names, as servers deliver them; nothing here allocates for a request that needs no
work.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from aeros.errors import ConfigurationError
from aeros.types import Headers, Message, Send

__all__ = [
    "KNOWN_HOSTS",
    "add_vary",
    "check_header",
    "get_header",
    "header_line",
    "is_token",
    "is_valid_host",
    "send_adding",
]

_TCHAR = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_TOKEN_CHARS = frozenset(_TCHAR)
_TOKEN_BYTES = frozenset(_TCHAR.encode("ascii"))
_FORBIDDEN_IN_VALUE = frozenset("\r\n\x00")

# A Host value: a bracketed IPv6 literal, or a DNS-style name / IPv4 address (labels of 1 to 63
# letters, digits, hyphens or underscores, dot-separated, an optional trailing dot), then an
# optional port. Stricter than RFC 3986's reg-name on purpose: the host ends up in URLs and cache
# keys, real clients never send sub-delims there, and werkzeug's IDNA step fails on empty or
# over-long labels (which would otherwise surface as a 500 from the app).
_HOST = re.compile(
    rb"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_-]{1,63}(?:\.[A-Za-z0-9_-]{1,63})*\.?)(?::([0-9]{1,5}))?"
)
_MAX_NAME = 253  # RFC 1035: a whole domain name in text form
KNOWN_HOSTS: set[bytes] = set()
"""The valid Hosts :func:`is_valid_host` has seen (up to 1024): a caller on the hot path may
look one up here before calling it."""
_HOSTS_MAX = 1024


def is_token(value: str | bytes) -> bool:
    """Whether ``value`` is an RFC 9110 token (section 5.6.2): a header name, a method.

    Letters, digits and ``!#$%&'*+-.^_`|~``, at least one.
    """
    if isinstance(value, bytes):
        return bool(value) and _TOKEN_BYTES.issuperset(value)
    return bool(value) and _TOKEN_CHARS.issuperset(value)


def is_valid_host(value: bytes) -> bool:
    """Whether ``value`` is a Host aeros lets through: ``name[:port]`` or ``[v6][:port]``.

    The server refuses other Hosts with 400; the response cache never keys on them. A service
    sees few distinct hosts, so valid ones are remembered (up to 1024) and the pattern runs
    once per host rather than once per request.
    """
    if value in KNOWN_HOSTS:
        return True
    match = _HOST.fullmatch(value)
    if match is None:
        return False
    port = match.group(1)
    if port is not None and int(port) > 65535:
        return False
    if len(value) - (len(port) + 1 if port is not None else 0) > _MAX_NAME:
        return False
    if len(KNOWN_HOSTS) < _HOSTS_MAX:
        KNOWN_HOSTS.add(value)
    return True


def get_header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    """Return the first value of header ``name`` (lower-case bytes), or None."""
    for key, value in headers:
        if key == name:
            return value
    return None


def header_line(name: bytes, value: bytes) -> bytes:
    """One header line as aeros' server writes it from ``HEADER_LINES``: for names and values
    a layer made or checked itself (lower-case name, no CR or LF)."""
    return name + b": " + value + b"\r\n"


def send_adding(send: Send, pairs: Iterable[tuple[bytes, bytes]]) -> Send:
    """``send`` that adds ``pairs`` (lower-case names, checked values) to the response start,
    for layers that add fields to whatever answer a request gets (aeros' own server takes them
    as ``HEADER_LINES`` instead)."""
    added = tuple(pairs)

    async def adding(message: Message) -> None:
        if message["type"] == "http.response.start":
            # a new list: the headers may be a tuple or a list shared by every answer
            message["headers"] = [*message.get("headers", ()), *added]
        await send(message)

    return adding


def add_vary(headers: Headers, token: bytes) -> Headers:
    """Return ``headers`` with ``token`` (lower-case) listed in ``Vary``, merging an existing one.

    The input list is never mutated (it may be a cached entry's); a ``Vary: *`` or a ``Vary``
    that already lists the token is kept as it is.
    """
    for index, (name, value) in enumerate(headers):
        if name == b"vary":
            tokens = [t.strip().lower() for t in value.split(b",")]
            if token in tokens or b"*" in tokens:
                return list(headers)
            out = list(headers)
            out[index] = (b"vary", value + b", " + token if value.strip() else token)
            return out
    return [*headers, (b"vary", token)]


def check_header(name: str, value: str, *, where: str) -> tuple[bytes, bytes]:
    """Validate one configured header and return it encoded for the wire.

    Args:
        name: the header name, a token.
        value: the header value, latin-1 text without CR, LF or NUL.
        where: the API the header was given to, for the message (``"WebServer(...)"``).

    Raises:
        ConfigurationError: the name is not an RFC 9110 token, or the value holds CR, LF or NUL
            (which would let a configured value split a response).
    """
    if not isinstance(name, str) or not isinstance(value, str):
        raise ConfigurationError(
            f"{where}: header names and values must be str; got {name!r}: {value!r}"
        )
    if not is_token(name):
        raise ConfigurationError(
            f"{where}: header name {name!r} is not a valid token (letters, digits, !#$%&'*+-.^_`|~)"
        )
    if _FORBIDDEN_IN_VALUE & set(value):
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
