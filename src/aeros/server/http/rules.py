"""What a request head must look like, and the answers sent when it does not.

Pure functions and tables, no I/O: the HTTP protocol class (:mod:`aeros.server.http.protocol`)
calls them from its parser callbacks. llhttp (through httptools) already rejects malformed
framing, Content-Length and Transfer-Encoding combinations, control characters and obs-fold;
the rules here cover what it accepts but a server facing the internet must not (see
docs/security.md). The Host grammar is :func:`aeros.headers.is_valid_host`.
"""

from __future__ import annotations

from collections.abc import Iterable

from aeros.headers import is_valid_host  # one Host grammar, shared with the response cache

__all__ = [
    "HASH",
    "HEAD_SLACK",
    "MESSAGES",
    "RejectRequest",
    "answer_header_block",
    "error_response",
    "is_valid_host",
    "other_target_status",
    "transfer_coding_status",
]

# Method, spaces, "HTTP/1.1" and the CRLFs around the header block: bytes of a head that count
# towards neither the request-line nor the header-block limit.
HASH = ord("#")
"""``#`` as an int, to look for in a request target: ``b"#" in target`` makes and drops a
TypeError first (bytes.__contains__ tries its argument as an int), 0.15-0.25 us per request."""
HEAD_SLACK = 64

MESSAGES: dict[int, bytes] = {
    400: b"Bad Request",
    408: b"Request Timeout",
    413: b"Content Too Large",
    414: b"URI Too Long",
    431: b"Request Header Fields Too Large",
    501: b"Not Implemented",
    503: b"Service Unavailable",
    505: b"HTTP Version Not Supported",
}
"""The reason phrase of each answer the server makes itself (RFC 9110 names), which is also
its body: Python's ``http.HTTPStatus`` still has the older names for some (``Request Entity Too
Large``), so the status line and the body would disagree."""

# Headers an answer of the server sets itself: an extra header of the same name is left out.
_OWN_HEADERS = frozenset((b"content-type", b"content-length", b"connection", b"transfer-encoding"))

# Status line and fixed headers of each error answer, built once; the server's default headers
# (Date) and the body are appended per answer.
_HEADS: dict[int, bytes] = {
    status: (
        f"HTTP/1.1 {status} {body.decode('ascii')}\r\n"
        "content-type: text/plain; charset=utf-8\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n"
    ).encode("ascii")
    for status, body in MESSAGES.items()
}


class RejectRequest(Exception):
    """Raised inside a parser callback to stop parsing and answer ``status``."""


def answer_header_pairs(
    headers: Iterable[tuple[bytes, bytes]],
) -> tuple[tuple[bytes, bytes], ...]:
    """``headers`` (the app's global headers) for the server's own answers: names lower-cased,
    without the framing and content-type headers each answer sets itself (as a view's own
    header wins over a global one)."""
    lowered = ((name.lower(), value) for name, value in headers)
    return tuple((name, value) for name, value in lowered if name not in _OWN_HEADERS)


def answer_header_block(headers: Iterable[tuple[bytes, bytes]]) -> bytes:
    """:func:`answer_header_pairs` as header lines for :func:`error_response`; built once per
    server."""
    return b"".join(name + b": " + value + b"\r\n" for name, value in answer_header_pairs(headers))


def error_response(
    status: int, default_headers: Iterable[tuple[bytes, bytes]], extra: bytes = b""
) -> bytes:
    """The bytes of a complete ``status`` answer that closes the connection.

    Args:
        status: one of :data:`MESSAGES`.
        default_headers: the server's per-response headers (uvicorn's ``Date``).
        extra: more header lines, from :func:`answer_header_block` (the global headers).
    """
    parts = [_HEADS[status]]
    for name, value in default_headers:
        parts += (name, b": ", value, b"\r\n")
    parts += (extra, b"\r\n", MESSAGES[status])
    return b"".join(parts)


def other_target_status(method: bytes, target: bytes, host: bytes | None) -> int:
    """Check a request-target that is not plain origin-form; 0 when it is acceptable.

    Allowed besides ``/path?query``: ``*`` for OPTIONS, and absolute-form
    (``http://host/path``) when its authority is exactly the Host header, so the host the
    app and the cache see is the one the client addressed. Fragments are never allowed.
    """
    if HASH in target:
        return 400
    if target == b"*":
        return 0 if method == b"OPTIONS" else 400
    lowered = target[:8].lower()
    if lowered.startswith(b"http://"):
        rest = target[7:]
    elif lowered.startswith(b"https://"):
        rest = target[8:]
    else:
        return 400
    authority, slash, _ = rest.partition(b"/")
    if not slash or host is None or authority.lower() != host.lower():
        return 400
    return 0


def transfer_coding_status(value: bytes, http_version: str) -> int:
    """Check a Transfer-Encoding value llhttp accepted; 0 when the body is plain chunked.

    RFC 9112 section 6: any coding on HTTP/1.0 is faulty framing (400); a request whose final
    coding is not ``chunked`` has no knowable length (400), nor one with an empty list element;
    other codings before ``chunked`` are ones we do not decode (501). llhttp has already
    refused ``chunked, chunked`` and a Content-Length beside Transfer-Encoding.
    """
    if http_version == "1.0":
        return 400
    codings = [coding.strip().lower() for coding in value.split(b",")]
    if codings[-1] != b"chunked" or b"" in codings:
        return 400
    if len(codings) > 1:
        return 501
    return 0
