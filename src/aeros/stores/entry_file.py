"""The bytes of one :class:`~aeros.stores.filesystem.FilesystemCache` entry file.

``MAGIC | expires (f64, wall clock; inf: never) | key length (u32) | key | value | MAC``: the
MAC is a keyed BLAKE2b over everything before it, with the cache's secret. No pickle: a file
that is truncated, corrupt or forged by someone without the secret fails :func:`parse` and
reads as a miss. File names come from the key's hashes (:func:`group_hash` and the key's own),
so no key can name a path outside the directory.
"""

from __future__ import annotations

import hashlib
import secrets
import struct
from typing import BinaryIO

from aeros.stores.base import key_group

__all__ = ["encode_key", "group_hash", "key_group_of", "pack", "parse", "read_expiry"]

_MAGIC = b"AEC1"
_HEADER = struct.Struct("<4sdI")  # magic, expires (unix time; inf: never), key length
_MAC_SIZE = 32


def encode_key(key: str) -> bytes:
    """A key's bytes in the file (and in its name's hash)."""
    # surrogatepass: any str is a valid key, even one decoded with surrogateescape
    return key.encode("utf-8", "surrogatepass")


def key_group_of(raw_key: bytes) -> str:
    """The group of a key read back from a file (:func:`aeros.stores.base.key_group`)."""
    return key_group(raw_key.decode("utf-8", "surrogatepass"))


def group_hash(group: str) -> str:
    """The first part of the file names of a group's entries."""
    return hashlib.blake2b(encode_key(group), digest_size=8).hexdigest()


def pack(secret: bytes, expires: float, raw_key: bytes, value: bytes) -> bytes:
    """An entry file's bytes, signed with ``secret``."""
    body = _HEADER.pack(_MAGIC, expires, len(raw_key)) + raw_key + value
    return body + _mac(secret, body)


def parse(data: bytes, secret: bytes) -> tuple[float, bytes, bytes] | None:
    """Split an entry file into (expires, key, value); None when it is not intact."""
    if len(data) < _HEADER.size + _MAC_SIZE:
        return None
    body, mac = data[:-_MAC_SIZE], data[-_MAC_SIZE:]
    if not secrets.compare_digest(mac, _mac(secret, body)):
        return None
    magic, expires, key_len = _HEADER.unpack_from(body)
    if magic != _MAGIC or _HEADER.size + key_len > len(body):
        return None
    start = _HEADER.size
    return expires, body[start : start + key_len], body[start + key_len :]


def read_expiry(handle: BinaryIO) -> float | None:
    """When the entry open in ``handle`` expires, read from its head alone (not checked:
    for pruning); None when the file is too short to have one."""
    head = handle.read(_HEADER.size)
    if len(head) < _HEADER.size:
        return None
    expires: float = _HEADER.unpack(head)[1]
    return expires


def _mac(secret: bytes, body: bytes) -> bytes:
    return hashlib.blake2b(body, key=secret, digest_size=_MAC_SIZE).digest()
