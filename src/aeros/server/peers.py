"""Small messages between the workers of one server, relayed by the supervisor.

A store that lives in each process's memory (``SimpleCache``) exists once per worker, so a
``clear_cache()``, a purge or a write invalidation handled by one worker must reach the others.
Each worker has a datagram socket pair with the supervisor (made at each spawn). A worker
*publishes* a message; the supervisor forwards it to every other worker; each applies it on its
event loop and acknowledges; once all have, the supervisor tells the publisher, whose
``publish()`` then returns: when a request that cleared or invalidated finishes, every worker
already serves fresh data. A worker that does not answer within the timeout (blocked, about to
be replaced with an empty store) is logged and not waited for longer.

Messages are small JSON objects; what they mean is up to the subscriber (the response cache).
The process-wide registry maps an app to its channel: in a worker, its :class:`WorkerPeers`; in
the supervisor's process, a :class:`SupervisorPeers`, so ``app.clear_cache()`` called there (from
any thread) reaches every worker too.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import socket
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

__all__ = [
    "PUBLISH_TIMEOUT",
    "Channel",
    "PeerRelay",
    "SupervisorPeers",
    "WorkerPeers",
    "attach",
    "channel_for",
    "detach",
    "socket_pair",
]

logger = logging.getLogger("aeros.server")

PUBLISH_TIMEOUT = 2.0
"""Seconds ``publish()`` waits for every other worker to apply a message."""

Message = dict[str, Any]
Handler = Callable[[Message], Awaitable[None]]

_channels: dict[int, Channel] = {}
_channels_lock = threading.Lock()


class Channel(Protocol):
    """What the registry holds for an app: publish to the other workers, receive from them."""

    async def publish(self, message: Message) -> bool:
        """Deliver ``message`` to every other worker; True once all of them applied it."""
        ...

    def subscribe(self, handler: Handler) -> None:
        """Call ``handler`` (on this process's serving loop) with each message received."""
        ...


def attach(app: object, channel: Channel) -> None:
    """Make ``channel`` the one :func:`channel_for` returns for ``app`` in this process."""
    with _channels_lock:
        _channels[id(app)] = channel


def detach(app: object, channel: Channel) -> None:
    """Undo :func:`attach` (only if ``channel`` is still the attached one)."""
    with _channels_lock:
        if _channels.get(id(app)) is channel:
            del _channels[id(app)]


def channel_for(app: object) -> Channel | None:
    """The channel to ``app``'s other workers, or None (one process, or not serving)."""
    return _channels.get(id(app))


def socket_pair() -> tuple[socket.socket, socket.socket]:
    """A supervisor end and a worker end: datagrams, so every message arrives whole or not."""
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)


def _encode(message: Message) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode()


def _decode(data: bytes) -> Message | None:
    try:
        message = json.loads(data)
    except ValueError:
        return None
    return message if isinstance(message, dict) else None


# ---- a worker's side ---------------------------------------------------------------------------


class WorkerPeers:
    """A worker's end of its channel: publish to the other workers, apply what they publish.

    Args:
        sock: the worker's end of :func:`socket_pair`.
        timeout: seconds :meth:`publish` waits for every other worker's acknowledgement.
    """

    def __init__(self, sock: socket.socket, timeout: float = PUBLISH_TIMEOUT) -> None:
        sock.setblocking(False)
        self._sock = sock
        self.timeout = timeout
        self._handlers: list[Handler] = []
        self._waiting: dict[int, asyncio.Future[None]] = {}
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()

    def subscribe(self, handler: Handler) -> None:
        """Call ``handler`` with every message another worker publishes."""
        self._handlers.append(handler)

    async def run(self, server: object = None) -> None:
        """Receive for as long as the worker serves (a companion of the server)."""
        loop = asyncio.get_running_loop()
        loop.add_reader(self._sock.fileno(), self._on_readable)
        try:
            await loop.create_future()  # until cancelled when the server stops
        finally:
            loop.remove_reader(self._sock.fileno())

    def close(self) -> None:
        """Close this end of the channel (a worker's ends with its process anyway)."""
        self._sock.close()

    async def publish(self, message: Message) -> bool:
        """Send ``message`` to every other worker; True once all of them applied it."""
        ident = next(self._ids)
        done = asyncio.get_running_loop().create_future()
        self._waiting[ident] = done
        try:
            await self._send({"pub": ident, "msg": message})
            await asyncio.wait_for(done, self.timeout)
            return True
        except (TimeoutError, OSError) as exc:
            logger.warning(
                "%s reached not every worker within %gs (%s): some may serve stale entries "
                "until they expire",
                message.get("op", "a message"),
                self.timeout,
                exc.__class__.__name__,
            )
            return False
        finally:
            self._waiting.pop(ident, None)

    async def _send(self, frame: Message) -> None:
        data = _encode(frame)
        for _ in range(200):  # the supervisor reads at once; a full queue is brief
            try:
                self._sock.send(data)
                return
            except BlockingIOError:
                await asyncio.sleep(0.005)
        raise BlockingIOError("the supervisor does not read its channel")

    def _on_readable(self) -> None:
        while True:
            try:
                data = self._sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # the supervisor is gone; the orphan check stops this worker
                return
            frame = _decode(data)
            if frame is None:
                continue
            if "done" in frame:
                waiter = self._waiting.get(frame["done"])
                if waiter is not None:
                    # publish() may wait on another loop (clear_cache() in a sync view runs
                    # one in a helper thread)
                    waiter.get_loop().call_soon_threadsafe(_resolve, waiter)
            elif "msg" in frame:
                task = asyncio.ensure_future(self._apply(frame))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _apply(self, frame: Message) -> None:
        try:
            for handler in self._handlers:
                await handler(frame["msg"])
        except Exception:
            logger.exception("applying %r from another worker failed", frame["msg"])
        finally:
            with contextlib.suppress(OSError):
                await self._send({"ack": frame["id"], "src": frame["src"]})


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


# ---- the supervisor's side ---------------------------------------------------------------------


class PeerRelay:
    """The supervisor's side: forward each message to every other worker, collect their acks.

    Used only from the supervisor's loop (one thread). A worker that cannot take a message (its
    queue is full: its loop is blocked) or is gone counts as done for that message.
    """

    _PARENT = -1  # the "slot" of messages the supervisor's process publishes itself

    def __init__(self) -> None:
        self._channels: dict[int, socket.socket] = {}
        self._pending: dict[tuple[int, int], set[int]] = {}
        self._callbacks: dict[int, Callable[[], None]] = {}
        self._ids = itertools.count(1)

    def add(self, slot: int, sock: socket.socket) -> None:
        """Relay for the worker in ``slot`` through ``sock`` (the supervisor's end)."""
        sock.setblocking(False)
        self._channels[slot] = sock

    def remove(self, slot: int) -> None:
        """The worker in ``slot`` is gone: close its channel, stop waiting for its acks."""
        sock = self._channels.pop(slot, None)
        if sock is not None:
            sock.close()
        for key in list(self._pending):
            self._acked(key, slot)

    def close(self) -> None:
        """Close every channel; publishers still waiting are released."""
        for slot in list(self._channels):
            self.remove(slot)

    def on_readable(self, slot: int) -> None:
        """Handle what the worker in ``slot`` sent."""
        sock = self._channels.get(slot)
        while sock is not None:
            try:
                data = sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # the worker is gone: its exit report removes the channel
                return
            frame = _decode(data)
            if frame is None:
                continue
            if "pub" in frame:
                self._forward(slot, frame["pub"], frame.get("msg"))
            elif "ack" in frame:
                self._acked((frame.get("src", self._PARENT), frame["ack"]), slot)

    def broadcast(self, message: Message, done: Callable[[], None]) -> None:
        """Forward ``message`` from the supervisor's process to every worker; ``done()`` after."""
        ident = next(self._ids)
        self._callbacks[ident] = done
        self._forward(self._PARENT, ident, message)

    def _forward(self, source: int, ident: int, message: Any) -> None:
        frame = _encode({"msg": message, "src": source, "id": ident})
        targets = set()
        for slot, sock in list(self._channels.items()):
            if slot == source:
                continue
            try:
                sock.send(frame)
            except BlockingIOError:
                logger.warning("Worker %d does not read its messages (blocked?); skipped", slot)
                continue
            except OSError:
                continue
            targets.add(slot)
        key = (source, ident)
        self._pending[key] = targets
        self._acked(key, None)

    def _acked(self, key: tuple[int, int], slot: int | None) -> None:
        waiting = self._pending.get(key)
        if waiting is None:
            return
        if slot is not None:
            waiting.discard(slot)
        if waiting:
            return
        del self._pending[key]
        source, ident = key
        if source == self._PARENT:
            callback = self._callbacks.pop(ident, None)
            if callback is not None:
                callback()
            return
        sock = self._channels.get(source)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.send(_encode({"done": ident}))


class SupervisorPeers:
    """The channel of the supervisor's process: messages published here reach every worker.

    Args:
        post: hands a message and a completion callback to the supervisor's loop (any thread).
        timeout: seconds :meth:`publish` waits for every worker to apply a message.
    """

    def __init__(
        self,
        post: Callable[[Message, Callable[[], None]], None],
        timeout: float = PUBLISH_TIMEOUT,
    ) -> None:
        self._post = post
        self.timeout = timeout

    def subscribe(self, handler: Handler) -> None:
        """Nothing is served from this process: nothing to apply."""

    async def publish(self, message: Message) -> bool:
        """Deliver ``message`` to every worker; True once all of them applied it."""
        done = threading.Event()
        self._post(message, done.set)
        if await asyncio.to_thread(done.wait, self.timeout):
            return True
        logger.warning(
            "%s reached not every worker within %gs", message.get("op", "a message"), self.timeout
        )
        return False
