"""Encoded responses, shared by the compression layer and the response cache.

A cache entry is encoded for a client the same way the layer encodes a live response, so both
build the encoded response's headers here (``Content-Encoding``, the new ``Content-Length``, a
weak ETag and ``Vary: Accept-Encoding``), and the cache encodes a whole stored body with
:func:`encode_body` by the layer's rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from aeros.compression.codecs import Codec
from aeros.headers import add_vary, get_header
from aeros.types import Headers

__all__ = [
    "ACCEPT_ENCODING",
    "UNTOUCHED_STATUS",
    "encode_body",
    "encoded_headers",
    "is_compressible",
    "weak_etag",
]

ACCEPT_ENCODING: Final = b"accept-encoding"
"""The request header negotiated on, and the ``Vary`` token of every compressible response."""

UNTOUCHED_STATUS: Final = frozenset({204, 206, 304})
"""Statuses (besides 1xx) never encoded: no body, or byte ranges of the identity body."""

# dropped from an encoded response: the length changes, "Content-Encoding: identity" is
# replaced, and byte ranges would address the identity body
_REPLACED = frozenset({b"content-length", b"content-encoding", b"accept-ranges"})


def weak_etag(value: bytes) -> bytes:
    """Return a strong ETag as weak (``"x"`` -> ``W/"x"``); a weak one is returned unchanged.

    An encoded body is a different byte sequence, so it must not keep the identity body's
    strong validator (RFC 9110 section 8.8.1).
    """
    return value if value.startswith(b"W/") else b"W/" + value


def encoded_headers(headers: Headers, codec: Codec, length: int | None) -> Headers:
    """Return the headers of an encoded response built from the identity response's headers.

    Sets ``Content-Encoding``, replaces ``Content-Length`` with ``length`` (dropped when None:
    a stream, or HEAD), weakens a strong ETag, adds ``Vary: Accept-Encoding`` and drops
    ``Accept-Ranges`` (ranges would address the identity bytes). The input is not mutated.
    """
    out: Headers = []
    for name, value in headers:
        if name in _REPLACED:
            continue
        if name == b"etag":
            out.append((name, weak_etag(value)))
        else:
            out.append((name, value))
    if length is not None:
        out.append((b"content-length", str(length).encode("ascii")))
    out.append((b"content-encoding", codec.encoding))
    return add_vary(out, ACCEPT_ENCODING)


def is_compressible(status: int, headers: Headers, codecs: Sequence[Codec]) -> bool:
    """Whether any of ``codecs`` would encode a response with this status and headers.

    False for 1xx/204/206/304, for a response that already has a ``Content-Encoding`` (never
    encoded twice) and for mimetypes no codec lists. Body size is not considered.
    """
    if status < 200 or status in UNTOUCHED_STATUS:
        return False
    content_type = None
    for name, value in headers:
        if name == b"content-encoding" and value.strip().lower() != b"identity":
            return False
        if name == b"content-type":
            content_type = value
    return any(codec.accepts(content_type) for codec in codecs)


def encode_body(
    status: int, headers: Headers, body: bytes, codec: Codec | None, codecs: Sequence[Codec]
) -> tuple[Headers, bytes, Codec | None]:
    """Encode a whole response the way the layer would; for callers holding a complete body.

    Args:
        status: the response status.
        headers: the identity response's headers (not mutated).
        body: the identity body.
        codec: the negotiated codec (None: the client accepts no coding).
        codecs: every codec the app uses (decides whether ``Vary`` is needed).

    Returns:
        ``(headers, body, codec_used)``; ``codec_used`` is None when the body went unencoded.
    """
    if not is_compressible(status, headers, codecs):
        return list(headers), body, None
    if (
        codec is None
        or len(body) < codec.min_size
        or not codec.accepts(get_header(headers, b"content-type"))
    ):
        return add_vary(headers, ACCEPT_ENCODING), body, None
    encoded = codec.compress(body)
    return encoded_headers(headers, codec, len(encoded)), encoded, codec
