"""Cache keys: which stored entry a request reads, and the groups purges drop. Pure ASGI.

The key is injective before it is hashed: every field is length-prefixed, so no two distinct
requests (method class, scheme, host, path, parsed query, varied header values) encode to the
same bytes; an absent header encodes differently from an empty one. The stored key is
``<route>:<path>:<request>``, each part a hash, so a purge can drop one route or one path with
a prefix delete and no user-controlled byte ever reaches a store. ``<route>:<path>:`` is the
key's store *group* (:func:`aeros.stores.base.key_group`): every entry of one path, dropped by
one indexed group delete.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote_to_bytes

from aeros.headers import is_valid_host
from aeros.response_cache.policy import CachePolicy
from aeros.types import Scope

__all__ = [
    "KeyMemo",
    "build_key",
    "endpoint_tag",
    "fixed_tags",
    "key_material",
    "path_prefix",
    "request_host",
    "request_path",
    "route_prefix",
    "tag_name",
]

_LEN = struct.Struct("<I")
_DEFAULT_PORTS = {"http": b":80", "https": b":443"}
# bytes looked for as ints: ``b"%" in part`` makes and drops a TypeError first (bytes.__contains__
# tries its argument as an int), 0.15-0.25 us each
_PERCENT, _PLUS = ord("%"), ord("+")


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
    if not is_valid_host(host):  # the server's own Host grammar
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
        if _PERCENT in part or _PLUS in part:
            name = unquote_to_bytes(name.replace(b"+", b" "))
            value = unquote_to_bytes(value.replace(b"+", b" "))
        pairs.append((name, value))
    # by name only, values of a repeated name kept in their order: ``id=1&id=2`` and
    # ``id=2&id=1`` differ for the app (``request.args.get("id")``, ``getlist``)
    pairs.sort(key=_name)
    return pairs


def _name(pair: tuple[bytes, bytes]) -> bytes:
    return pair[0]


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


def endpoint_tag(policy: CachePolicy) -> str:
    """The internal tag every entry of the policy's route carries: an endpoint purge drops the
    route's entries through the store's tag index instead of scanning its keys."""
    return "e:" + policy.route_hash


def fixed_tags(policy: CachePolicy, scope: Scope) -> tuple[str, ...]:
    """The route's endpoint tag and its fixed ``tags`` (a ``tags=`` callable needs the app's
    route lookup: the app passes the layer its own ``tags_for``)."""
    fixed = () if callable(policy.tags) else policy.tags
    return (endpoint_tag(policy), *(tag_name(tag) for tag in fixed))


def tag_name(tag: str) -> str:
    """The store tag of a user's tag (``tags=[...]``), in its own namespace: no user tag can
    name an internal one."""
    return "t:" + tag


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
