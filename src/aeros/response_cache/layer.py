"""Response cache layer: answers hits before the app is entered; one request per key fills it.

Pure ASGI (never imports Quart). Which routes are cached, and how, comes from ``policy_for``,
a callable the app supplies that maps a scope to a :class:`CachePolicy` or None (not cached).

Per cached GET/HEAD request:

- bypassed (the request goes on untouched) when ``unless(scope)`` is true, when it carries
  ``Authorization`` or ``Cookie`` and the route does not vary on that header, or when its Host
  is not a valid host name;
- a hit is answered here: the identity body or an encoded variant the client accepts, with
  ``ETag`` and ``Age``; ``If-None-Match`` matching the ETag answers 304;
- a miss runs the app once per key (per process and event loop) with compression skipped,
  stores the identity response when it is storable and encodes it for the client; concurrent
  misses for the key wait for that one result;
- a miss whose response may not be stored (a stream, ``Set-Cookie``, a ``Vary`` outside the
  route's ``vary=``, ...) is served as it is, logged as ``uncacheable``, with one warning per
  route and reason;
- a successful unsafe request (POST, PUT, PATCH, DELETE, ...) to any route drops the stored
  entries of its target URI and of a same-origin ``Location`` / ``Content-Location``
  (:mod:`aeros.response_cache.invalidation`), so the next GET sees the change;
- a failing store (:class:`aeros.errors.StoreError`) serves the request uncached and logs a
  warning at most once per ``warn_interval`` seconds;
- with a store that holds locks, a miss also takes the key's lock in the store, so one process
  of the fleet runs the view (:class:`~aeros.response_cache.coalesce.FleetLocks`);
- with ``cache_status``, every answer says how it was served in ``Cache-Status`` (RFC 9211,
  :mod:`aeros.response_cache.status`).

Request ``Cache-Control: no-cache`` / ``Pragma`` are ignored on purpose: honouring them would let
any client force misses (and load on the app) at will, as most CDNs recognise.

``scope["aeros.cache_state"]`` tells the access log what happened: ``hit``, ``stale``,
``miss``, ``uncacheable``, ``bypass`` or ``error``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aeros.asgi_entry import asgi3
from aeros.compression.codecs import Codec
from aeros.compression.negotiate import Negotiator
from aeros.errors import StoreError
from aeros.middleware.headers import GlobalHeaders
from aeros.response_cache import status
from aeros.response_cache.answer import NOT_MODIFIED_HEADERS, answer
from aeros.response_cache.coalesce import Fills, FleetLocks
from aeros.response_cache.fill import Filling
from aeros.response_cache.invalidation import Target, drop_target, serve_unsafe
from aeros.response_cache.keys import KeyMemo, fixed_tags
from aeros.response_cache.policy import CREDENTIALS, CachePolicy
from aeros.response_cache.refusals import Refusals
from aeros.response_cache.storage import FAILED, EntryStore
from aeros.types import (
    CACHE_STATE,
    ASGIApp,
    Receive,
    Scope,
    Send,
)

__all__ = ["CACHE_STATE", "CacheMiddleware"]

logger = logging.getLogger(__name__)

_OTHER_SAFE_METHODS = frozenset({"OPTIONS", "TRACE"})  # never stored, never invalidate


class CacheMiddleware(Filling):
    """Serve cached responses of the routes ``policy_for`` names, before the app runs.

    Args:
        app: the inner ASGI app (compression, then the framework).
        store: any :class:`aeros.stores.Store`.
        policy_for: maps a scope to the route's :class:`CachePolicy`, or None when the route is
            not cached. Called for every GET/HEAD request; it must be cheap (memoised).
        codecs: the app's compression codecs in order of preference (empty: none).
        headers: the app's global headers. The layer sits in front of the headers layer and
            adds them to what it sends itself (hits, 304s, the responses of fills); entries are
            stored without them.
        max_entry_bytes: responses with a larger body are streamed, never stored. Default 8 MiB.
        warn_interval: seconds between two warnings about a failing store. Default 60.
        coalesce_grace: seconds a finished fill still answers late arrivals of the same burst,
            so a request that missed the store just before the fill landed does not run the
            app again. Default 0.5.
        invalidate: ``await invalidate(target)`` drops the stored entries of one
            :class:`~aeros.response_cache.invalidation.Target` after a successful unsafe
            request; default: drop them from ``store`` here. The app passes its own so that
            every layer (and worker) sharing the store forgets them too.
        clock: the wall clock in seconds that dates entries and decides freshness; default
            ``time.time`` (every worker and instance sharing a store must agree on it).
        tags_for: ``tags_for(policy, scope)``: the store tags of the entry a request stores
            (its route's internal endpoint tag first); default: the endpoint tag and the
            policy's fixed ``tags``. The app passes one that calls a ``tags=`` callable with
            the view's arguments.
        cache_status: add ``Cache-Status`` (RFC 9211) to every answer of a cached route.
            Default False.
        lock_timeout: with a store that holds locks: seconds a fill's lock lives, the most a
            request waits for another process's fill before running the view itself.
            Default 5.
    """

    def __init__(
        self,
        app: ASGIApp,
        store: Any,
        policy_for: Callable[[Scope], CachePolicy | None],
        codecs: Sequence[Codec] = (),
        *,
        headers: GlobalHeaders | None = None,
        max_entry_bytes: int = 8 << 20,
        warn_interval: float = 60.0,
        coalesce_grace: float = 0.5,
        invalidate: Callable[[Target], Awaitable[object]] | None = None,
        clock: Callable[[], float] = time.time,
        tags_for: Callable[[CachePolicy, Scope], tuple[str, ...]] | None = None,
        cache_status: bool = False,
        lock_timeout: float = 5.0,
    ) -> None:
        self.app = app
        self.store = store
        self.policy_for = policy_for
        self.codecs: tuple[Codec, ...] = tuple(codecs)
        self.negotiate = Negotiator(self.codecs)
        self.headers = headers if headers else None
        self._kept_in_304 = NOT_MODIFIED_HEADERS | (headers.names if headers else frozenset())
        self.clock = clock
        self.entries = EntryStore(store, logger, warn_interval, clock)
        self.max_entry_bytes = max_entry_bytes
        self.fills = Fills(coalesce_grace)
        self._tasks: set[asyncio.Task[None]] = set()
        self._key = KeyMemo()
        self.invalidate = invalidate if invalidate is not None else self._drop_here
        self.refusals = Refusals(logger)
        self.tags_for = tags_for if tags_for is not None else fixed_tags
        self.cache_status = cache_status
        self.fleet = (
            FleetLocks(store, self.entries, lock_timeout, clock) if self.entries.locks else None
        )

    @asgi3
    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # a plain function: a request this layer leaves alone gets the app's own coroutine
        # back, with no coroutine of this layer around it
        if scope["type"] != "http":
            return self.app(scope, receive, send)
        method = scope["method"]
        if method == "GET" or method == "HEAD":
            policy = self.policy_for(scope)
            if policy is None:
                return self.app(scope, receive, send)
            return self._serve(policy, scope, receive, send)
        if method in _OTHER_SAFE_METHODS:
            return self.app(scope, receive, send)
        # unsafe: a success drops its target URI's entries, whichever route answered
        return serve_unsafe(
            self.app, self.policy_for, self.invalidate, self.entries.warn, scope, receive, send
        )

    async def _drop_here(self, target: Target) -> int:
        dropped = await drop_target(self.store, self.policy_for, target)
        if dropped is None:
            return 0
        self.forget(dropped[1])
        return dropped[0]

    def forget(self, group: str | None = None) -> None:
        """Entries of one store key ``group`` (or all) were dropped: drop finished fills kept
        for late arrivals, and never store what a fill running now produces for them."""
        self.entries.forget(group)
        self.fills.forget(group)

    # ---- one request ----------------------------------------------------------------------

    async def _serve(self, policy: CachePolicy, scope: Scope, receive: Receive, send: Send) -> None:
        vary = policy.vary
        varied: dict[bytes, bytes] = {}
        host = accept = if_none_match = None
        credentials = False
        fields_read = policy.fields_read
        for name, value in scope["headers"]:
            if name not in fields_read:
                continue  # most of a browser's fields (User-Agent, Accept, Sec-Fetch-*, ...)
            if name == b"host":
                if host is not None:  # two Host headers: refuse to guess which one counts
                    return await self._bypass(scope, receive, send)
                host = value
            elif name == b"accept-encoding":
                accept = value if accept is None else accept + b"," + value
            elif name == b"if-none-match":
                if_none_match = value
            if name in vary:
                varied[name] = value if name not in varied else varied[name] + b", " + value
            elif name in CREDENTIALS:
                credentials = True
        if credentials or (policy.unless is not None and policy.unless(scope)):
            return await self._bypass(scope, receive, send)
        key = self._key(policy, scope, host, varied)  # a KeyMemo
        if key is None:  # not a valid Host: never cached
            return await self._bypass(scope, receive, send)
        head = scope["method"] == "HEAD"

        entries = self.entries
        generation = entries.generation  # before the read: a write after it is seen
        get_nowait = entries.get_nowait
        if get_nowait is not None:  # a memory store: no coroutine on the hot path
            try:
                entry = entries.decoded(key, get_nowait(key))
            except StoreError as exc:
                entries.warn(exc)
                entry = FAILED
            if entry is None and entries.nowait_partial:  # a local tier missed: ask the store
                entry = await entries.load(key)
        else:
            entry = await entries.load(key)
        if entry is FAILED:
            scope[CACHE_STATE] = "error"
            if self.cache_status:
                send = status.marked(send, status.uncacheable("store-error"))
            await self.app(scope, receive, send)
            return
        now = self.clock()
        if entry is not None and now < entry.stale_until:
            if now < entry.fresh_until:
                scope[CACHE_STATE] = "hit"
            else:
                scope[CACHE_STATE] = "stale"
                self._refresh(key, policy, scope)
            headers, body = self._answer_for(key, entry, accept, generation)
            await answer(
                scope,
                send,
                entry,
                headers,
                body,
                if_none_match,
                head,
                now,
                self._kept_in_304,
                status.hit(entry.fresh_until, now) if self.cache_status else None,
            )
            return

        future = self.fills.running(key)
        if future is not None:
            entry = await asyncio.shield(future)
            now = self.clock()
            if entry is not None and now < entry.fresh_until:
                await self._answer_hit(
                    key, entry, scope, send, accept, if_none_match, head, generation
                )
                return
            if entry is not None:  # a finished fill kept for late arrivals, stale by now
                future = None
        if head or future is not None:
            # a HEAD response has no body to store; an unstorable fill is not shared
            scope[CACHE_STATE] = "miss"
            if self.cache_status:
                send = status.marked(send, status.FORWARDED)
            await self.app(scope, receive, send)
            return
        scope[CACHE_STATE] = "miss"
        await self._lead(key, policy, scope, receive, send, accept, if_none_match)

    async def _bypass(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope[CACHE_STATE] = "bypass"
        if self.cache_status:
            send = status.marked(send, status.BYPASS)
        await self.app(scope, receive, send)
