"""The response cache's fills: a miss runs the app once and stores what it answered, a stale
entry is refilled in the background, and requests are answered from the entries made.

:class:`Filling` is the part of :class:`~aeros.response_cache.layer.CacheMiddleware` that does
it; the attributes below are the layer's own, set in its ``__init__``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aeros.compression.codecs import Codec
from aeros.compression.headers import ACCEPT_ENCODING, is_compressible
from aeros.compression.layer import CompressingSender
from aeros.compression.negotiate import Negotiator
from aeros.headers import add_vary
from aeros.middleware.headers import GlobalHeaders
from aeros.response_cache import status
from aeros.response_cache.answer import answer, prepare
from aeros.response_cache.capture import Capture, empty_receive
from aeros.response_cache.coalesce import Fills, FleetLocks
from aeros.response_cache.entry import Entry
from aeros.response_cache.policy import CachePolicy
from aeros.response_cache.refusals import Refusals
from aeros.response_cache.storage import EntryStore
from aeros.types import (
    CACHE_STATE,
    COALESCED,
    SKIP_COMPRESSION,
    SKIP_GLOBAL_HEADERS,
    ASGIApp,
    Headers,
    Receive,
    Scope,
    Send,
)

__all__ = ["Filling"]

logger = logging.getLogger("aeros.response_cache.layer")  # the layer's: one logger to follow


class Filling:
    """Fill entries and answer from them (see the module docstring)."""

    app: ASGIApp
    codecs: tuple[Codec, ...]
    negotiate: Negotiator[Codec]
    headers: GlobalHeaders | None
    clock: Callable[[], float]
    entries: EntryStore
    max_entry_bytes: int
    fills: Fills
    refusals: Refusals
    tags_for: Callable[[CachePolicy, Scope], tuple[str, ...]]
    cache_status: bool
    fleet: FleetLocks | None
    _kept_in_304: frozenset[bytes]
    _tasks: set[asyncio.Task[None]]

    async def _answer_hit(
        self,
        key: str,
        entry: Entry,
        scope: Scope,
        send: Send,
        accept: bytes | None,
        if_none_match: bytes | None,
        head: bool,
        generation: int,
    ) -> None:
        """Answer from an entry another request (of this process or another) just filled;
        ``generation``: the store's when this request began (see :meth:`_answer_for`)."""
        scope[CACHE_STATE] = "hit"
        scope[COALESCED] = True  # waited for another request's fill (the metrics)
        now = self.clock()
        headers, body = self._answer_for(key, entry, accept, generation)
        mark = status.hit(entry.fresh_until, now) if self.cache_status else None
        await answer(
            scope, send, entry, headers, body, if_none_match, head, now, self._kept_in_304, mark
        )

    async def _lead(
        self,
        key: str,
        policy: CachePolicy,
        scope: Scope,
        receive: Receive,
        send: Send,
        accept: bytes | None,
        if_none_match: bytes | None,
    ) -> None:
        """Run the app for a miss, store the result, answer every request waiting for it."""
        fills = self.fills
        future = fills.begin(key)
        entry: Entry | None = None
        generation = self.entries.generation

        def unstorable() -> None:
            # release the waiters as soon as the response start says it will not be stored:
            # they must not wait for a long stream (an event stream) to end
            fills.finish(key, future, None)

        token: str | None = None
        try:
            if self.fleet is not None:  # one view call in the fleet: its lock, or its entry
                taken = await self.fleet.take(key)
                if isinstance(taken, Entry):
                    entry = taken
                    await self._answer_hit(
                        key, entry, scope, send, accept, if_none_match, False, generation
                    )
                    return
                token = taken
            codec = self.negotiate(accept)
            passed_on = self.headers.sender(send) if self.headers else send
            stream = CompressingSender(passed_on, codec, self.codecs)
            entry, capture = await self._fill(policy, scope, receive, stream, unstorable)
            if self.fleet is not None and capture.start is not None:
                self.fleet.remember(key, stored=entry is not None)
            if entry is None:
                self.refusals.refused(policy, scope, capture.refusal)
            else:
                # the client's variant goes into the one write
                headers, body, _ = prepare(entry, codec, self.codecs, self.headers)
                if capture.per_request:  # this request's own headers: never stored
                    headers = [*headers, *capture.per_request]
                tags = self.refusals.tags(self.tags_for, policy, scope)
                if tags is None:
                    scope[CACHE_STATE] = "uncacheable"
                    mark = status.uncacheable("tags")
                    stored, entry = entry, None
                else:
                    await self.entries.save(key, entry, generation, tags)
                    mark = status.STORED
                    stored = entry
                if token is not None:
                    await self.fleet.release(key, token)  # type: ignore[union-attr]
                    token = None
                await answer(
                    scope,
                    send,
                    stored,
                    headers,
                    body,
                    if_none_match,
                    False,
                    stored.created,
                    self._kept_in_304,
                    mark if self.cache_status else None,
                )
        finally:
            if token is not None:
                await self.fleet.release(key, token)  # type: ignore[union-attr]
            if self.entries.changed_since(generation, key):
                entry = None  # a write replaced it meanwhile: waiters run the view afresh
            fills.finish(key, future, entry)

    async def _fill(
        self,
        policy: CachePolicy,
        scope: Scope,
        receive: Receive,
        stream: Send | None,
        unstorable: Callable[[], None] | None = None,
    ) -> tuple[Entry | None, Capture]:
        """Run the app; return its response as an entry when storable, else stream it on."""
        inner = dict(scope)
        inner[SKIP_COMPRESSION] = True
        if self.headers:
            inner[SKIP_GLOBAL_HEADERS] = True
        capture = Capture(
            policy, self.max_entry_bytes, stream, unstorable, cache_status=self.cache_status
        )
        await self.app(inner, receive, capture)
        entry = capture.entry(policy, self.clock())
        if entry is None:
            await capture.release()
            return None, capture
        if is_compressible(entry.status, entry.headers, self.codecs):
            entry.headers = add_vary(entry.headers, ACCEPT_ENCODING)
        return entry, capture

    def _answer_for(
        self, key: str, entry: Entry, accept: bytes | None, generation: int
    ) -> tuple[Headers, bytes]:
        """Headers (without Age) and body of the identity or a variant the client accepts.

        A new variant is saved with the entry for the next hit, unless the key's entries were
        dropped after ``generation`` (the store's when the entry was read): the save would
        bring back an entry a write has just removed."""
        codec = self.negotiate(accept) if self.codecs else None
        headers, body, new = prepare(entry, codec, self.codecs, self.headers)
        if new:  # keep the new variant for the next hit, in every worker
            self._spawn(self.entries.save(key, entry, generation))
        return headers, body

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _refresh(self, key: str, policy: CachePolicy, scope: Scope) -> None:
        """Refill a stale entry in the background, once per key at a time."""
        fills = self.fills
        if fills.running(key) is not None:
            return
        future = fills.begin(key)
        # the refresh must not see this request's body channel or extensions it may close
        inner = {k: v for k, v in scope.items() if k != CACHE_STATE}
        generation = self.entries.generation

        async def run() -> None:
            entry: Entry | None = None
            try:
                entry, _ = await self._fill(policy, inner, empty_receive(), None)
                tags = self.refusals.tags(self.tags_for, policy, inner) if entry else None
                if entry is not None and tags is not None:
                    await self.entries.save(key, entry, generation, tags)
            except Exception:
                logger.exception("refreshing a stale cache entry failed")
            finally:
                if self.entries.changed_since(generation, key):
                    entry = None  # a write replaced it meanwhile: waiters run the view afresh
                fills.finish(key, future, entry, linger=False)

        self._spawn(run())
