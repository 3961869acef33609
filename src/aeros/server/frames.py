"""Frames over the forkserver's socket pair: a pickled object, with file descriptors.

A frame is a 4-byte length, then the pickle. Descriptors go with the frame's first bytes
(``SCM_RIGHTS``: :func:`socket.send_fds`) and are collected from every read that makes it up.
Both ends are one process and a fork of it: nothing foreign is ever unpickled.
"""

from __future__ import annotations

import pickle
import socket
import struct
from typing import Any

__all__ = ["MAX_FDS", "recv_frame", "send_frame"]

_HEADER = struct.Struct("!I")
MAX_FDS = 2
"""Descriptors a frame may carry (a spawn request's listening socket and channel)."""


def send_frame(sock: socket.socket, payload: object, fds: tuple[int, ...] = ()) -> None:
    """Send ``payload`` pickled as one frame, with the descriptors ``fds`` (at most
    :data:`MAX_FDS`)."""
    data = pickle.dumps(payload)
    frame = _HEADER.pack(len(data)) + data
    if fds:
        sent = socket.send_fds(sock, [frame], list(fds))
        frame = frame[sent:]
    if frame:
        sock.sendall(frame)


def _recv_exact(sock: socket.socket, size: int, fds: list[int]) -> bytes | None:
    chunks = b""
    while len(chunks) < size:
        data, got, _flags, _addr = socket.recv_fds(sock, size - len(chunks), MAX_FDS)
        fds.extend(got)
        if not data:
            return None
        chunks += data
    return chunks


def recv_frame(sock: socket.socket) -> tuple[Any, list[int]] | None:
    """One frame and the descriptors that came with it; None at EOF."""
    fds: list[int] = []
    head = _recv_exact(sock, _HEADER.size, fds)
    if head is None:
        return None
    body = _recv_exact(sock, _HEADER.unpack(head)[0], fds)
    if body is None:
        return None
    # Both ends are this process and a fork of it: nothing foreign is ever unpickled here.
    return pickle.loads(body), fds  # noqa: S301
