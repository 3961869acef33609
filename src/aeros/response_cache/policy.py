"""``@cached(...)``: mark a view function for the response cache, without an app object.

The decorator only attaches a :class:`~aeros.response_cache.layer.CachePolicy` to the function;
whichever :class:`aeros.WebServer` serves the view later reads it when a request arrives. So a
blueprint in its own module and an app factory can cache views, as Flask extensions that never
hold the app do. ``app.cache(...)`` is the same decorator.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from aeros.errors import ConfigurationError
from aeros.headers import is_token
from aeros.response_cache.entry import CachePolicy

__all__ = [
    "OPTIONS",
    "POLICY_ATTRIBUTE",
    "build_policy",
    "cached",
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
            ``stale_while_revalidate`` (seconds a stale entry is served while refreshed).

    Raises:
        TypeError: an unknown option.
        ConfigurationError: a bad option value (naming the option and the value).
    """
    return make_decorator("cached", timeout, options)


def make_decorator(api: str, timeout: Any, options: dict[str, Any]) -> Callable[[F], F]:
    """The decorator :func:`cached` returns; ``api`` names the caller in error messages."""
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise TypeError(
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
    if timeout is None:
        resolved = None
    else:
        seconds = _seconds(api, "timeout", timeout)
        resolved = seconds if seconds > 0 else None
    unless = options.get("unless")
    if unless is not None and not callable(unless):
        raise ConfigurationError(f"{api}(unless={unless!r}) must be a callable or None")
    query_string = options.get("query_string", True)
    if not isinstance(query_string, bool):
        raise ConfigurationError(f"{api}(query_string={query_string!r}) must be a bool")
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
        stale_while_revalidate=_seconds(
            api, "stale_while_revalidate", options.get("stale_while_revalidate", 0)
        ),
    )


def _seconds(api: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigurationError(f"{api}({name}={value!r}) must be a number of seconds")
    if value < 0:
        raise ConfigurationError(f"{api}({name}={value!r}) must be >= 0 seconds")
    return float(value)


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
