"""Raw-socket helpers for the hardening tests: send exact bytes, read exact answers."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class Response:
    """One HTTP/1.1 response as it came off the wire."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        for key, value in self.headers:
            if key == name.lower():
                return value
        return None


@dataclass
class Exchange:
    """Everything a server sent on one connection, and whether it closed the connection."""

    responses: list[Response]
    closed: bool
    raw: bytes


def address(url: str) -> tuple[str, int]:
    """``(host, port)`` of a base URL such as ``http://127.0.0.1:8000``."""
    parts = urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None
    return parts.hostname, parts.port


def connect(url: str, timeout: float = 5.0) -> socket.socket:
    """A TCP connection to the server at ``url``."""
    sock = socket.create_connection(address(url), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def parse_responses(data: bytes) -> tuple[list[Response], bytes]:
    """Split ``data`` into complete responses; returns them and the incomplete rest."""
    responses: list[Response] = []
    while True:
        head_end = data.find(b"\r\n\r\n")
        if head_end < 0:
            return responses, data
        lines = data[:head_end].decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.append((name.strip().lower(), value.strip()))
        rest = data[head_end + 4 :]
        response = Response(status, headers)
        length = response.header("content-length")
        if status < 200 or status in (204, 304):
            body, rest = b"", rest
        elif length is not None:
            if len(rest) < int(length):
                return responses, data
            body, rest = rest[: int(length)], rest[int(length) :]
        elif response.header("transfer-encoding") == "chunked":
            parsed = _dechunk(rest)
            if parsed is None:
                return responses, data
            body, rest = parsed
        else:
            body, rest = rest, b""  # read to close
        response.body = body
        responses.append(response)
        data = rest


def _dechunk(data: bytes) -> tuple[bytes, bytes] | None:
    body = b""
    while True:
        line_end = data.find(b"\r\n")
        if line_end < 0:
            return None
        size = int(data[:line_end].split(b";")[0], 16)
        start = line_end + 2
        if len(data) < start + size + 2:
            return None
        if size == 0:
            return body, data[start + 2 :]
        body += data[start : start + size]
        data = data[start + size + 2 :]


def read_until_close(sock: socket.socket, timeout: float = 3.0) -> Exchange:
    """Read until the server closes the connection or ``timeout`` seconds pass quietly."""
    sock.settimeout(timeout)
    raw = b""
    closed = False
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                closed = True
                break
            raw += chunk
    except TimeoutError:
        pass
    except ConnectionResetError:
        closed = True
    responses, _ = parse_responses(raw)
    return Exchange(responses, closed, raw)


def read_responses(sock: socket.socket, count: int, timeout: float = 5.0) -> list[Response]:
    """Read exactly ``count`` complete responses (fails at the deadline)."""
    deadline = time.monotonic() + timeout
    raw = b""
    while True:
        responses, _ = parse_responses(raw)
        if len(responses) >= count:
            return responses
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"got {len(responses)} of {count} responses: {raw[-300:]!r}")
        sock.settimeout(left)
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed after {len(responses)} of {count} responses")
        raw += chunk


def exchange(url: str, data: bytes, timeout: float = 3.0) -> Exchange:
    """Send ``data`` on a fresh connection and read until the server closes it."""
    with connect(url) as sock:
        sock.sendall(data)
        return read_until_close(sock, timeout)


def wait_closed(sock: socket.socket, timeout: float) -> tuple[bytes, float]:
    """Wait for the server to close ``sock``; returns what it sent and when (monotonic)."""
    deadline = time.monotonic() + timeout
    raw = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"still open after {timeout} s; got {raw!r}")
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            return raw, time.monotonic()
        raw += chunk
