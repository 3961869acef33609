"""The async store protocol behind the response cache, its capabilities, and shared helpers.

Stores hold opaque bytes under string keys and know nothing of HTTP. They raise
:class:`aeros.errors.StoreError` when the backend fails and never swallow errors: the response
cache layer is the one place that catches it, serves the request uncached and logs a
rate-limited warning.

What a store can do beyond :class:`Store` it declares in a class attribute ``capabilities``
(:class:`Capabilities`); the response cache reads it once, through :func:`capabilities_of`,
and never probes a store for methods. The built-in stores take a ``clock`` argument, so tests
move time forward instead of sleeping.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from aeros import _validate
from aeros.errors import ConfigurationError

__all__ = [
    "BroadcastStore",
    "Capabilities",
    "Clock",
    "LockStore",
    "PrefixStore",
    "Store",
    "TagStore",
    "capabilities_of",
    "checked_timeout",
    "default_timeout_of",
    "expiry",
    "key_group",
    "size_limit_of",
    "stop_if_cancelled",
]

Clock = Callable[[], float]
"""A source of time in seconds (``time.monotonic``, ``time.time``, or a test's fake clock)."""


@runtime_checkable
class Store(Protocol):
    """Async byte store behind the response cache. Knows nothing of HTTP.

    ``ttl`` is in seconds; None keeps the entry until it is evicted or cleared. Every method
    may raise :class:`aeros.errors.StoreError`. ``aclose`` releases the connections the store
    opened for the running event loop; the store stays usable and reconnects when used again.

    Optional attributes a store may have: ``capabilities`` (:class:`Capabilities`, what it
    can do beyond these methods), ``timeout`` (the default lifetime in seconds of a cached
    response, None: no expiry; default 300) and ``max_bytes`` (the largest value it keeps).
    """

    async def get(self, key: str) -> bytes | None:
        """Return the value stored under ``key``, or None when absent, expired or unreadable."""
        ...

    async def set(self, key: str, value: bytes, *, ttl: float | None) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds (None: no expiry)."""
        ...

    async def delete(self, key: str) -> None:
        """Remove ``key``; removing an absent key is not an error."""
        ...

    async def clear(self) -> None:
        """Remove every entry of this store (and only this store's entries)."""
        ...

    async def aclose(self) -> None:
        """Release the resources held for the running event loop."""
        ...


@runtime_checkable
class PrefixStore(Store, Protocol):
    """A store that can also drop many keys at once (used for purges and invalidation).

    A key's *group* is everything up to and including its last ``:`` (``"a:b:c"`` is in group
    ``"a:b:"``). Stores index groups, so :meth:`delete_group` is cheap; :meth:`delete_prefix`
    may have to look at every key. A store declares these methods in its
    :class:`Capabilities` (``groups``, ``prefix_delete``).
    """

    async def delete_prefix(self, prefix: str) -> int:
        """Remove every key that starts with ``prefix``; return how many were removed."""
        ...

    async def delete_group(self, group: str) -> int:
        """Remove every key whose group is exactly ``group``; return how many were removed."""
        ...


@runtime_checkable
class TagStore(Store, Protocol):
    """A store that indexes entries by tag, so a purge by tag never scans keys.

    Declared by ``Capabilities(tags=True)``. A tag's index lives as long as its longest-lived
    entry; deleting an entry by key may leave its name in an index (a later tag purge then
    deletes an absent key, which is not an error).
    """

    async def set_tagged(
        self, key: str, value: bytes, *, ttl: float | None, tags: Sequence[str]
    ) -> None:
        """:meth:`Store.set`, and add ``key`` to the index of each of ``tags``."""
        ...

    async def delete_tags(self, tags: Sequence[str]) -> int:
        """Remove every key indexed under any of ``tags``, and those indexes; return how many
        entries were removed."""
        ...


@runtime_checkable
class LockStore(Store, Protocol):
    """A store that holds short named locks with a deadline (fleet-wide request coalescing).

    Declared by ``Capabilities(locks=True)``. A lock frees itself after ``ttl`` seconds, so a
    holder that dies never blocks others for longer than that.
    """

    async def try_lock(self, name: str, ttl: float) -> str | None:
        """Take lock ``name`` for ``ttl`` seconds if nobody holds it: return the holder's token,
        or None when another holder has it."""
        ...

    async def unlock(self, name: str, token: str) -> None:
        """Release ``name`` if ``token`` still holds it (a lock that expired and was taken by
        someone else is left alone)."""
        ...


@runtime_checkable
class BroadcastStore(Store, Protocol):
    """A store that carries messages to every process and instance using it (invalidation of
    local tiers). Declared by ``Capabilities(broadcast=True)``."""

    async def publish(self, channel: str, message: bytes) -> None:
        """Send ``message`` to every current subscriber of ``channel``, in any process."""
        ...

    def subscribe(self, channel: str) -> AsyncIterator[bytes]:
        """Messages published on ``channel`` from now on. Raises
        :class:`aeros.errors.StoreError` when the subscription is lost: messages may have been
        missed, so the subscriber must assume anything it holds is stale."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Capabilities:
    """What a store can do beyond :class:`Store`, declared as its class attribute
    ``capabilities``. A store without the attribute has the defaults: no optional method,
    shared between processes.
    """

    groups: bool = False
    """``async delete_group(group) -> int``: drops one key group, cheaply (an index).
    Purges and write invalidations of one path use it; without it they fall back to
    ``delete_prefix``, then to ``clear``."""

    prefix_delete: bool = False
    """``async delete_prefix(prefix) -> int``: drops every key starting with ``prefix``
    (endpoint purges); without it the store is cleared instead."""

    nowait_get: bool = False
    """``get_nowait(key)``: :meth:`Store.get` without a coroutine, for a store answering from
    this process's memory. It must never block (no I/O, no lock held across an await); the
    cache layer then reads hits without a coroutine."""

    tags: bool = False
    """:class:`TagStore`'s ``set_tagged`` and ``delete_tags``: purges by tag (and by endpoint)
    through an index, never a key scan."""

    locks: bool = False
    """:class:`LockStore`'s ``try_lock`` and ``unlock``: one view call per key across every
    process and instance sharing the store."""

    broadcast: bool = False
    """:class:`BroadcastStore`'s ``publish`` and ``subscribe``: messages to every process and
    instance sharing the store."""

    local_tier: bool = False
    """With ``nowait_get``: ``get_nowait`` answers from a tier in this process's memory in
    front of a shared one (:class:`aeros.stores.TieredCache`), so its None is not a miss: the
    cache layer then reads the key with :meth:`Store.get`."""

    shared: bool = True
    """Every process using the store sees the same entries. False (a store in each process's
    memory): the response cache passes clears, purges and write invalidations to every worker
    of the server."""


_METHODS = {
    "groups": ("delete_group",),
    "prefix_delete": ("delete_prefix",),
    "nowait_get": ("get_nowait",),
    "tags": ("set_tagged", "delete_tags"),
    "locks": ("try_lock", "unlock"),
    "broadcast": ("publish", "subscribe"),
}


def capabilities_of(store: Any) -> Capabilities:
    """The capabilities ``store`` declares (the defaults when it declares none).

    Raises:
        ConfigurationError: ``capabilities`` is not a :class:`Capabilities`, or it names a
            method the store does not have.
    """
    declared = getattr(store, "capabilities", None)
    if declared is None:
        return Capabilities()
    if not isinstance(declared, Capabilities):
        raise ConfigurationError(
            f"{type(store).__name__}.capabilities={declared!r} must be an aeros.stores.Capabilities"
        )
    for flag, methods in _METHODS.items():
        for method in methods:
            if getattr(declared, flag) and not callable(getattr(store, method, None)):
                raise ConfigurationError(
                    f"{type(store).__name__}.capabilities says {flag}=True but the store has no "
                    f"{method}() method"
                )
    return declared


def default_timeout_of(store: Any) -> float | None:
    """The store's ``timeout`` in seconds (None or 0: no expiry; without one: 300)."""
    value = getattr(store, "timeout", 300.0)
    return None if value is None or value <= 0 else float(value)


def size_limit_of(store: Any) -> int | None:
    """The store's ``max_bytes`` (the largest value it keeps), None when it has none."""
    value = getattr(store, "max_bytes", None)
    return value if isinstance(value, int) and value > 0 else None


def key_group(key: str) -> str:
    """A key's group: everything up to and including its last ``:`` (empty when none)."""
    return key[: key.rfind(":") + 1]


def checked_timeout(owner: str, value: Any) -> float | None:
    """A store's default timeout in seconds: a finite number >= 0, or None (0: no expiry).

    Raises:
        ConfigurationError: anything else, naming ``owner``.
    """
    seconds = _validate.seconds(owner, "timeout", value, none="no expiry")
    return seconds if seconds else None


def expiry(now: float, ttl: float | None) -> float:
    """Absolute expiry time for ``ttl`` seconds from ``now`` (infinity: never)."""
    if ttl is None or ttl <= 0:
        return math.inf
    return now + ttl


def stop_if_cancelled(cause: BaseException | None = None) -> None:
    """Raise CancelledError when the running task was asked to stop, for loops that go on
    after errors or quiet reads (pub/sub listeners).

    redis-py's pub/sub reads may let a cancellation that lands mid-read go: the read returns
    nothing or raises a connection error, the task stays marked as cancelling, and nothing
    raises CancelledError again. ``asyncio.Runner`` (every ``asyncio.run``) cancels leftover
    tasks once when it closes and waits for them, so a listener that read on hung the closing
    of its event loop: a server thread never stopped.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError from cause
