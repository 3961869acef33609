"""What the response cache stores and under which key: policies, keys, entries. Pure ASGI.

The key is injective before it is hashed: every field is length-prefixed, so no two distinct
requests (method class, scheme, host, path, parsed query, varied header values) encode to the
same bytes; an absent header encodes differently from an empty one. The stored key is
``<route>:<path>:<request>``, each part a hash, so a purge can drop one route or one path with
a prefix delete and no user-controlled byte ever reaches a store.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_to_bytes

from aeros.headers import is_valid_host
from aeros.types import Headers, Scope

__all__ = [
    "CachePolicy",
    "Entry",
    "KeyMemo",
    "decode_entry",
    "encode_entry",
    "key_material",
    "path_prefix",
    "request_host",
    "request_path",
    "route_prefix",
]

_LEN = struct.Struct("<I")
_DEFAULT_PORTS = {"http": b":80", "https": b":443"}


@dataclass(frozen=True, slots=True, kw_only=True)
class CachePolicy:
    """How one route is cached; built by ``@app.cache(...)`` and read by the cache layer.

    Attributes:
        timeout: seconds a response stays fresh; None: until evicted or cleared.
        store_timeout: the decorator was given no timeout: the app serving the route replaces
            ``timeout`` with its store's default timeout.
        query_string: the query string is part of the key (``/s?q=a`` and ``/s?q=b`` differ;
            parameter order does not). False: every query shares one entry.
        key_prefix: a namespace mixed into the key (bump it to orphan old entries).
        unless: called with the ASGI scope before the cache is consulted; True bypasses the
            cache for that request (neither served from nor stored in it).
        vary: lower-case request header names the response depends on; their values are part
            of the key. Naming ``authorization`` or ``cookie`` here allows caching requests that
            carry them (one entry per distinct value).
        statuses: response statuses that may be stored (default 200 only).
        stale_while_revalidate: seconds after ``timeout`` during which a stale entry is still
            served while one background request refreshes it.
        route: the route's identity (its endpoint), filled in by the route lookup; purges
            drop keys by it.
    """

    timeout: float | None
    store_timeout: bool = False
    query_string: bool = True
    key_prefix: str = ""
    unless: Callable[[Scope], bool] | None = None
    vary: tuple[bytes, ...] = ()
    statuses: frozenset[int] = frozenset({200})
    stale_while_revalidate: float = 0.0
    route: str = ""
    route_hash: str = field(init=False, default="")
    key_prefix_bytes: bytes = field(init=False, default=b"")

    def __post_init__(self) -> None:
        object.__setattr__(self, "route_hash", _digest(self.route.encode(), 8))
        object.__setattr__(
            self, "key_prefix_bytes", self.key_prefix.encode("utf-8", "surrogatepass")
        )


def _digest(data: bytes, size: int) -> str:
    return hashlib.blake2b(data, digest_size=size).hexdigest()


def request_host(scope: Scope, host: bytes | None) -> bytes | None:
    """Return the validated, lower-cased host of the request; None when it is not valid.

    Without a Host header (HTTP/1.0) the server address stands in. The scheme's default port is
    dropped so ``example.com`` and ``example.com:80`` share entries.
    """
    if host is None:
        server = scope.get("server")
        if not server:
            return b""
        host = f"{server[0]}:{server[1]}".encode("latin-1")
    host = host.lower()
    if not is_valid_host(host):
        return None
    default = _DEFAULT_PORTS.get(scope.get("scheme", "http"))
    if default is not None and host.endswith(default):
        host = host[: -len(default)]
    return host


def _query(raw: bytes, enabled: bool) -> list[tuple[bytes, bytes]]:
    """Query parameters decoded the way the app decodes them, sorted (order does not matter).

    Percent-escapes and ``+`` are decoded to bytes, so ``a=%41`` and ``a=A`` share an entry
    while any two queries the app could tell apart stay different.
    """
    if not enabled or not raw:
        return []
    pairs = []
    for part in raw.split(b"&"):
        if not part:
            continue
        name, _, value = part.partition(b"=")
        if b"%" in part or b"+" in part:
            name = unquote_to_bytes(name.replace(b"+", b" "))
            value = unquote_to_bytes(value.replace(b"+", b" "))
        pairs.append((name, value))
    pairs.sort()
    return pairs


def key_material(
    policy: CachePolicy,
    scope: Scope,
    host: bytes,
    varied: Iterable[tuple[bytes, bytes | None]],
) -> tuple[bytes, bytes]:
    """Return the injective encodings of (URL, varied headers) that the key hashes."""
    pack = _LEN.pack
    prefix = policy.key_prefix_bytes
    scheme = scope.get("scheme", "http").encode("latin-1")
    path = request_path(scope)
    pairs = _query(scope.get("query_string", b""), policy.query_string)
    # method class first: HEAD is answered from GET entries
    url = [b"GET", pack(len(prefix)), prefix, pack(len(scheme)), scheme, pack(len(host)), host]
    url += (pack(len(path)), path, pack(len(pairs)))
    for name, value in pairs:
        url += (pack(len(name)), name, pack(len(value)), value)
    variant: list[bytes] = []
    for name, header in varied:
        variant += (pack(len(name)), name)
        if header is None:
            variant.append(b"\x00")
        else:
            variant += (b"\x01", pack(len(header)), header)
    return b"".join(url), b"".join(variant)


def route_prefix(policy: CachePolicy) -> str:
    """Store-key prefix of every entry of the policy's route."""
    return policy.route_hash + ":"


def request_path(scope: Scope) -> bytes:
    """The request path as the key holds it (``root_path`` included)."""
    path: str = scope.get("root_path", "") + scope["path"]
    return path.encode("utf-8", "surrogateescape")


def path_prefix(policy: CachePolicy, path: bytes) -> str:
    """Store-key prefix of every entry of one path (any host, query or variant): exactly the
    store *group* of those keys (see :class:`aeros.stores.PrefixStore`)."""
    return f"{policy.route_hash}:{_digest(path, 8)}:"


def build_key(
    policy: CachePolicy, path: bytes, url_material: bytes, variant_material: bytes
) -> str:
    """The store key ``<route>:<path>:<request>``; the last hash covers every key field."""
    digest = hashlib.blake2b(url_material, digest_size=16)
    digest.update(variant_material)
    return path_prefix(policy, path) + digest.hexdigest()


_KEY_MEMO_LIMIT = 4096  # request -> store key answers kept (cleared when full)
_KEY_MEMO_URL = 512  # longer path + query are keyed afresh (bounds the memo's bytes)


class KeyMemo:
    """The store key of a request, memoised for short URLs (hashing is the costly part)."""

    def __init__(self) -> None:
        self._keys: dict[tuple[Any, ...], tuple[CachePolicy, str]] = {}

    def __call__(
        self, policy: CachePolicy, scope: Scope, host: bytes | None, varied: dict[bytes, bytes]
    ) -> str | None:
        """The key of a request to ``policy``'s route; None when its Host is not valid."""
        path: str = scope["path"]
        query: bytes = scope.get("query_string", b"")
        memo_key: tuple[Any, ...] | None = None
        if host is not None and len(path) + len(query) <= _KEY_MEMO_URL:
            values = tuple(varied.get(name) for name in policy.vary) if policy.vary else ()
            memo_key = (id(policy), scope.get("scheme"), host, scope.get("root_path"), path, query)
            memo_key += values
            found = self._keys.get(memo_key)
            if found is not None and found[0] is policy:
                return found[1]
        valid_host = request_host(scope, host)
        if valid_host is None:
            return None
        url, variant = key_material(
            policy, scope, valid_host, [(name, varied.get(name)) for name in policy.vary]
        )
        key = build_key(policy, request_path(scope), url, variant)
        if memo_key is not None:
            if len(self._keys) >= _KEY_MEMO_LIMIT:
                self._keys.clear()
            self._keys[memo_key] = (policy, key)
        return key


# ---- entries ----------------------------------------------------------------------------

_MAGIC = b"AER1"
_ENTRY = struct.Struct("<4sHdddH")  # magic, status, created, fresh until, stale until, headers
_PAIR = struct.Struct("<HI")


@dataclass(slots=True)
class Entry:
    """One cached response: identity body plus the encoded variants served so far.

    Times are wall-clock (``time.time()``) so every worker and instance agrees on them.
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
