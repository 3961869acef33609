"""Answering from a cache entry: the representation a client accepts, 304s, Age.

A hit does no compression work once an entry has served a coding: every encoded variant is
kept in the entry, and the headers of each answer (global headers included) are prepared once
per entry and coding. A variant is encoded by the compression layer's own
:func:`~aeros.compression.headers.encode_body`, so a cached response and an uncached one are
encoded alike.
"""

from __future__ import annotations

from collections.abc import Sequence

from aeros.compression.codecs import Codec
from aeros.compression.headers import encode_body, encoded_headers
from aeros.middleware.headers import GlobalHeaders
from aeros.response_cache.entry import Entry
from aeros.response_cache.status import CACHE_STATUS
from aeros.types import Headers, Scope, Send
from aeros.whole_response import sent_whole

__all__ = ["NOT_MODIFIED_HEADERS", "answer", "etag_matches", "prepare"]

NOT_MODIFIED_HEADERS = frozenset(
    {b"cache-control", b"content-location", b"etag", b"expires", b"vary"}
)


def prepare(
    entry: Entry,
    codec: Codec | None,
    codecs: Sequence[Codec],
    extra: GlobalHeaders | None = None,
) -> tuple[Headers, bytes, bool]:
    """Headers (without Age) and body for a client accepting ``codec``; memoised per entry.

    ``codecs`` are every codec the app uses; ``extra`` are the app's global headers (the entry
    never holds them). A layer passes the same ones for every call on an entry. Returns
    ``(headers, body, new)``: ``new`` is true when a variant was encoded now.
    """
    coding = codec.encoding if codec is not None else b""
    prepared = entry.prepared.get(coding)
    if prepared is not None:
        return prepared[0], prepared[1], False
    new = False
    encoded = entry.variants.get(coding) if codec is not None else None
    if codec is not None and encoded is not None:  # encoded before, by this or another worker
        headers, body = encoded_headers(entry.headers, codec, len(encoded)), encoded
    else:
        headers, body, used = encode_body(entry.status, entry.headers, entry.body, codec, codecs)
        if used is not None:
            entry.variants[coding] = body
            new = True
        else:
            headers = [*headers, (b"content-length", str(len(body)).encode())]
    if extra:
        headers = extra.apply(headers)
    entry.prepared[coding] = (headers, body)
    return headers, body, new


async def answer(
    scope: Scope,
    send: Send,
    entry: Entry,
    headers: Headers,
    body: bytes,
    if_none_match: bytes | None,
    head: bool,
    now: float,
    kept_in_304: frozenset[bytes] = NOT_MODIFIED_HEADERS,
    cache_status: bytes | None = None,
) -> None:
    """Send a prepared answer: 304 when ``If-None-Match`` matches, else the status and body.

    ``Age`` is added unless the entry was made at ``now`` (the request that filled it). A 304
    keeps only the headers named in ``kept_in_304`` (RFC 9110 15.4.5's list by default).
    ``cache_status`` is this request's ``Cache-Status`` value (on 304s too); None: none.
    """
    age = str(max(0, int(now - entry.created))).encode()
    if (
        if_none_match is not None
        and 200 <= entry.status < 300  # RFC 9110 13.2.2: preconditions apply to 2xx only
        and etag_matches(if_none_match, entry.etag)
    ):
        headers = [(n, v) for n, v in headers if n in kept_in_304]
        headers.append((b"age", age))
        if cache_status is not None:
            headers.append((CACHE_STATUS, cache_status))
        await send({"type": "http.response.start", "status": 304, "headers": headers})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return
    if now != entry.created:
        headers = [*headers, (b"age", age)]
        if cache_status is not None:
            headers.append((CACHE_STATUS, cache_status))
    elif cache_status is not None:
        headers = [*headers, (CACHE_STATUS, cache_status)]
    if head:
        body = b""
    if not sent_whole(scope, send, entry.status, headers, body):
        await send({"type": "http.response.start", "status": entry.status, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})


def _opaque(tag: bytes) -> bytes:
    tag = tag.strip()
    return tag[2:] if tag.startswith(b"W/") else tag


def etag_matches(if_none_match: bytes, etag: bytes) -> bool:
    """Weak comparison (RFC 9110 13.1.2): ``*`` or any listed tag with the same opaque part."""
    if not etag:
        return False
    if if_none_match.strip() == b"*":
        return True
    wanted = _opaque(etag)
    return any(_opaque(tag) == wanted for tag in if_none_match.split(b","))
