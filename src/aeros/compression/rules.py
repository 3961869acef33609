"""What the compression layer does to a response, decided from its status and headers.

:func:`plan` gives the rule of :mod:`aeros.compression.layer`'s docstring that applies to a
response (:data:`AS_IS`, :data:`VARY` or :data:`ENCODE`); :func:`with_vary` and
:func:`encode_whole` carry it out on headers and on a whole body. Both of the layer's ways of
sending use them: the :class:`~aeros.compression.layer.CompressingSender` (a response in
messages) and the :class:`~aeros.compression.layer.WholeEncoder` (aeros' lean connection, a
whole body at once).
"""

from __future__ import annotations

from collections.abc import Sequence

from aeros.compression.codecs import Codec
from aeros.compression.headers import ACCEPT_ENCODING, UNTOUCHED_STATUS, encoded_headers
from aeros.headers import add_vary
from aeros.types import Headers

__all__ = ["AS_IS", "ENCODE", "VARY", "VARY_FIELD", "encode_whole", "plan", "with_vary"]

VARY_FIELD = (b"vary", ACCEPT_ENCODING)
"""The ``Vary`` field a response that varies by coding gets when it has none."""

AS_IS, VARY, ENCODE = 0, 1, 2
"""What :func:`plan` says a response gets: sent untouched; sent with ``Vary:
Accept-Encoding``; encoded (when its body is at least the codec's ``min_size``)."""


def plan(
    status: int, headers: Headers, codec: Codec | None, codecs: Sequence[Codec]
) -> tuple[int, int, bool]:
    """What a response of this status and these headers gets (:data:`AS_IS`, :data:`VARY` or
    :data:`ENCODE`), its ``Content-Length`` (-1: none) and whether it has a ``Vary`` field:
    the rules of :mod:`aeros.compression.layer`'s docstring, decided from the start of the
    response."""
    if status < 200 or status in UNTOUCHED_STATUS:
        return AS_IS, -1, False
    # one pass over the headers; this is the whole cost of a response left alone
    content_type = None
    length = -1
    vary = False
    for name, value in headers:
        if name == b"content-type":
            content_type = value
        elif name == b"content-length":
            length = int(value) if value.isdigit() else -1
        elif name == b"content-encoding" and value.strip().lower() != b"identity":
            return AS_IS, length, vary  # already encoded: never twice
        elif name == b"vary":
            vary = True
    if content_type is None:
        return AS_IS, length, vary
    for some_codec in codecs:
        if some_codec.accepts(content_type):
            break
    else:
        return AS_IS, length, vary  # no codec wants this type: it does not vary by coding
    if codec is None or (codec is not some_codec and not codec.accepts(content_type)):
        return VARY, length, vary
    return ENCODE, length, vary


def with_vary(headers: Headers, vary: bool) -> Headers:
    """``headers`` and ``Vary: Accept-Encoding``, as a new list (the headers given may be
    shared by every answer of a route); ``vary``: they may have a ``Vary`` field to merge into
    (False only when they have none)."""
    return add_vary(headers, ACCEPT_ENCODING) if vary else [*headers, VARY_FIELD]


def encode_whole(codec: Codec, headers: Headers, body: bytes, vary: bool) -> tuple[Headers, bytes]:
    """A whole body the codec applies to: encoded, with its encoded headers, when it is at
    least the codec's ``min_size``; else as it is, with ``Vary`` (:func:`with_vary`)."""
    if len(body) < codec.min_size:
        return with_vary(headers, vary), body
    body = codec.compress(body)
    return encoded_headers(headers, codec, len(body)), body
