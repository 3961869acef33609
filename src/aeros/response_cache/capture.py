"""Capturing a response for the response cache: which responses a shared cache may store.

The rules (RFC 9111 for shared caches, plus what the key can express): only the route's
statuses; never ``Set-Cookie``, ``Cache-Control: private / no-store / no-cache``, ``Vary: *``
or a ``Vary`` on a header the key does not hold; never a stream (no ``Content-Length``,
``text/event-stream``, trailers) or a body already encoded by the app; never a body larger than
the layer's limit. A file the app names by path (the ASGI ``http.response.pathsend``
extension) is read and stored when it is within the limit.

Headers that belong to one request (``X-Request-Id``, ``RateLimit-*``, ``X-RateLimit-*``,
``Retry-After``, ``Date``, ``Cache-Status``) are never stored: a hit would replay another
request's values. The response that filled the entry still carries them (``Date`` comes from
the server).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable

from aeros.response_cache import status
from aeros.response_cache.entry import Entry
from aeros.response_cache.policy import CachePolicy
from aeros.types import Headers, Message, Receive, Send

__all__ = ["PATHSEND", "Capture", "Refusal", "empty_receive", "is_per_request", "storable"]

PATHSEND = "http.response.pathsend"
"""ASGI extension: the app names a file and the server sends it as the body."""

_NOT_STORED_HEADERS = frozenset(
    {b"content-length", b"transfer-encoding", b"connection", b"keep-alive", b"date", b"age"}
)
# cache-status: computed per request by this cache (RFC 9211), never replayed from an entry
_PER_REQUEST_HEADERS = frozenset({b"x-request-id", b"retry-after", b"ratelimit", b"cache-status"})
_PER_REQUEST_PREFIXES = (b"ratelimit-", b"x-ratelimit-")
_REFUSED_DIRECTIVES = frozenset({b"private", b"no-store", b"no-cache"})

Refusal = tuple[str, str]
"""Why a response is not stored: ``(kind, text)``; ``kind`` is one of a few fixed words
(``status``, ``set-cookie``, ``cache-control``, ``vary``, ``stream``, ...), ``text`` says it to a
person."""


def is_per_request(name: bytes) -> bool:
    """True for a (lower-case) header that describes one request and must not be replayed."""
    return name in _PER_REQUEST_HEADERS or name.startswith(_PER_REQUEST_PREFIXES)


class Capture:
    """``send`` for a fill: buffers a storable response, streams any other one to ``stream``.

    Args:
        policy: the route's policy (statuses, vary).
        max_bytes: larger bodies are streamed, not stored.
        stream: where a response that is not stored goes (None: dropped, for refreshes).
        unstorable: called once the response start shows it will not be stored.
        cache_status: add ``Cache-Status`` (RFC 9211) to a response passed on unstored.

    After the app has run, :attr:`refusal` says why a response was not stored (None: it was,
    or the app sent nothing) and :attr:`per_request` holds the per-request headers left out
    of the entry, for the response that filled it.
    """

    def __init__(
        self,
        policy: CachePolicy,
        max_bytes: int,
        stream: Send | None,
        unstorable: Callable[[], None] | None = None,
        *,
        cache_status: bool = False,
    ) -> None:
        self.policy = policy
        self.cache_status = cache_status
        self.unstorable = unstorable
        self.max_bytes = max_bytes
        self.stream = stream
        self.start: Message | None = None
        self.chunks: list[bytes] = []
        self.length = -1
        self.storable = False
        self.complete = False
        self.refusal: Refusal | None = None
        self.per_request: Headers = []

    async def __call__(self, message: Message) -> None:
        kind = message["type"]
        if self.start is None and kind == "http.response.start":
            self.start = message
            self.length, self.refusal = storable(message, self.policy, self.max_bytes)
            self.storable = self.refusal is None
            if not self.storable:
                if self.unstorable is not None:
                    self.unstorable()
                await self._forward(message)
            return
        if self.storable and not self.complete:
            if kind == "http.response.body":
                self.chunks.append(message.get("body", b""))
                self.complete = not message.get("more_body", False)
                return
            if kind == PATHSEND and not self.chunks:
                body = await _read_file(message.get("path"), self.length)
                if body is not None:
                    self.chunks.append(body)
                    self.complete = True
                    return
        if self.storable:  # anything unexpected: stop storing, send what we hold as it is
            self.refusal = ("incomplete", "the body did not arrive as one complete body")
            await self.release()
        await self._forward(message)

    async def _forward(self, message: Message) -> None:
        if self.stream is not None:
            if self.cache_status and message["type"] == "http.response.start":
                refusal = self.refusal
                value = status.uncacheable(refusal[0]) if refusal else status.FORWARDED
                message = {
                    **message,
                    "headers": status.with_status(message.get("headers") or [], value),
                }
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

    def entry(self, policy: CachePolicy, now: float) -> Entry | None:
        """The captured response as a new entry made at ``now`` (wall-clock seconds); None
        when it was not stored whole."""
        if not (self.storable and self.complete and self.start is not None):
            return None
        body = b"".join(self.chunks)
        if len(body) != self.length:
            self.refusal = ("incomplete", "the body's length differs from its Content-Length")
            return None
        headers: Headers = []
        for name, value in self.start.get("headers") or []:
            if is_per_request(name):
                self.per_request.append((name, value))
            elif name not in _NOT_STORED_HEADERS:
                headers.append((name, value))
        if all(name != b"etag" for name, _ in headers):
            digest = hashlib.blake2b(body, digest_size=16).hexdigest().encode()
            headers.append((b"etag", b'W/"' + digest + b'"'))
        created = now
        fresh = created + policy.timeout if policy.timeout is not None else float("inf")
        return Entry(
            status=self.start["status"],
            headers=headers,
            body=body,
            created=created,
            fresh_until=fresh,
            stale_until=fresh + policy.stale_while_revalidate,
        )


async def _read_file(path: object, length: int) -> bytes | None:
    """The whole file a pathsend message names, when it has exactly ``length`` bytes."""
    if not isinstance(path, str):
        return None

    def read() -> bytes | None:
        try:
            with open(path, "rb") as handle:
                data = handle.read(length + 1)
        except OSError:
            return None
        return data if len(data) == length else None

    return await asyncio.to_thread(read)


def storable(start: Message, policy: CachePolicy, max_bytes: int) -> tuple[int, Refusal | None]:
    """``(Content-Length, None)`` for a response a shared cache may store, else
    ``(-1, refusal)`` saying why not."""
    status = start["status"]
    if status not in policy.statuses:
        return -1, ("status", f"status {status} is not in the route's statuses")
    if start.get("trailers"):
        return -1, ("trailers", "the response has trailers")
    length = -1
    for name, value in start.get("headers") or []:
        if name == b"set-cookie":
            return -1, ("set-cookie", "it sets a cookie (Set-Cookie)")
        if name == b"content-length":
            if not value.isdigit():
                return -1, ("content-length", "its Content-Length is not a number")
            length = int(value)
        elif name == b"cache-control":
            for directive in value.lower().split(b","):
                word = directive.split(b"=", 1)[0].strip()
                if word in _REFUSED_DIRECTIVES:
                    return -1, ("cache-control", f"Cache-Control: {word.decode('latin-1')}")
        elif name == b"vary":
            for token in value.lower().split(b","):
                token = token.strip()
                if token and token != b"accept-encoding" and token not in policy.vary:
                    header = token.decode("latin-1")  # "*" or a header the key does not hold
                    return -1, (
                        "vary",
                        f"Vary: {header} names a header outside the route's vary= "
                        f"(add vary=[{header!r}] to keep one entry per value)",
                    )
        elif name == b"content-encoding":
            if value.strip().lower() != b"identity":
                coding = value.decode("latin-1")
                return -1, (
                    "encoded",
                    f"the app encoded the body itself (Content-Encoding: {coding})",
                )
        elif name == b"content-type" and value.lower().startswith(b"text/event-stream"):
            return -1, ("event-stream", "it is an event stream (text/event-stream)")
    if length < 0:
        return -1, ("stream", "it is streamed (no Content-Length)")
    if length > max_bytes:
        return -1, ("too-large", f"its body is larger than the entry limit ({max_bytes} bytes)")
    return length, None


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
