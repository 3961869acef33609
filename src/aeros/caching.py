"""Route-level response cache for a Quart app: ``@app.cache(...)``, route lookup, clear and purge.

This is the Quart-aware half of the response cache. The decorator marks the view function with
a :class:`~aeros.middleware.cache.CachePolicy`; the cache layer (pure ASGI, in front of Quart)
asks :meth:`ResponseCache.policy_for` which policy a request's route has. The lookup matches
(method, path) against ``app.url_map`` once and remembers the answer in a bounded table, so
the hot path is one dict lookup and a hit never enters Quart.

The decorator may sit above or below ``@app.route``: the mark is an attribute of the view
function, read when a request arrives.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import math
import threading
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import Any, TypeVar

from werkzeug.exceptions import HTTPException
from werkzeug.routing import RoutingException

from aeros.cache.base import Store
from aeros.errors import ConfigurationError, StoreError
from aeros.middleware.cache import CacheMiddleware, CachePolicy
from aeros.middleware.cache_entry import path_prefix, request_path, route_prefix
from aeros.middleware.headers import GlobalHeaders
from aeros.middleware.types import ASGIApp, Scope
from aeros.server import peers

__all__ = ["POLICY_ATTRIBUTE", "ResponseCache"]

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")
logger = logging.getLogger(__name__)

POLICY_ATTRIBUTE = "__aeros_cache__"
"""Attribute of a view function holding its :class:`CachePolicy`."""

_MEMO_LIMIT = 4096  # (method, host, path) answers kept; random 404 paths cannot grow it beyond
_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz")
_OPTIONS = (
    "query_string",
    "key_prefix",
    "unless",
    "vary",
    "statuses",
    "stale_while_revalidate",
)


class ResponseCache:
    """The app's response cache: the decorator, the route lookup, and clear/purge.

    Args:
        app: the Quart app (``WebServer``).
        store: any :class:`aeros.cache.Store` (``SimpleCache``, ``FilesystemCache``,
            ``RedisCache``, your own), or None: caching off and ``@app.cache()`` passes through.
    """

    def __init__(self, app: Any, store: Any) -> None:
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
        self._memo: dict[tuple[str, str, str], CachePolicy | None] = {}
        self._routes: dict[tuple[str, int], CachePolicy] = {}
        self._layers: list[CacheMiddleware] = []
        self._warned = False
        # A store in each process's memory (SimpleCache) exists once per worker: clears,
        # purges and write invalidations are passed to the other workers (aeros.server.peers).
        self.per_process = store is not None and not getattr(store, "shared", True)
        if store is not None:
            app.after_serving(self._close)
        if self.per_process:
            app.before_serving(self._join_peers)

    @property
    def default_timeout(self) -> float | None:
        """The store's default timeout in seconds (None: no expiry)."""
        timeout = getattr(self.store, "timeout", 300.0)
        return None if timeout is None or timeout <= 0 else float(timeout)

    # ---- the decorator --------------------------------------------------------------------

    def decorator(self, timeout: float | None = None, **options: Any) -> Callable[[F], F]:
        """Return the ``@app.cache(...)`` decorator for a view.

        Args:
            timeout: seconds a response stays fresh; None: the store's timeout; 0: no expiry.
            **options: ``query_string`` (bool, default True: ``/s?q=a`` and ``/s?q=b`` are
                separate entries, parameter order ignored), ``key_prefix`` (str),
                ``unless`` (callable taking the ASGI scope; True skips the cache for that
                request; it runs before Quart, so ``quart.request`` is not available),
                ``vary`` (request header names the response depends on),
                ``statuses`` (cacheable statuses, default ``(200,)``),
                ``stale_while_revalidate`` (seconds a stale entry is served while refreshed).

        Without a configured store this warns once (a log record) and leaves views as they are.
        """
        unknown = sorted(set(options) - set(_OPTIONS))
        if unknown:
            raise TypeError(
                f"app.cache() got unknown option(s) {', '.join(unknown)}; "
                f"allowed: timeout, {', '.join(_OPTIONS)}"
            )
        policy = _build_policy(timeout, self.default_timeout, options)
        if self.store is None:
            if not self._warned:
                self._warned = True
                logger.warning(
                    "@app.cache() used but WebServer(cache=...) is not set: responses are "
                    "not cached (pass cache=SimpleCache(), FilesystemCache(...) or RedisCache())"
                )
            return lambda func: func

        def mark(func: F) -> F:
            setattr(func, POLICY_ATTRIBUTE, policy)
            return func

        return mark

    # ---- the route lookup (hot path) ------------------------------------------------------

    def policy_for(self, scope: Scope) -> CachePolicy | None:
        """Return the cache policy of the route a request goes to, or None (not cached)."""
        url_map = self.app.url_map
        host = ""
        if url_map.host_matching or self.app.subdomain_matching:
            for name, value in scope["headers"]:
                if name == b"host":
                    host = value.decode("latin-1").lower()
                    break
        memo_key = (scope["method"], host, scope["path"])
        try:
            return self._memo[memo_key]
        except KeyError:
            pass
        policy = self._resolve(scope, host)
        memo = self._memo
        if len(memo) >= _MEMO_LIMIT:
            try:
                del memo[next(iter(memo))]  # first in, first out: bounded, and cheap
            except (KeyError, RuntimeError, StopIteration):
                memo.clear()  # another thread changed it meanwhile: start over
        memo[memo_key] = policy
        return policy

    def _resolve(self, scope: Scope, host: str) -> CachePolicy | None:
        app = self.app
        root_path: str = scope.get("root_path", "")
        path: str = scope["path"]
        if root_path and path.startswith(root_path):
            path = path[len(root_path) :] or "/"
        scheme = scope.get("scheme", "http")
        server_name = app.config.get("SERVER_NAME")
        url_map = app.url_map
        subdomain = None
        if url_map.host_matching:
            bind_host = host or "localhost"
        elif app.subdomain_matching and server_name:
            bind_host = server_name.lower()
            if host == bind_host or host.endswith("." + bind_host):
                subdomain = host[: -len(bind_host)].rstrip(".")
            else:
                subdomain = "<invalid>"
        else:
            bind_host = server_name or "localhost"
            subdomain = url_map.default_subdomain or ""
        try:
            adapter = url_map.bind(bind_host, root_path, subdomain, scheme, scope["method"])
            rule, _ = adapter.match(path, scope["method"], return_rule=True)
        except (HTTPException, RoutingException):
            return None  # 404, 405, a redirect: nothing to cache
        endpoint = rule.endpoint
        view = app.view_functions.get(endpoint)
        policy = _policy_of(view)
        if policy is None:
            return None
        route_key = (endpoint, id(policy))
        routed = self._routes.get(route_key)
        if routed is None:
            routed = self._routes[route_key] = dataclasses.replace(policy, route=endpoint)
        return routed

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
        layer = CacheMiddleware(
            inner,
            self.store,
            self.policy_for,
            codecs,
            headers=headers,
            on_invalidated=self._invalidated if self.per_process else None,
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

    async def purge(self, path: str | None = None, *, endpoint: str | None = None) -> int:
        """Drop the entries of one path (every host, query and variant) or of one endpoint.

        Args:
            path: a request path such as ``/items/1`` (a query string is ignored).
            endpoint: a Quart endpoint name such as ``"item"`` or ``"blueprint.item"``.

        Returns:
            How many entries were removed (from this worker's store, for a store in each
            process's memory: the other workers purge theirs too). A path purge is one indexed
            group delete; an endpoint purge scans the store's keys. A store without
            ``delete_group`` / ``delete_prefix`` is cleared entirely instead (and 0 is returned).

        Raises:
            StoreError: the store failed.
        """
        if (path is None) == (endpoint is None):
            raise TypeError("purge() takes exactly one of path=... or endpoint=...")
        removed = await self._purge_here(path, endpoint)
        if path is not None:
            await self._tell_other_workers({"op": "purge", "path": path})
        else:
            await self._tell_other_workers({"op": "purge", "endpoint": endpoint})
        return removed

    async def _purge_here(self, path: str | None, endpoint: str | None) -> int:
        if self.store is None:
            return 0
        store = self.store
        if path is not None:
            path = path.split("?", 1)[0] or "/"
            policy = self.policy_for(
                {"type": "http", "method": "GET", "path": path, "headers": [], "scheme": "http"}
            )
            if policy is None:
                return 0
            group = path_prefix(policy, path.encode("utf-8", "surrogateescape"))
            if hasattr(store, "delete_group"):  # a path's entries are one group: indexed
                removed = int(await store.delete_group(group))
            elif hasattr(store, "delete_prefix"):
                removed = int(await store.delete_prefix(group))
            else:
                await store.clear()
                removed = 0
        else:
            prefix = route_prefix(CachePolicy(timeout=None, route=str(endpoint)))
            if hasattr(store, "delete_prefix"):
                removed = int(await store.delete_prefix(prefix))
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

    async def _invalidated(self, scope: Scope) -> None:
        # the cache layer invalidated the target URI of a successful unsafe request here
        uri = request_path(scope).decode("utf-8", "surrogateescape")
        await self._tell_other_workers({"op": "invalidate", "uri": uri})

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
            await self._purge_here(message.get("path"), message.get("endpoint"))
        elif op == "invalidate":
            await self._invalidate_here(str(message["uri"]))
        else:
            logger.warning("unknown cache message from another worker: %r", message)

    async def _invalidate_here(self, uri: str) -> None:
        # Write invalidation of the target URI, as the cache layer did it in the publishing
        # worker: its entries are the path's group.
        await self._purge_here(uri, None)

    def run_sync(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a cache coroutine to completion from synchronous code (see :meth:`clear_sync`)."""

        async def run_and_close() -> T:
            try:
                return await coro
            finally:
                if self.store is not None:
                    await self.store.aclose()  # this loop ends here: release its connections

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(run_and_close())
        results: list[T] = []
        errors: list[BaseException] = []

        def target() -> None:
            try:
                results.append(asyncio.run(run_and_close()))
            except BaseException as exc:  # handed back to the caller's thread
                errors.append(exc)

        thread = threading.Thread(target=target, name="aeros-cache-sync")
        thread.start()
        thread.join()
        if errors:
            raise errors[0]
        return results[0]

    def _forget(self) -> None:
        for layer in self._layers:
            layer.forget()

    async def _close(self) -> None:
        if self.store is None:
            return
        try:
            await self.store.aclose()
        except StoreError as exc:
            logger.warning("closing the response cache store failed: %s", exc)


def _policy_of(view: Any) -> CachePolicy | None:
    """The policy marked on a view function or on a function it wraps (functools.wraps)."""
    for _ in range(16):
        if view is None:
            return None
        policy = getattr(view, POLICY_ATTRIBUTE, None)
        if isinstance(policy, CachePolicy):
            return policy
        view = getattr(view, "__wrapped__", None)
    return None


def _seconds(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigurationError(f"app.cache({name}={value!r}) must be a number of seconds")
    if value < 0:
        raise ConfigurationError(f"app.cache({name}={value!r}) must be >= 0 seconds")
    return float(value)


def _header_names(value: Any) -> tuple[bytes, ...]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, Iterable):
        raise ConfigurationError(f"app.cache(vary={value!r}) must be header names")
    out: set[bytes] = set()
    for name in names:
        if not isinstance(name, str) or not name or not set(name.lower()) <= _TOKEN:
            raise ConfigurationError(
                f"app.cache(vary=...): {name!r} is not a header name (letters, digits, -)"
            )
        out.add(name.lower().encode("ascii"))
    return tuple(sorted(out))


def _statuses(value: Any) -> frozenset[int]:
    if not isinstance(value, Iterable) or isinstance(value, str | bytes):
        raise ConfigurationError(f"app.cache(statuses={value!r}) must be status codes")
    statuses = frozenset(value)
    for status in statuses:
        if isinstance(status, bool) or not isinstance(status, int) or not 200 <= status <= 599:
            raise ConfigurationError(
                f"app.cache(statuses=...): {status!r} is not a final status code (200-599)"
            )
    if not statuses:
        raise ConfigurationError("app.cache(statuses=()) would cache nothing; give at least one")
    return statuses


def _build_policy(timeout: Any, default: float | None, options: dict[str, Any]) -> CachePolicy:
    if timeout is None:
        resolved = default
    else:
        seconds = _seconds("timeout", timeout)
        resolved = seconds if seconds > 0 else None
    unless = options.get("unless")
    if unless is not None and not callable(unless):
        raise ConfigurationError(f"app.cache(unless={unless!r}) must be a callable or None")
    query_string = options.get("query_string", True)
    if not isinstance(query_string, bool):
        raise ConfigurationError(f"app.cache(query_string={query_string!r}) must be a bool")
    key_prefix = options.get("key_prefix", "")
    if not isinstance(key_prefix, str):
        raise ConfigurationError(f"app.cache(key_prefix={key_prefix!r}) must be a str")
    return CachePolicy(
        timeout=resolved,
        query_string=query_string,
        key_prefix=key_prefix,
        unless=unless,
        vary=_header_names(options.get("vary", ())),
        statuses=_statuses(options.get("statuses", (200,))),
        stale_while_revalidate=_seconds(
            "stale_while_revalidate", options.get("stale_while_revalidate", 0)
        ),
    )
