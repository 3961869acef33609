"""How a route is cached: :class:`CachePolicy`, and ``@cached(...)`` that marks a view with one.

The decorator only attaches a :class:`CachePolicy` to the function; whichever
:class:`aeros.WebServer` serves the view later reads it when a request arrives. So a blueprint
in its own module and an app factory can cache views, as Flask extensions that never hold the
app do. ``app.cache(...)`` is the same decorator.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aeros import _validate
from aeros.errors import ConfigurationError
from aeros.headers import is_token
from aeros.types import Scope

__all__ = [
    "CREDENTIALS",
    "FIELDS_READ",
    "OPTIONS",
    "POLICY_ATTRIBUTE",
    "CachePolicy",
    "build_policy",
    "cached",
    "checked_tags",
    "make_decorator",
    "policy_of",
]

F = TypeVar("F", bound=Callable[..., Any])

POLICY_ATTRIBUTE = "__aeros_cache__"
"""Attribute of a view function holding its :class:`CachePolicy`."""

OPTIONS = (
    "query_string",
    "key_prefix",
    "unless",
    "vary",
    "statuses",
    "stale_while_revalidate",
    "tags",
)


CREDENTIALS = (b"authorization", b"cookie")
"""Request fields that make the cache pass a request by, unless the route varies on them."""
FIELDS_READ = frozenset((b"host", b"accept-encoding", b"if-none-match", *CREDENTIALS))
"""The request header names the cache layer reads on every cached route."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CachePolicy:
    """How one route is cached; built by ``@app.cache(...)`` and read by the cache layer.

    Attributes:
        timeout: seconds a response stays fresh; None: until evicted or cleared.
        store_timeout: the decorator was given no timeout: the app serving the route replaces
            ``timeout`` with its store's default timeout.
        query_string: the query string is part of the key (``/s?q=a`` and ``/s?q=b`` differ;
            parameter order does not). False: every query shares one entry.
        key_prefix: a namespace mixed into the key (bump it to orphan old entries).
        unless: called with the ASGI scope before the cache is consulted; True bypasses the
            cache for that request (neither served from nor stored in it).
        vary: lower-case request header names the response depends on; their values are part
            of the key. Naming ``authorization`` or ``cookie`` here allows caching requests that
            carry them (one entry per distinct value).
        statuses: response statuses that may be stored (default 200 only).
        stale_while_revalidate: seconds after ``timeout`` during which a stale entry is still
            served while one background request refreshes it.
        tags: names ``app.purge_cache(tag=...)`` drops the route's entries by: a tuple, or a
            callable taking the view's arguments (``lambda item_id: [f"item:{item_id}"]``)
            called when a response is stored.
        route: the route's identity (its endpoint), filled in by the route lookup; purges
            drop keys by it.
    """

    timeout: float | None
    store_timeout: bool = False
    query_string: bool = True
    key_prefix: str = ""
    unless: Callable[[Scope], bool] | None = None
    vary: tuple[bytes, ...] = ()
    statuses: frozenset[int] = frozenset({200})
    stale_while_revalidate: float = 0.0
    tags: tuple[str, ...] | Callable[..., Iterable[str]] = ()
    route: str = ""
    route_hash: str = field(init=False, default="")
    """The first part of every store key of the route (:mod:`aeros.response_cache.keys`)."""
    key_prefix_bytes: bytes = field(init=False, default=b"")
    fields_read: frozenset[bytes] = field(init=False, default=frozenset())
    """The request header names the cache layer reads for this route (:data:`FIELDS_READ`
    and ``vary``): a field of any other name is passed over with one set lookup."""

    def __post_init__(self) -> None:
        route_hash = hashlib.blake2b(self.route.encode(), digest_size=8).hexdigest()
        object.__setattr__(self, "route_hash", route_hash)
        object.__setattr__(self, "fields_read", FIELDS_READ.union(self.vary))
        object.__setattr__(
            self, "key_prefix_bytes", self.key_prefix.encode("utf-8", "surrogatepass")
        )


def cached(timeout: float | None = None, **options: Any) -> Callable[[F], F]:
    """Cache a view's responses server-side, in whichever WebServer serves it.

    Works on blueprint views and in app factories: the policy travels with the view function
    and is read when a request arrives. The decorator may sit above or below ``@route``.
    Without ``WebServer(cache=...)`` the app serves the view uncached and warns once at start,
    naming the routes that asked for caching.

    Args:
        timeout: seconds a response stays fresh; None (default): the store's timeout;
            0: no expiry.
        **options: ``query_string`` (bool, default True: ``/s?q=a`` and ``/s?q=b`` are
            separate entries, parameter order ignored), ``key_prefix`` (str),
            ``unless`` (callable taking the ASGI scope; True skips the cache for that
            request; it runs before Quart, so ``quart.request`` is not available),
            ``vary`` (request header names the response depends on),
            ``statuses`` (cacheable statuses, default ``(200,)``),
            ``stale_while_revalidate`` (seconds a stale entry is served while refreshed),
            ``tags`` (names to purge by: a list of str, or a callable taking the view's
            arguments and returning them, e.g. ``lambda item_id: [f"item:{item_id}"]``).

    Raises:
        ConfigurationError: an unknown option, or a bad option value (naming the option and
            the value).
    """
    return make_decorator("cached", timeout, options)


def make_decorator(api: str, timeout: Any, options: dict[str, Any]) -> Callable[[F], F]:
    """The decorator :func:`cached` returns; ``api`` names the caller in error messages."""
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ConfigurationError(
            f"{api}() got unknown option(s) {', '.join(unknown)}; "
            f"allowed: timeout, {', '.join(OPTIONS)}"
        )
    policy = build_policy(timeout, options, api=api)

    def mark(func: F) -> F:
        setattr(func, POLICY_ATTRIBUTE, policy)
        return func

    return mark


def policy_of(view: Any) -> CachePolicy | None:
    """The policy marked on a view function or on a function it wraps (functools.wraps)."""
    for _ in range(16):
        if view is None:
            return None
        policy = getattr(view, POLICY_ATTRIBUTE, None)
        if isinstance(policy, CachePolicy):
            return policy
        view = getattr(view, "__wrapped__", None)
    return None


def build_policy(timeout: Any, options: dict[str, Any], *, api: str = "cached") -> CachePolicy:
    """Validate the decorator's arguments into a policy (``api`` names the caller in errors).

    ``timeout=None`` leaves the timeout to the store of the app that serves the view.
    """
    # None: the store's timeout; 0: no expiry
    seconds = _validate.seconds(api, "timeout", timeout, none="the store's timeout")
    resolved = seconds if seconds else None
    unless = options.get("unless")
    if unless is not None and not callable(unless):
        raise ConfigurationError(f"{api}(unless={unless!r}) must be a callable or None")
    query_string = _validate.boolean(api, "query_string", options.get("query_string", True))
    key_prefix = options.get("key_prefix", "")
    if not isinstance(key_prefix, str):
        raise ConfigurationError(f"{api}(key_prefix={key_prefix!r}) must be a str")
    return CachePolicy(
        timeout=resolved,
        store_timeout=timeout is None,
        query_string=query_string,
        key_prefix=key_prefix,
        unless=unless,
        vary=_header_names(api, options.get("vary", ())),
        statuses=_statuses(api, options.get("statuses", (200,))),
        stale_while_revalidate=_validate.seconds(
            api, "stale_while_revalidate", options.get("stale_while_revalidate", 0)
        )
        or 0.0,
        tags=_tags(api, options.get("tags", ())),
    )


def _tags(api: str, value: Any) -> tuple[str, ...] | Callable[..., Iterable[str]]:
    if callable(value):
        return value  # type: ignore[no-any-return]
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, Iterable) or isinstance(names, bytes):
        raise ConfigurationError(
            f"{api}(tags={value!r}) must be tag names (str) or a callable of the view's arguments"
        )
    for name in names:
        if not isinstance(name, str) or not name:
            raise ConfigurationError(
                f"{api}(tags=...): {name!r} is not a tag name (a non-empty str)"
            )
    return tuple(dict.fromkeys(names))


def checked_tags(route: str, value: Any) -> tuple[str, ...]:
    """What a ``tags=`` callable returned, as tag names.

    Raises:
        ConfigurationError: not an iterable of non-empty str (naming the route and the value).
    """
    names = [value] if isinstance(value, str) else value
    if isinstance(names, Iterable) and not isinstance(names, bytes):
        names = list(names)
        if all(isinstance(name, str) and name for name in names):
            return tuple(dict.fromkeys(names))
    raise ConfigurationError(
        f"the tags= callable of route {route!r} returned {value!r}; return a list of str"
    )


def _header_names(api: str, value: Any) -> tuple[bytes, ...]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, Iterable):
        raise ConfigurationError(f"{api}(vary={value!r}) must be header names")
    out: set[bytes] = set()
    for name in names:
        if not isinstance(name, str) or not is_token(name):
            raise ConfigurationError(
                f"{api}(vary=...): {name!r} is not a header name (letters, digits, -)"
            )
        out.add(name.lower().encode("ascii"))
    return tuple(sorted(out))


def _statuses(api: str, value: Any) -> frozenset[int]:
    if not isinstance(value, Iterable) or isinstance(value, str | bytes):
        raise ConfigurationError(f"{api}(statuses={value!r}) must be status codes")
    statuses = frozenset(value)
    for status in statuses:
        if isinstance(status, bool) or not isinstance(status, int) or not 200 <= status <= 599:
            raise ConfigurationError(
                f"{api}(statuses=...): {status!r} is not a final status code (200-599)"
            )
    if not statuses:
        raise ConfigurationError(f"{api}(statuses=()) would cache nothing; give at least one")
    return statuses
