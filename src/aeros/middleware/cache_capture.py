"""Capturing a response for the response cache: which responses a shared cache may store.

The rules (RFC 9111 for shared caches, plus what the key can express): only the route's
statuses; never ``Set-Cookie``, ``Cache-Control: private / no-store / no-cache``, ``Vary: *``
or a ``Vary`` on a header the key does not hold; never a stream (no ``Content-Length``,
``text/event-stream``, trailers) or a body already encoded by the app; never a body larger than
the layer's limit.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable

from aeros.middleware.cache_entry import CachePolicy, Entry
from aeros.middleware.types import Message, Receive, Send

__all__ = ["Capture", "empty_receive", "storable_length"]

_NOT_STORED_HEADERS = frozenset(
    {b"content-length", b"transfer-encoding", b"connection", b"keep-alive", b"date", b"age"}
)
_REFUSED_DIRECTIVES = frozenset({b"private", b"no-store", b"no-cache"})


class Capture:
    """``send`` for a fill: buffers a storable response, streams any other one to ``stream``.

    Args:
        policy: the route's policy (statuses, vary).
        max_bytes: larger bodies are streamed, not stored.
        stream: where a response that is not stored goes (None: dropped, for refreshes).
        unstorable: called once the response start shows it will not be stored.
    """

    def __init__(
        self,
        policy: CachePolicy,
        max_bytes: int,
        stream: Send | None,
        unstorable: Callable[[], None] | None = None,
    ) -> None:
        self.policy = policy
        self.unstorable = unstorable
        self.max_bytes = max_bytes
        self.stream = stream
        self.start: Message | None = None
        self.chunks: list[bytes] = []
        self.length = -1
        self.storable = False
        self.complete = False

    async def __call__(self, message: Message) -> None:
        if self.start is None and message["type"] == "http.response.start":
            self.start = message
            self.length = storable_length(message, self.policy, self.max_bytes)
            self.storable = self.length >= 0
            if not self.storable:
                if self.unstorable is not None:
                    self.unstorable()
                await self._forward(message)
            return
        if self.storable and message["type"] == "http.response.body" and not self.complete:
            self.chunks.append(message.get("body", b""))
            self.complete = not message.get("more_body", False)
            return
        if self.storable:  # anything unexpected: stop storing, send what we hold as it is
            await self.release()
        await self._forward(message)

    async def _forward(self, message: Message) -> None:
        if self.stream is not None:
            await self.stream(message)

    async def release(self) -> None:
        """Send a held response on unchanged (it turned out not to be storable)."""
        if not self.storable or self.start is None:
            return
        self.storable = False
        await self._forward(self.start)
        if self.chunks:
            body = b"".join(self.chunks)
            self.chunks = []
            await self._forward(
                {"type": "http.response.body", "body": body, "more_body": not self.complete}
            )

    def entry(self, policy: CachePolicy) -> Entry | None:
        """The captured response as a new entry; None when it was not stored whole."""
        if not (self.storable and self.complete and self.start is not None):
            return None
        body = b"".join(self.chunks)
        if len(body) != self.length:
            return None
        headers = [
            (name, value)
            for name, value in self.start.get("headers") or []
            if name not in _NOT_STORED_HEADERS
        ]
        if all(name != b"etag" for name, _ in headers):
            digest = hashlib.blake2b(body, digest_size=16).hexdigest().encode()
            headers.append((b"etag", b'W/"' + digest + b'"'))
        created = time.time()
        fresh = created + policy.timeout if policy.timeout is not None else float("inf")
        return Entry(
            status=self.start["status"],
            headers=headers,
            body=body,
            created=created,
            fresh_until=fresh,
            stale_until=fresh + policy.stale_while_revalidate,
        )


def storable_length(start: Message, policy: CachePolicy, max_bytes: int) -> int:
    """Content-Length of a response a shared cache may store, or -1 when it may not."""
    if start["status"] not in policy.statuses or start.get("trailers"):
        return -1
    length = -1
    for name, value in start.get("headers") or []:
        if name == b"set-cookie":
            return -1
        if name == b"content-length":
            if not value.isdigit():
                return -1
            length = int(value)
        elif name == b"cache-control":
            for directive in value.lower().split(b","):
                if directive.split(b"=", 1)[0].strip() in _REFUSED_DIRECTIVES:
                    return -1
        elif name == b"vary":
            for token in value.lower().split(b","):
                token = token.strip()
                if token and token != b"accept-encoding" and token not in policy.vary:
                    return -1  # "*" or a header the key does not hold
        elif name == b"content-encoding":
            if value.strip().lower() != b"identity":
                return -1
        elif name == b"content-type" and value.lower().startswith(b"text/event-stream"):
            return -1
    return length if length <= max_bytes else -1


def empty_receive() -> Receive:
    """``receive`` for a background refresh: an empty body, then nothing (no client)."""
    sent = False
    never = asyncio.Event()

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await never.wait()  # a background refresh has no client to disconnect
        return {"type": "http.disconnect"}

    return receive
