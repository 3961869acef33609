"""The async store protocol behind the response cache, and helpers every backend shares.

Stores hold opaque bytes under string keys and know nothing of HTTP. They raise
:class:`aeros.errors.StoreError` when the backend fails and never swallow errors: the response
cache layer is the one place that catches it, serves the request uncached and logs a
rate-limited warning.
"""

from __future__ import annotations

import math
from typing import Protocol, runtime_checkable

from aeros.errors import ConfigurationError

__all__ = ["PrefixStore", "Store", "check_size", "check_timeout", "expiry", "key_group"]


@runtime_checkable
class Store(Protocol):
    """Async byte store behind the response cache. Knows nothing of HTTP.

    ``ttl`` is in seconds; None keeps the entry until it is evicted or cleared. Every method
    may raise :class:`aeros.errors.StoreError`. ``aclose`` releases the connections the store
    opened for the running event loop; the store stays usable and reconnects when used again.

    A store that answers from this process's memory may also offer a synchronous
    ``get_nowait(key)`` with :meth:`get`'s meaning; the cache layer then reads it without a
    coroutine (it must never block: no I/O, no waiting on a lock held across an await).

    A store whose entries live in each process separately says so with a class attribute
    ``shared = False``; the response cache then passes clears, purges and write invalidations
    to every worker of the server. Without the attribute a store counts as shared.
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
    may have to look at every key.
    """

    async def delete_prefix(self, prefix: str) -> int:
        """Remove every key that starts with ``prefix``; return how many were removed."""
        ...

    async def delete_group(self, group: str) -> int:
        """Remove every key whose group is exactly ``group``; return how many were removed."""
        ...


def key_group(key: str) -> str:
    """A key's group: everything up to and including its last ``:`` (empty when none)."""
    return key[: key.rfind(":") + 1]


def check_timeout(owner: str, timeout: float | None) -> float | None:
    """Validate a default timeout in seconds: a finite number >= 0, or None (0: no expiry)."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise ConfigurationError(f"{owner}(timeout={timeout!r}) must be a number of seconds")
    if not math.isfinite(timeout) or timeout < 0:
        raise ConfigurationError(
            f"{owner}(timeout={timeout!r}) must be >= 0 seconds (0 or None: no expiry)"
        )
    return float(timeout) if timeout > 0 else None


def check_size(owner: str, name: str, value: int, *, minimum: int = 1) -> int:
    """Validate a positive integer limit such as ``threshold`` or ``max_bytes``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigurationError(f"{owner}({name}={value!r}) must be an integer >= {minimum}")
    return value


def expiry(now: float, ttl: float | None) -> float:
    """Absolute expiry time for ``ttl`` seconds from ``now`` (infinity: never)."""
    if ttl is None or ttl <= 0:
        return math.inf
    return now + ttl
