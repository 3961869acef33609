"""Write invalidation (RFC 9111 section 4.4): the stored URIs a successful unsafe request
makes stale. Pure ASGI.

A 2xx or 3xx answer to any method other than GET, HEAD, OPTIONS and TRACE invalidates the
request's target URI, whichever view answered it (``POST /thing/1`` handled by one view drops
what ``GET /thing/1`` on another view stored), and the URIs of its ``Location`` and
``Content-Location`` headers when they have the request's origin (scheme and host); another
origin's entries are never touched, so a response cannot drop what it does not own.

A URI's entries are those of the GET route it resolves to, every query string, host and
variant: one indexed group delete in the store.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, NamedTuple
from urllib.parse import quote, unquote, urljoin, urlsplit

from aeros.errors import StoreError
from aeros.response_cache.keys import path_prefix, request_host, request_path
from aeros.response_cache.policy import CachePolicy
from aeros.stores.base import capabilities_of
from aeros.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "SAFE_METHODS",
    "Target",
    "drop_group",
    "drop_target",
    "invalidated_targets",
    "serve_unsafe",
    "target_scope",
]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
"""Methods that never invalidate (RFC 9110 9.2.1); every other method is unsafe."""

_LOCATIONS = (b"location", b"content-location")


class Target(NamedTuple):
    """One URI whose stored entries are dropped.

    Attributes:
        path: the decoded request path (``/things/1``), without ``root_path`` or query.
        host: the Host the request named, as sent (``""``: none); routes that match on host
            or subdomain need it.
        root_path: the ASGI ``root_path`` the app is mounted under (``""`` usually).
    """

    path: str
    host: str = ""
    root_path: str = ""


async def serve_unsafe(
    app: ASGIApp,
    policy_for: Callable[[Scope], CachePolicy | None],
    invalidate: Callable[[Target], Awaitable[object]],
    on_error: Callable[[StoreError], None],
    scope: Scope,
    receive: Receive,
    send: Send,
) -> None:
    """Run ``app`` for an unsafe request; if it succeeds, ``invalidate`` each target URI
    whose GET is cached (``policy_for``; the others hold nothing, and cost no store call).

    The entries go before the response's last message is sent, so the client's next GET
    cannot race them. A failing store is reported to ``on_error``, never to the client.
    """
    targets: list[Target] = []

    async def watch(message: Message) -> None:
        nonlocal targets
        if message["type"] == "http.response.start":
            if 200 <= message["status"] < 400:
                found = invalidated_targets(scope, message.get("headers") or ())
                targets = [t for t in found if policy_for(target_scope(t)) is not None]
        elif targets and not message.get("more_body", False):  # the response's last message
            done, targets = targets, []
            for target in done:
                try:
                    await invalidate(target)
                except StoreError as exc:
                    on_error(exc)
        await send(message)

    await app(scope, receive, watch)


def invalidated_targets(scope: Scope, headers: Iterable[tuple[bytes, bytes]]) -> list[Target]:
    """The URIs a successful unsafe response invalidates: the target URI first, then a
    same-origin ``Location`` / ``Content-Location`` (each once)."""
    host_header = b""
    for name, value in scope["headers"]:
        if name == b"host":
            host_header = value
            break
    host = host_header.decode("latin-1")
    root_path: str = scope.get("root_path", "")
    path: str = scope["path"]  # as the server gave it: a GET to this URI gets the same
    targets = [Target(path, host, root_path)]
    for name, value in headers:
        if name in _LOCATIONS:
            target = _same_origin(scope, host_header, root_path, value)
            if target is not None and target not in targets:
                targets.append(target)
    return targets


def _same_origin(scope: Scope, host: bytes, root_path: str, location: bytes) -> Target | None:
    """The Target of a Location-like header, or None for another origin or a foreign path."""
    try:
        text = location.decode("ascii").strip()
        parts = urlsplit(text)
    except (UnicodeDecodeError, ValueError):
        return None
    scheme = scope.get("scheme", "http")
    if parts.scheme and parts.scheme.lower() != scheme:
        return None
    if parts.netloc:
        theirs = request_host(scope, parts.netloc.encode("ascii"))
        if theirs is None or theirs != request_host(scope, host or None):
            return None
    path: str = scope["path"]
    # servers differ on whether ``path`` includes ``root_path``; keep this server's habit
    includes_root = not root_path or path.startswith(root_path)
    url_path = path if includes_root else root_path + path
    resolved = urljoin("http://origin" + quote(url_path, safe="/"), text)
    full = unquote(urlsplit(resolved).path) or "/"
    if root_path:
        if full != root_path and not full.startswith(root_path.rstrip("/") + "/"):
            return None  # outside the app's mount point: not this app's entries
        if not includes_root:
            full = full[len(root_path) :] or "/"
    return Target(full, host.decode("latin-1"), root_path)


def target_scope(target: Target, scheme: str = "http") -> Scope:
    """A minimal GET scope for ``target``: what the route lookup and the key need."""
    headers = [(b"host", target.host.encode("latin-1"))] if target.host else []
    return {
        "type": "http",
        "method": "GET",
        "scheme": scheme,
        "path": target.path,
        "root_path": target.root_path,
        "query_string": b"",
        "headers": headers,
    }


async def drop_target(
    store: Any, policy_for: Callable[[Scope], CachePolicy | None], target: Target
) -> tuple[int, str | None] | None:
    """Drop every stored entry of ``target``.

    Returns:
        ``(removed, group)``: how many entries were removed and the store key group they
        were in (None: the store had to be cleared, 0 is counted then); None when
        ``GET target`` is not cached (nothing was or could have been stored).

    Raises what the store raises (``StoreError``).
    """
    scope = target_scope(target)
    policy = policy_for(scope)
    if policy is None:
        return None
    group = path_prefix(policy, request_path(scope))
    return await drop_group(store, group)


async def drop_group(store: Any, group: str) -> tuple[int, str | None]:
    """Drop one store key group (every entry of one path), as well as ``store`` can.

    A store declaring ``groups`` drops it by index; one declaring only ``prefix_delete`` drops
    the keys starting with it; any other store is cleared entirely (``(0, None)``).
    """
    capabilities = capabilities_of(store)
    if capabilities.groups:
        return int(await store.delete_group(group)), group
    if capabilities.prefix_delete:
        return int(await store.delete_prefix(group)), group
    await store.clear()
    return 0, None
