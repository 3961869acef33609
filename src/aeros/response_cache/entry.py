"""Stored entries: one cached response and its fixed binary layout (no pickle). Pure ASGI."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from aeros.types import Headers

__all__ = ["Entry", "decode_entry", "encode_entry"]

_MAGIC = b"AER1"
_ENTRY = struct.Struct("<4sHdddH")  # magic, status, created, fresh until, stale until, headers
_PAIR = struct.Struct("<HI")


@dataclass(slots=True)
class Entry:
    """One cached response: identity body plus the encoded variants served so far.

    Times are wall-clock (the layer's clock, ``time.time`` by default) so every worker and
    instance agrees on them.
    """

    status: int
    headers: Headers
    body: bytes
    created: float
    fresh_until: float
    stale_until: float
    variants: dict[bytes, bytes] = field(default_factory=dict)
    etag: bytes = b""
    prepared: dict[bytes, tuple[Headers, bytes]] = field(default_factory=dict)
    """Per coding (``b""``: identity), the headers and body a hit sends; never stored."""

    def __post_init__(self) -> None:
        if not self.etag:
            for name, value in self.headers:
                if name == b"etag":
                    self.etag = value
                    break


def encode_entry(entry: Entry) -> bytes:
    """Serialise an entry (no pickle: a fixed binary layout)."""
    out = bytearray(
        _ENTRY.pack(
            _MAGIC,
            entry.status,
            entry.created,
            entry.fresh_until,
            entry.stale_until,
            len(entry.headers),
        )
    )
    for name, value in entry.headers:
        out += _PAIR.pack(len(name), len(value))
        out += name
        out += value
    out += _PAIR.pack(len(entry.variants), len(entry.body))
    out += entry.body
    for coding, body in entry.variants.items():
        out += _PAIR.pack(len(coding), len(body))
        out += coding
        out += body
    return bytes(out)


def decode_entry(data: bytes) -> Entry | None:
    """Parse :func:`encode_entry`'s output; None when it is not a complete entry."""
    try:
        magic, status, created, fresh, stale, n_headers = _ENTRY.unpack_from(data)
        if magic != _MAGIC:
            return None
        pos = _ENTRY.size
        headers: Headers = []
        for _ in range(n_headers):
            n, v = _PAIR.unpack_from(data, pos)
            pos += _PAIR.size
            headers.append((data[pos : pos + n], data[pos + n : pos + n + v]))
            pos += n + v
        n_variants, body_len = _PAIR.unpack_from(data, pos)
        pos += _PAIR.size
        body = data[pos : pos + body_len]
        pos += body_len
        variants: dict[bytes, bytes] = {}
        for _ in range(n_variants):
            n, v = _PAIR.unpack_from(data, pos)
            pos += _PAIR.size
            variants[data[pos : pos + n]] = data[pos + n : pos + n + v]
            pos += n + v
    except struct.error:
        return None
    if pos != len(data):
        return None
    return Entry(status, headers, body, created, fresh, stale, variants)
