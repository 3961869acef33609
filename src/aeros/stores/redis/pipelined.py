"""A GET-only Redis connection that batches every concurrent GET of an event loop into one
write and parses the replies with hiredis: the hot path of a RedisCache hit.

redis-py's asyncio client spends about 75 µs of CPU per GET (a pooled connection checked out
and back, a retry wrapper, a timeout context, observability hooks); this connection spends a
few: one shared socket, requests queued in order, one ``transport.write`` per loop iteration,
one parser feed per read. ``docs/performance.md`` has the measurements
(``python -m bench.redis_clients``).

It speaks to one server (a plain ``redis://`` or ``unix://`` address, host and port, or the
primary a Sentinel names, asked again at each reconnect). A
connection that fails, or leaves a reply unanswered past the timeout, is closed and every
waiting GET fails with :class:`ConnectionError`; the next GET connects afresh.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable
from typing import Any

import hiredis

__all__ = ["Address", "PipelinedGet"]

Address = dict[str, Any]
"""Where to connect, in redis-py's ``parse_url`` shape."""


class PipelinedGet:
    """GETs of one event loop over one connection, pipelined.

    Args:
        address: ``{"host": ..., "port": ...}`` or ``{"path": ...}`` (a unix socket), with
            optional ``password``, ``username`` and ``db`` (redis-py's ``parse_url`` shape);
            or a coroutine function returning one, asked before each connect (the primary
            Sentinel names now).
        timeout: seconds for each reply, and for connecting (twice that with a coroutine
            function: it asks the network too).
    """

    def __init__(self, address: Address | Callable[[], Awaitable[Address]], timeout: float) -> None:
        self.address = address
        self.timeout = timeout
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Task[_Protocol] | None = None

    async def get(self, key: bytes) -> bytes | None:
        """The value of ``key`` (None when absent).

        Raises:
            ConnectionError: no connection, or it failed or timed out.
            hiredis.ReplyError: Redis answered with an error.
        """
        protocol = self._protocol
        if protocol is None or protocol.closed:
            protocol = await self._connect()
        reply = await protocol.request(b"*2\r\n$3\r\nGET\r\n$%d\r\n%b\r\n" % (len(key), key))
        return reply  # type: ignore[no-any-return]

    async def _connect(self) -> _Protocol:
        if self._connecting is None:
            # a task of its own, shared by every GET that finds no connection: a caller that
            # is cancelled stops waiting, never the connect the others wait for
            self._connecting = asyncio.ensure_future(self._open_in_time())
            self._connecting.add_done_callback(self._connected)
        return await asyncio.shield(self._connecting)

    async def _open_in_time(self) -> _Protocol:
        try:
            deadline = self.timeout if isinstance(self.address, dict) else 2 * self.timeout
            return await asyncio.wait_for(self._open(asyncio.get_running_loop()), deadline)
        except OSError as exc:  # TimeoutError included
            raise ConnectionError(f"cannot connect to Redis: {exc!r}") from exc

    def _connected(self, connecting: asyncio.Future[_Protocol]) -> None:
        self._connecting = None
        if not connecting.cancelled() and connecting.exception() is None:
            self._protocol = connecting.result()

    async def _open(self, loop: asyncio.AbstractEventLoop) -> _Protocol:
        address = self.address if isinstance(self.address, dict) else await self.address()
        if "path" in address:
            _, protocol = await loop.create_unix_connection(
                lambda: _Protocol(self.timeout), address["path"]
            )
        else:
            _, protocol = await loop.create_connection(
                lambda: _Protocol(self.timeout), address.get("host", "127.0.0.1"), address["port"]
            )
        try:
            if address.get("password"):
                credentials = [address.get("username") or "default", address["password"]]
                await protocol.request(_command(b"AUTH", *credentials))
            if address.get("db"):
                await protocol.request(_command(b"SELECT", str(address["db"])))
        except BaseException:
            protocol.close()
            raise
        return protocol

    def close(self) -> None:
        """Close the connection (a later GET reconnects)."""
        if self._protocol is not None:
            self._protocol.close()
            self._protocol = None


def _command(*parts: bytes | str) -> bytes:
    encoded = [part.encode() if isinstance(part, str) else part for part in parts]
    return b"*%d\r\n" % len(encoded) + b"".join(
        b"$%d\r\n%b\r\n" % (len(part), part) for part in encoded
    )


class _Protocol(asyncio.Protocol):
    """Requests answered in order: Redis replies to a connection's commands in the order
    they were sent, so the oldest waiting future takes the next reply."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.closed = False
        self._reader = hiredis.Reader()
        self._waiting: collections.deque[tuple[float, asyncio.Future[Any]]] = collections.deque()
        self._outgoing: list[bytes] = []
        self._transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()
        self._watchdog: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # a stream transport (uvloop's
        # is not an asyncio.Transport subclass)

    def request(self, command: bytes) -> asyncio.Future[Any]:
        """Queue ``command``; the future resolves with its reply."""
        if self.closed:
            raise ConnectionError("the Redis connection is closed")
        future = self._loop.create_future()
        now = self._loop.time()
        self._waiting.append((now + self.timeout, future))
        if not self._outgoing:
            # the first command of this loop iteration: the rest join it in one write
            self._loop.call_soon(self._flush)
        self._outgoing.append(command)
        if self._watchdog is None:
            self._watchdog = self._loop.call_at(now + self.timeout, self._check_deadline)
        return future

    def _flush(self) -> None:
        if self._outgoing and self._transport is not None and not self.closed:
            self._transport.write(b"".join(self._outgoing))
        self._outgoing.clear()

    def _check_deadline(self) -> None:
        self._watchdog = None
        if not self._waiting:
            return
        deadline = self._waiting[0][0]
        if self._loop.time() >= deadline:
            # the oldest reply is overdue: the server is stuck or gone, and every later reply
            # is behind it on the same connection
            self._fail(ConnectionError(f"no reply from Redis within {self.timeout} s"))
        else:
            self._watchdog = self._loop.call_at(deadline, self._check_deadline)

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        while True:
            try:
                reply = self._reader.gets()
            except hiredis.ProtocolError as exc:
                self._fail(ConnectionError(f"unreadable reply from Redis: {exc!r}"))
                return
            if reply is False:
                return
            if not self._waiting:
                self._fail(ConnectionError("a reply from Redis that nobody asked for"))
                return
            _, future = self._waiting.popleft()
            if future.done():  # its caller was cancelled: the reply is dropped
                continue
            if isinstance(reply, hiredis.ReplyError):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(ConnectionError(f"the Redis connection was lost: {exc!r}"))

    def _fail(self, error: ConnectionError) -> None:
        self.closed = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        while self._waiting:
            _, future = self._waiting.popleft()
            if not future.done():
                future.set_exception(error)
        if self._transport is not None:
            self._transport.abort()

    def close(self) -> None:
        """Close the connection; waiting requests fail."""
        self._fail(ConnectionError("the Redis connection was closed"))
