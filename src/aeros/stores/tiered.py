"""TieredCache: a store in this process's memory in front of a shared one (Redis).

A hit in the local tier costs what a :class:`~aeros.stores.SimpleCache` hit costs (the cache
layer reads it with ``get_nowait``, no coroutine); a local miss reads the shared tier and keeps
the value locally for at most ``local_ttl`` seconds; writes go to both tiers.

Keeping the local tiers of every worker of every instance coherent:

- Every invalidation (delete, clear, group, prefix and tag deletes) is applied to the shared
  tier, then to this process's local tier, then published on the shared store's broadcast
  channel; every other process applies it to its own local tier. A write publishes too (the
  other local tiers drop their older copy of the key).
- Each event loop holds its own subscription, started by its first read or write. The local
  tier is filled only while this loop's subscription is known to be live: once subscribed, the
  listener publishes a ping and waits to hear it back, so nothing published after that point is
  missed.
- A lost subscription (Redis restarted, failed over, or stopped answering) may have missed
  messages: the local tier is cleared and no longer filled until a new subscription is live.
- A message that is lost anyway (a publish that failed after the shared write) leaves another
  local tier stale for at most ``local_ttl`` seconds: the short local TTL bounds staleness.
- A fill of the local tier from the shared one is dropped when an invalidation was applied while
  the value was on its way (a per-process generation counter), so an invalidation never races a
  read into serving the old value again.

Invalidations reach the other workers of the same server through the same channel, so a
TieredCache declares ``shared=True`` and the response cache does not also relay them through
the supervisor (:mod:`aeros.server.peers`): one path for every worker of every instance, and
no worker waits for acknowledgements. Delivery is asynchronous: another worker applies a purge
a moment (one pub/sub hop) after ``purge_cache()`` returns, where a SimpleCache's peers
relay waits until every worker has.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import secrets
import weakref
from collections.abc import Sequence
from typing import Any

from aeros import _validate
from aeros.errors import ConfigurationError, StoreError
from aeros.stores.base import (
    Capabilities,
    capabilities_of,
    default_timeout_of,
    stop_if_cancelled,
)

__all__ = ["TieredCache"]

logger = logging.getLogger(__name__)

_FIRST_RETRY = 0.05  # seconds before resubscribing after a loss; doubles up to _LAST_RETRY
_LAST_RETRY = 2.0
_CLOSE_WAIT = 1.0  # seconds aclose() waits for the subscription to close


class TieredCache:
    """A local tier in each process's memory in front of a shared store (two tiers).

    Args:
        local: the per-process tier: a store answering from memory that declares
            ``nowait_get``, ``groups`` and ``prefix_delete`` (a :class:`SimpleCache`; its own
            ``timeout`` is not used).
        shared: the tier every process and instance shares: a store declaring ``broadcast``
            (:class:`RedisCache`). Its ``timeout`` is this store's default timeout; its
            ``tags`` and ``locks`` are this store's.
        local_ttl: the most seconds a value stays in a local tier (an entry's own TTL when
            shorter): how long a local tier may serve a value whose invalidation message was
            lost. Default 5.
        channel: the broadcast channel of the invalidations; stores sharing one Redis with
            different data need different channels (or shared-store prefixes). Default
            ``"tiers"``.

    Raises:
        ConfigurationError: a tier that cannot play its part, or a bad ``local_ttl``.
    """

    def __init__(
        self, local: Any, shared: Any, *, local_ttl: float = 5.0, channel: str = "tiers"
    ) -> None:
        local_caps = capabilities_of(local)
        if not (local_caps.nowait_get and local_caps.groups and local_caps.prefix_delete):
            raise ConfigurationError(
                f"TieredCache(local={local!r}) must be a store in this process's memory with "
                "get_nowait, delete_group and delete_prefix, such as SimpleCache()"
            )
        shared_caps = capabilities_of(shared)
        if not (shared_caps.broadcast and shared_caps.shared):
            raise ConfigurationError(
                f"TieredCache(shared={shared!r}) must be a store shared by every process that "
                "can broadcast invalidations, such as RedisCache()"
            )
        seconds = _validate.seconds("TieredCache", "local_ttl", local_ttl)
        if not seconds or math.isinf(seconds):
            raise ConfigurationError(
                f"TieredCache(local_ttl={local_ttl!r}) must be a finite number of seconds > 0"
            )
        if not isinstance(channel, str) or not channel:
            raise ConfigurationError(f"TieredCache(channel={channel!r}) must be a non-empty str")
        self.local = local
        self.shared = shared
        self.local_ttl = seconds
        self.channel = channel
        self.timeout = default_timeout_of(shared)
        self.capabilities = Capabilities(
            groups=True,
            prefix_delete=True,
            nowait_get=True,
            local_tier=True,
            tags=shared_caps.tags,
            locks=shared_caps.locks,
            shared=True,
        )
        """Shared (invalidations travel by the shared store's broadcast, not the supervisor);
        hits read the local tier without a coroutine (``local_tier``: a miss there is read
        again with :meth:`get`); tags and locks as the shared tier has them."""
        self.get_nowait = local.get_nowait  # the hot path: the local tier's own method
        self._shared_groups = shared_caps.groups
        self._listeners: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Listener] = (
            weakref.WeakKeyDictionary()
        )
        self._pid = os.getpid()
        self._source = secrets.token_hex(8)  # this process: its own messages are not applied
        self._generation = 0  # bumped by every invalidation applied to the local tier

    def __repr__(self) -> str:
        return f"TieredCache(local={self.local!r}, shared={self.shared!r})"

    @property
    def live(self) -> bool:
        """Whether this event loop's subscription is live (the local tier is being filled)."""
        with contextlib.suppress(RuntimeError):
            listener = self._listeners.get(asyncio.get_running_loop())
            return listener is not None and listener.live
        return False

    # ---- reads and writes -------------------------------------------------------------------

    async def get(self, key: str) -> bytes | None:
        """The local tier's value, else the shared tier's (kept locally for ``local_ttl``)."""
        value: bytes | None = self.local.get_nowait(key)
        if value is not None:
            return value
        listener = self._listener()
        generation = self._generation
        value = await self.shared.get(key)
        if value is not None and listener.live and generation == self._generation:
            await self.local.set(key, value, ttl=self.local_ttl)
        return value

    async def set(self, key: str, value: bytes, *, ttl: float | None) -> None:
        """Write ``value`` to both tiers; the other local tiers drop their copy of ``key``."""
        await self._write(key, value, ttl, None)

    async def set_tagged(
        self, key: str, value: bytes, *, ttl: float | None, tags: Sequence[str]
    ) -> None:
        """:meth:`set`, with ``key`` indexed under ``tags`` in the shared tier."""
        await self._write(key, value, ttl, tags)

    async def _write(
        self, key: str, value: bytes, ttl: float | None, tags: Sequence[str] | None
    ) -> None:
        listener = self._listener()
        if tags is None:
            await self.shared.set(key, value, ttl=ttl)
        else:
            await self.shared.set_tagged(key, value, ttl=ttl, tags=tags)
        self._generation += 1  # a read of the older value must not land in the local tier
        if listener.live:
            local_ttl = self.local_ttl if ttl is None or ttl <= 0 else min(ttl, self.local_ttl)
            await self.local.set(key, value, ttl=local_ttl)
        else:
            await self.local.delete(key)
        await self._publish({"op": "key", "key": key})

    # ---- invalidations: the shared tier, this local tier, then every other one --------------

    async def delete(self, key: str) -> None:
        """Remove ``key`` from the shared tier and from every local tier."""
        await self.shared.delete(key)
        await self._invalidate({"op": "key", "key": key})

    async def delete_group(self, group: str) -> int:
        """Remove every key of ``group`` from every tier; return how many the shared tier had."""
        if self._shared_groups:
            removed = int(await self.shared.delete_group(group))
        else:
            removed = int(await self.shared.delete_prefix(group))
        await self._invalidate({"op": "group", "group": group})
        return removed

    async def delete_prefix(self, prefix: str) -> int:
        """Remove every key starting with ``prefix`` from every tier (the shared tier may scan
        its keys: prefer groups and tags); return how many the shared tier had."""
        removed = int(await self.shared.delete_prefix(prefix))
        await self._invalidate({"op": "prefix", "prefix": prefix})
        return removed

    async def delete_tags(self, tags: Sequence[str]) -> int:
        """Remove every entry tagged with any of ``tags`` (the shared tier's index) and clear
        every local tier: a local tier does not know the tags of the values it copied from
        the shared one, and holds only seconds' worth of them. Returns how many entries the
        shared tier removed."""
        removed = int(await self.shared.delete_tags(tags))
        await self._invalidate({"op": "clear"})
        return removed

    async def clear(self) -> None:
        """Remove every entry of the shared tier and of every local tier."""
        await self.shared.clear()
        await self._invalidate({"op": "clear"})

    async def _invalidate(self, message: dict[str, str]) -> None:
        await self._apply_locally(message)
        await self._publish(message)

    async def _apply_locally(self, message: dict[str, Any]) -> None:
        self._generation += 1
        op = message.get("op")
        if op == "key":
            await self.local.delete(str(message["key"]))
        elif op == "group":
            await self.local.delete_group(str(message["group"]))
        elif op == "prefix":
            await self.local.delete_prefix(str(message["prefix"]))
        else:  # "clear", or a message this version does not know: drop everything to be safe
            await self.local.clear()

    async def _publish(self, message: dict[str, str]) -> None:
        self._check_fork()
        data = json.dumps({**message, "src": self._source}, separators=(",", ":")).encode()
        await self.shared.publish(self.channel, data)

    # ---- locks: the shared tier's ---------------------------------------------------------

    async def try_lock(self, name: str, ttl: float) -> str | None:
        """The shared tier's :meth:`~aeros.stores.LockStore.try_lock`."""
        token: str | None = await self.shared.try_lock(name, ttl)
        return token

    async def unlock(self, name: str, token: str) -> None:
        """The shared tier's :meth:`~aeros.stores.LockStore.unlock`."""
        await self.shared.unlock(name, token)

    async def aclose(self) -> None:
        """Stop this event loop's subscription and close both tiers' resources for it."""
        with contextlib.suppress(RuntimeError):
            listener = self._listeners.pop(asyncio.get_running_loop(), None)
            if listener is not None:
                await listener.stop()
        await self.local.aclose()
        await self.shared.aclose()

    # ---- the subscription of each event loop ----------------------------------------------

    def _check_fork(self) -> None:
        if os.getpid() != self._pid:
            # a forked worker: the parent's listeners are not ours; a new source of messages
            self._pid = os.getpid()
            self._source = secrets.token_hex(8)
            self._listeners = weakref.WeakKeyDictionary()

    def _listener(self) -> _Listener:
        """This event loop's listener, started on first use."""
        self._check_fork()
        loop = asyncio.get_running_loop()
        listener = self._listeners.get(loop)
        if listener is None or listener.task.done():
            listener = _Listener(self)
            self._listeners[loop] = listener
        return listener


class _Listener:
    """One event loop's subscription: applies what other processes publish; ``live`` once a
    ping it published came back (nothing published since then is missed)."""

    def __init__(self, cache: TieredCache) -> None:
        self.cache = cache
        self.live = False
        self.nonce = secrets.token_hex(8)
        self.task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        """Cancel the subscription, within about ``_CLOSE_WAIT`` seconds: redis-py's pub/sub
        read may swallow one cancellation (it then goes on reading), so cancel again."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _CLOSE_WAIT
        while not self.task.done() and loop.time() < deadline:
            self.task.cancel()
            await asyncio.wait({self.task}, timeout=0.05)

    async def _run(self) -> None:
        delay = _FIRST_RETRY
        while True:
            pinger = asyncio.ensure_future(self._ping())
            try:
                stream = self.cache.shared.subscribe(self.cache.channel)
                async with contextlib.aclosing(stream):
                    async for data in stream:
                        await self._apply(data)
                        if self.live:
                            delay = _FIRST_RETRY
                raise StoreError("the subscription ended")
            except StoreError as exc:
                stop_if_cancelled(exc)
                await self._lost(exc)
            except Exception as exc:  # a bug must not leave a dead listener marked live
                stop_if_cancelled(exc)
                logger.exception("TieredCache's invalidation listener failed")
                await self._lost(StoreError(repr(exc)))
            finally:
                pinger.cancel()
            await asyncio.sleep(delay)
            delay = min(delay * 2, _LAST_RETRY)

    async def _lost(self, exc: StoreError) -> None:
        """Messages may have been missed: forget the local tier until live again."""
        if self.live:
            logger.warning(
                "TieredCache lost its invalidation channel (%s): the local tier is cleared and "
                "refilled once the channel is back",
                exc,
            )
        self.live = False
        self.cache._generation += 1
        with contextlib.suppress(StoreError):
            await self.cache.local.clear()

    async def _ping(self) -> None:
        """Publish a ping until it comes back (then the subscription is live)."""
        delay = 0.01
        ping = json.dumps({"op": "ping", "src": self.nonce}).encode()
        while not self.live:
            with contextlib.suppress(StoreError):
                await self.cache.shared.publish(self.cache.channel, ping)
            stop_if_cancelled()  # a cancellation the publish let go or turned into an error
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def _apply(self, data: bytes) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            message = None
        if not isinstance(message, dict):
            logger.warning("TieredCache: an unreadable invalidation %r; local tier cleared", data)
            message = {"op": "clear"}
        if message.get("op") == "ping":
            if message.get("src") == self.nonce:
                self.live = True
            return
        if message.get("src") == self.cache._source:
            return  # this process applied it before publishing
        await self.cache._apply_locally(message)
