"""Route-level response cache for a Quart app: route lookup, clear, purge and invalidation.

This is the Quart-aware half of the response cache. ``@app.cache(...)`` and ``@cached(...)``
(:mod:`aeros.response_cache.policy`) mark the view function with a
:class:`~aeros.response_cache.policy.CachePolicy`; the cache layer (pure ASGI, in front of Quart)
asks ``ResponseCache.policy_for`` which policy a request's route has
(:class:`~aeros.response_cache.lookup.RouteLookup`: one dict lookup on the hot path, so a hit
never enters Quart). Purges by endpoint and tag go through the store's tag index.

The decorator may sit above or below ``@app.route``: the mark is an attribute of the view
function, read when a request arrives.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

from aeros.awaiting import where_task_waits
from aeros.errors import ConfigurationError, StoreError
from aeros.middleware.headers import GlobalHeaders
from aeros.response_cache.invalidation import Target, drop_target
from aeros.response_cache.keys import endpoint_tag, route_prefix, tag_name
from aeros.response_cache.layer import CacheMiddleware
from aeros.response_cache.lookup import RouteLookup
from aeros.response_cache.policy import (
    POLICY_ATTRIBUTE,
    CachePolicy,
    make_decorator,
    policy_of,
)
from aeros.response_cache.sync import run_sync
from aeros.server import peers
from aeros.stores.base import Store, capabilities_of, default_timeout_of, size_limit_of
from aeros.types import ASGIApp

__all__ = ["POLICY_ATTRIBUTE", "ResponseCache"]

# Seconds the store's aclose() may take at shutdown; past it the shutdown goes on without it
# (a store stuck closing must not keep a stopping server up forever).
CLOSE_WITHIN = 5.0

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")
logger = logging.getLogger(__name__)

_MAX_ENTRY_BYTES = 8 << 20  # larger bodies are streamed, never stored


class ResponseCache:
    """The app's response cache: the decorator, the route lookup, clear, purge, invalidation.

    Args:
        app: the Quart app (``WebServer``).
        store: any :class:`aeros.stores.Store` (``SimpleCache``, ``FilesystemCache``,
            ``RedisCache``, your own), or None: caching off; views marked for caching are
            served uncached and :meth:`warn_without_store` names them once at start.
        clock: the wall clock in seconds that dates entries and decides their freshness;
            default ``time.time``. Tests replace it (before the app serves its first request)
            to move time forward without sleeping.
        cache_status: add ``Cache-Status`` (RFC 9211) to the answers of cached routes.
            Default False.
        lock_timeout: with a store holding locks (``RedisCache``, ``TieredCache``): seconds
            one process of the fleet may run a view for a missing key before the others stop
            waiting for its entry and run the view themselves. Default 5.
    """

    def __init__(
        self,
        app: Any,
        store: Any,
        *,
        clock: Callable[[], float] = time.time,
        cache_status: bool = False,
        lock_timeout: float = 5.0,
    ) -> None:
        if store is not None and not (
            isinstance(store, Store)
            and all(
                inspect.iscoroutinefunction(getattr(store, name))
                for name in ("get", "set", "delete", "clear", "aclose")
            )
        ):
            raise ConfigurationError(
                f"WebServer(cache={store!r}) must be a store with async get/set/delete/clear/"
                "aclose (SimpleCache, FilesystemCache, RedisCache) or None"
            )
        self.app = app
        self.store = store
        self.clock = clock
        self.cache_status = cache_status
        self.lock_timeout = lock_timeout
        self.lookup = RouteLookup(app, lambda: self.default_timeout)
        # the hot path: the lookup's own bound methods, no wrapper call
        self.policy_for = self.lookup.policy_for
        self.tags_for = self.lookup.tags_for
        self._layers: list[CacheMiddleware] = []
        self._told_no_store = False
        # A store in each process's memory (SimpleCache) exists once per worker: clears,
        # purges and write invalidations are passed to the other workers (aeros.server.peers).
        self.per_process = store is not None and not capabilities_of(store).shared
        if store is not None:
            app.after_serving(self._close)
        if self.per_process:
            app.before_serving(self._join_peers)

    @property
    def default_timeout(self) -> float | None:
        """The store's default timeout in seconds (None: no expiry)."""
        return default_timeout_of(self.store)

    # ---- the decorator --------------------------------------------------------------------

    def decorator(self, timeout: float | None = None, **options: Any) -> Callable[[F], F]:
        """Return the ``@app.cache(...)`` decorator: :func:`aeros.cached` under its app name.

        The options are :func:`aeros.cached`'s; ``timeout=None`` is this store's timeout.
        """
        return make_decorator("app.cache", timeout, options)

    def warn_without_store(self) -> None:
        """Without a store, warn once naming the routes whose views asked for caching.

        Called when the app starts (``run_server()`` before any worker is forked, and the
        first ASGI call under any server), when every blueprint is registered.
        """
        if self.store is not None or self._told_no_store:
            return
        self._told_no_store = True
        routes = sorted(
            f"{rule.rule} ({rule.endpoint})"
            for rule in self.app.url_map.iter_rules()
            if policy_of(self.app.view_functions.get(rule.endpoint)) is not None
        )
        if routes:
            logger.warning(
                "%d route(s) ask for caching but WebServer(cache=...) is not set, so they are "
                "served uncached: %s (pass cache=SimpleCache(), FilesystemCache(...) or "
                "RedisCache())",
                len(routes),
                ", ".join(routes),
            )

    # ---- wiring, clear and purge ----------------------------------------------------------

    def wrap(
        self, inner: ASGIApp, codecs: Sequence[Any], headers: GlobalHeaders | None = None
    ) -> ASGIApp:
        """Put the cache layer in front of ``inner``; ``inner`` itself when no store is set.

        ``headers`` are the global headers of the headers layer inside ``inner``, which the
        cache layer adds to the answers it sends itself.
        """
        if self.store is None:
            return inner
        # a store that keeps fewer bytes than the layer's limit would drop the entry silently
        store_limit = size_limit_of(self.store)
        max_entry = min(store_limit or _MAX_ENTRY_BYTES, _MAX_ENTRY_BYTES)
        layer = CacheMiddleware(
            inner,
            self.store,
            self.policy_for,
            codecs,
            headers=headers,
            max_entry_bytes=max_entry,
            invalidate=self.drop,
            clock=self.clock,
            tags_for=self.tags_for,
            cache_status=self.cache_status,
            lock_timeout=self.lock_timeout,
        )
        self._layers.append(layer)
        return layer

    async def clear(self) -> None:
        """Drop every cached response (every worker and instance sharing the store).

        Raises:
            StoreError: the store failed; nothing is known to be cleared.
        """
        if self.store is None:
            return
        await self._clear_here()
        await self._tell_other_workers({"op": "clear"})

    async def _clear_here(self) -> None:
        if self.store is not None:
            await self.store.clear()
            self._forget()

    def clear_sync(self) -> None:
        """:meth:`clear` from synchronous code.

        Without an event loop in this thread it runs one; when this thread is running a loop
        (a sync view, a test) it runs the clear on a helper thread with its own loop and waits,
        blocking this thread for the duration. In async code prefer ``await clear()``.
        """
        self.run_sync(self.clear())

    async def purge(
        self, path: str | None = None, *, endpoint: str | None = None, tag: str | None = None
    ) -> int:
        """Drop the entries of one path (every host, query and variant), of one endpoint, or
        of one tag (``@app.cache(tags=...)``).

        Args:
            path: a request path such as ``/items/1`` (a query string is ignored).
            endpoint: a Quart endpoint name such as ``"item"`` or ``"blueprint.item"``.
            tag: a tag a route gave its entries, such as ``"items"``.

        Returns:
            How many entries were removed (from this worker's store, for a store in each
            process's memory: the other workers purge theirs too). A path purge is one indexed
            group delete; endpoint and tag purges use the store's tag index (every entry also
            carries an internal tag of its endpoint), never a key scan. Without tags
            (:class:`~aeros.stores.Capabilities`) an endpoint purge drops keys by prefix; a
            store that can do neither (or a tag purge on a store without tags) is cleared
            entirely instead, and 0 is returned.

        Raises:
            ConfigurationError: not exactly one of ``path``, ``endpoint``, ``tag``.
            StoreError: the store failed.
        """
        given = {"path": path, "endpoint": endpoint, "tag": tag}
        chosen = {name: value for name, value in given.items() if value is not None}
        if len(chosen) != 1 or not all(isinstance(v, str) for v in chosen.values()):
            raise ConfigurationError(
                f"purge(path={path!r}, endpoint={endpoint!r}, tag={tag!r}) takes exactly one "
                "of them, a str"
            )
        removed = await self._purge_here(path, endpoint, tag)
        await self._tell_other_workers({"op": "purge", **chosen})
        return removed

    async def _purge_here(
        self, path: str | None, endpoint: str | None, tag: str | None = None
    ) -> int:
        if self.store is None:
            return 0
        if path is not None:  # local only: purge() passes the purge itself to other workers
            removed = await self._drop_here(Target(path.split("?", 1)[0] or "/", "", ""))
            return 0 if removed is None else removed
        store: Any = self.store
        capabilities = capabilities_of(store)
        policy = CachePolicy(timeout=None, route=str(endpoint))
        if capabilities.tags:
            name = tag_name(tag) if tag is not None else endpoint_tag(policy)
            removed = int(await store.delete_tags([name]))
        elif tag is None and capabilities.prefix_delete:
            removed = int(await store.delete_prefix(route_prefix(policy)))
        else:
            await store.clear()
            removed = 0
        self._forget()
        return removed

    # ---- other workers (a store in each process's memory) ---------------------------------

    async def _tell_other_workers(self, message: peers.Message) -> None:
        """After a clear/purge/invalidation here: the same in every other worker, awaited."""
        channel = peers.channel_for(self.app) if self.per_process else None
        if channel is not None:
            await channel.publish(message)

    async def _join_peers(self) -> None:
        channel = peers.channel_for(self.app)
        if channel is not None:  # in a worker: apply what the other workers publish
            channel.subscribe(self._apply_peer_message)

    async def _apply_peer_message(self, message: peers.Message) -> None:
        """Run another worker's operation on this worker's store (without passing it on)."""
        op = message.get("op")
        if op == "clear":
            await self._clear_here()
        elif op == "purge":
            await self._purge_here(message.get("path"), message.get("endpoint"), message.get("tag"))
        elif op == "invalidate":
            target = Target(
                str(message["path"]),
                str(message.get("host", "")),
                str(message.get("root_path", "")),
            )
            await self._drop_here(target)
        else:
            logger.warning("unknown cache message from another worker: %r", message)

    async def invalidate(self, path: str, *, host: str = "", root_path: str = "") -> int:
        """Drop the stored entries of one target URI: every query string, host and variant
        of what ``GET path`` stored (RFC 9111 section 4.4 write invalidation).

        The cache layer calls this (through :meth:`drop`) after every successful unsafe
        request, for its target URI and a same-origin ``Location`` / ``Content-Location``.

        Args:
            path: the decoded request path, such as ``/items/1``.
            host: the Host header, needed only by routes that match on host or subdomain.
            root_path: the ASGI ``root_path`` the app is mounted under.

        Returns:
            How many entries were removed (0 when the store had to be cleared instead).

        Raises:
            StoreError: the store failed.
        """
        return await self.drop(Target(path, host, root_path))

    async def drop(self, target: Target) -> int:
        """:meth:`invalidate` for a :class:`~aeros.response_cache.invalidation.Target`.

        With a store in each process's memory, every other worker drops the target too before
        this returns (so the client's next GET finds no stale entry in any worker).
        """
        dropped = await self._drop_here(target)
        if dropped is None:
            return 0  # GET on this URI is not cached: no worker stored anything for it
        await self._tell_other_workers(
            {
                "op": "invalidate",
                "path": target.path,
                "host": target.host,
                "root_path": target.root_path,
            }
        )
        return dropped

    async def _drop_here(self, target: Target) -> int | None:
        """Drop ``target`` in this process's store; None when GET on it is not cached."""
        if self.store is None:
            return None
        dropped = await drop_target(self.store, self.policy_for, target)
        if dropped is None:
            return None
        self._forget(dropped[1])
        return dropped[0]

    def run_sync(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a cache coroutine to completion from synchronous code (see :meth:`clear_sync`)."""
        return run_sync(coro, self.store.aclose if self.store is not None else None)

    def _forget(self, group: str | None = None) -> None:
        for layer in self._layers:
            layer.forget(group)

    async def _close(self) -> None:
        """The store's ``aclose()`` at shutdown, bounded by ``CLOSE_WITHIN`` seconds."""
        if self.store is None:
            return
        closing = asyncio.ensure_future(self.store.aclose())
        try:
            done, _ = await asyncio.wait({closing}, timeout=CLOSE_WITHIN)
        except asyncio.CancelledError:
            closing.cancel()
            raise
        if not done:
            logger.warning(
                "closing the response cache store %r took over %g s (waiting in %s): the "
                "shutdown goes on without it",
                self.store,
                CLOSE_WITHIN,
                where_task_waits(closing),
            )
            closing.cancel()  # not awaited: the loop's end collects it
            return
        exc = closing.exception()
        if isinstance(exc, StoreError):
            logger.warning("closing the response cache store failed: %s", exc)
        elif exc is not None:
            raise exc
