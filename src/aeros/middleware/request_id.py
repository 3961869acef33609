"""Request-id layer: give every request an id, in views, log records and the response.

The outermost layer. It takes the id a trusted proxy sent (the peer is one of
``forwarded_allow_ips`` and the value is well formed) or makes one, sets it for the duration of
the request (:func:`aeros.request_id`, and every log record: :mod:`aeros.logging.context`), and
sends it back on the response, whoever made it: the app, a cache hit (the cache never stores
this header, so a hit never replays another request's id), a 503 of the concurrency limit.
"""

from __future__ import annotations

import ipaddress
import os
import re
import struct
from collections.abc import Awaitable, Iterable, Iterator
from typing import Any
from weakref import WeakSet

from aeros.asgi_entry import asgi3
from aeros.errors import ConfigurationError
from aeros.headers import check_header, get_header, send_adding
from aeros.logging.context import request_line_var
from aeros.types import GIVEN_REQUEST_ID, HEADER_LINES, PEER, ASGIApp, Receive, Scope, Send

__all__ = ["DEFAULT_HEADER", "MAX_LENGTH", "RequestIdMiddleware", "new_request_id"]

DEFAULT_HEADER = "X-Request-ID"
"""The header read from trusted proxies and sent back, unless ``request_id=`` names another."""
MAX_LENGTH = 128
"""Longest id taken from a proxy; a longer one is replaced by a fresh id."""

# what an id may hold: no spaces, quotes, commas or control characters, so it is safe in a
# log line and in a header as it is
_WELL_FORMED = re.compile(rb"[A-Za-z0-9._:/+=@-]{1,%d}" % MAX_LENGTH)
_TRUSTED_MEMO_LIMIT = 1024
_UNNOTED: Any = object()  # what a scope without the server's note gives
_POOL_IDS = 128  # ids made at a time
# bound once: a method call on a from-imported name is never specialized
_set_line = request_line_var.set
_reset_line = request_line_var.reset


class _Lines:
    """Fresh ids as the header lines that carry them (``line_start``, 32 hex digits, CRLF),
    made ``_POOL_IDS`` at a time from one ``os.urandom`` read.

    A request takes its line with one ``next`` of a tuple iterator. The id as a string is made
    only when something reads it (:func:`aeros.request_id`, a log record). Making the batch is
    three calls over all of it: the hex digits with a newline between ids (``bytes.hex``'s
    separator), one ``replace`` that turns each newline into the end of a line and the start
    of the next, and one ``struct`` unpack of the text into its lines, which all have the same
    length; no Python loop per id, and no call per id when a request takes one (a ``map`` of
    slices over the text cost a slice call per request: 0.3-0.8 k instructions more,
    docs/performance.md, round twenty-four). A batch takes 13 us, where a ``split`` at
    separators took 20 us (Python 3.13, round twenty-eight). The layer alone counts 1.1 k
    instructions a request less than with a batch of ``(id, line)`` pairs, 1.6 k with a
    trusted peer (round seventeen). The bytes come from the kernel's random source, not from
    a generator seeded in the process, and every batch is dropped in a forked child
    (``os.register_at_fork``), so workers never share ids. An id is a label, not a secret.
    """

    def __init__(self, line_start: bytes) -> None:
        self.line_start = line_start
        self.glue = b"\r\n" + line_start
        # every line: the start, 32 hex digits and CRLF
        self.unpack = struct.Struct(f"{len(line_start) + 34}s" * _POOL_IDS).unpack
        self.batch: Iterator[bytes] = iter(())
        _POOLS.add(self)

    def drop(self) -> None:
        """Forget the ids made so far (a forked child must not reuse its parent's)."""
        self.batch = iter(())

    def refill(self) -> bytes:
        """The first line of a new batch; the batch keeps the rest."""
        digits = os.urandom(16 * _POOL_IDS).hex("\n", 16).encode("ascii")
        text = self.line_start + digits.replace(b"\n", self.glue) + b"\r\n"
        self.batch = batch = iter(self.unpack(text))
        first: bytes = next(batch)
        return first


_POOLS: WeakSet[_Lines] = WeakSet()


def _drop_all() -> None:
    for pool in _POOLS:
        pool.drop()


if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(after_in_child=_drop_all)

_LINES = _Lines(b"")


def new_request_id() -> str:
    """A fresh id: 32 lower-case hex digits (128 random bits)."""
    return (next(_LINES.batch, None) or _LINES.refill())[:-2].decode("ascii")


class _Trust(dict[str, bool]):
    """``trust[host]``: whether a peer address is one of ``forwarded_allow_ips``, worked out
    on a peer's first request and remembered (a dict lookup per request after that)."""

    def __init__(self, allowed: Iterable[str]) -> None:
        super().__init__()
        items = tuple(allowed)
        self.everyone = "*" in items
        self.networks = tuple(
            ipaddress.ip_network(item, strict=False) for item in items if item != "*"
        )

    def __missing__(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            trusted = self.everyone  # not an IP address (a Unix socket's peer): only by "*"
        else:
            trusted = self.everyone or any(address in network for network in self.networks)
        if len(self) >= _TRUSTED_MEMO_LIMIT:
            self.clear()
        self[host] = trusted
        return trusted


class RequestIdMiddleware:
    """Give each HTTP request and WebSocket an id; send it back in ``header``.

    Args:
        app: the ASGI app to wrap.
        header: the header read from trusted proxies and set on every response. Default
            ``X-Request-ID``.
        trusted: peers (IP addresses, networks, or ``"*"``) whose id is taken: the server's
            ``forwarded_allow_ips``. Empty: always make a fresh id.

    Raises:
        ConfigurationError: ``header`` is not a valid header name, or an entry of ``trusted``
            is not an address or network.
    """

    def __init__(
        self, app: ASGIApp, header: str = DEFAULT_HEADER, trusted: Iterable[str] = ()
    ) -> None:
        self.app = app
        name, _ = check_header(header, "-", where="WebServer(request_id=...)")
        self.header = name  # check_header gave the name lower-cased
        self.line_start = name + b": "  # of the header line aeros' server writes
        self.lines = _Lines(self.line_start)  # fresh ids in their lines
        # aeros' server notes an X-Request-ID header as it parses (GIVEN_REQUEST_ID); another
        # name is found by a scan of the headers
        self.noted = name == DEFAULT_HEADER.lower().encode("ascii")
        try:
            self.trust: _Trust | None = _Trust(trusted)
        except ValueError as exc:
            raise ConfigurationError(
                f"RequestIdMiddleware(trusted={trusted!r}): {exc}; use IP addresses, networks "
                "or '*'"
            ) from exc
        if not self.trust.everyone and not self.trust.networks:
            self.trust = None

    def request_line(self, scope: Scope, given: bytes | None = None) -> bytes:
        """The header line carrying this request's id (``name: id`` and CRLF): the trusted
        proxy's id when well formed, else a fresh one.

        ``given``: the id header's value as aeros' server noted it (:data:`GIVEN_REQUEST_ID`);
        None: looked up in the headers, and only when the peer is trusted.
        """
        trust = self.trust
        if trust is not None:
            peer = scope.get(PEER) or scope.get("client")
            if peer is not None and trust[peer[0]]:
                if given is None:
                    given = get_header(scope["headers"], self.header)
                if given is not None and _WELL_FORMED.fullmatch(given) is not None:
                    line: bytes = self.line_start + given + b"\r\n"
                    return line
        lines = self.lines
        return next(lines.batch, None) or lines.refill()

    @asgi3
    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        lines = scope.get(HEADER_LINES)
        if lines is None:  # another server, or not an HTTP request (only those have the key)
            return self._wrap(scope, receive, send)
        # aeros' server writes the line into whichever response this request gets, and runs
        # each request in a task of its own whose context ends with the request: the id needs
        # no reset (the server's own log lines after the app returns carry it too). So no
        # send wrapper and no coroutine of this layer: the app's coroutine goes back to the
        # caller as it is. (An id is made here or checked by _WELL_FORMED: no CR, LF or space.)
        if self.noted:  # the server notes the header while parsing: no scan
            given = scope.get(GIVEN_REQUEST_ID, _UNNOTED)
            if given is None:  # none given: a fresh id, with no look at the peer
                try:  # (free unless raised: fewer bytecodes than next's default and an or)
                    line = next(self.lines.batch)
                except StopIteration:
                    line = self.lines.refill()
            elif given is _UNNOTED:  # not straight from the server: the headers may differ
                line = self.request_line(scope)
            else:
                line = self.request_line(scope, given)
        else:
            line = self.request_line(scope)
        _set_line(line)
        lines.append(line)
        return self.app(scope, receive, send)

    async def _wrap(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Any other server, or a WebSocket: the id set for the call and added by a wrapper."""
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        line = self.request_line(scope)
        token = _set_line(line)
        if kind == "http":
            send = send_adding(send, ((self.header, line[len(self.line_start) : -2]),))
        try:
            await self.app(scope, receive, send)
        finally:
            _reset_line(token)
