"""Client-side caching: the ``Cache-Control`` response header, per route or app-wide.

``@CacheControl(CacheTypes.PUBLIC, max_age=60)`` under ``@app.route`` sets
``Cache-Control: public, max-age=60`` on the route's GET/HEAD responses whose status is listed
in ``cache_on_status``; ``WebServer(cache_control=CacheControl(...))`` does the same for every
route that has no decorator of its own. Directive names follow RFC 9111 section 5.2.2. The
header value is built once, when the policy is created.
"""

from __future__ import annotations

import enum
import functools
import inspect
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from aeros._validate import boolean, integer
from aeros.errors import ConfigurationError

__all__ = ["CacheControl", "CacheTypes"]

F = TypeVar("F", bound=Callable[..., Any])

_MARK = "__aeros_cache_control__"  # set on decorated views: the app-wide default skips them
_METHODS = frozenset({"GET", "HEAD"})  # only these responses are reused by caches


class CacheTypes(enum.Enum):
    """Who may store the response (the first ``Cache-Control`` directive)."""

    PUBLIC = "public"
    """Any cache, shared ones (CDNs, proxies) included."""
    PRIVATE = "private"
    """Only the user's own browser cache."""
    NO_CACHE = "no-cache"
    """Stored, but revalidated with the server before every reuse."""
    NO_STORE = "no-store"
    """Never stored anywhere."""


def _seconds(name: str, value: object) -> int | None:
    # Cache-Control's delta-seconds are whole numbers (RFC 9111, section 1.2.2)
    return None if value is None else integer("CacheControl", name, value, minimum=0)


class CacheControl:
    """Set ``Cache-Control`` on a route's responses (decorator), or app-wide (``init_app``).

    Args:
        cache_type: :class:`CacheTypes` member (or its value, ``"public"``); None sends only
            the other directives.
        max_age: ``max-age``: seconds the response stays fresh.
        immutable: ``immutable``: the body never changes while fresh (fingerprinted assets).
        no_transform: ``no-transform``: intermediaries must not alter the body.
        stale_while_revalidate: ``stale-while-revalidate``: seconds a stale response may be
            served while it is refreshed in the background (RFC 5861).
        stale_if_error: ``stale-if-error``: seconds a stale response may be served when the
            server fails (RFC 5861).
        cache_on_status: statuses that get the header (default ``[200]``).
        s_maxage: ``s-maxage``: freshness for shared caches, overriding ``max-age`` there.
        must_revalidate: ``must-revalidate``: never serve it stale without revalidating.
        proxy_revalidate: ``proxy-revalidate``: ``must-revalidate`` for shared caches only.

    The header goes on GET and HEAD responses only; a header the view set itself is kept.

    Raises:
        ConfigurationError: a negative or non-integer number of seconds, an unknown status,
            or freshness directives together with ``no-store``.
    """

    __slots__ = ("cache_on_status", "cache_type", "value")

    def __init__(
        self,
        cache_type: CacheTypes | str | None = CacheTypes.PUBLIC,
        max_age: int | None = None,
        immutable: bool = False,
        no_transform: bool = False,
        stale_while_revalidate: int | None = None,
        stale_if_error: int | None = None,
        cache_on_status: Iterable[int] = (200,),
        *,
        s_maxage: int | None = None,
        must_revalidate: bool = False,
        proxy_revalidate: bool = False,
    ) -> None:
        if isinstance(cache_type, str):
            try:
                cache_type = CacheTypes(cache_type.lower())
            except ValueError as exc:
                allowed = ", ".join(repr(t.value) for t in CacheTypes)
                raise ConfigurationError(
                    f"CacheControl(cache_type={cache_type!r}) is unknown; use CacheTypes.* or "
                    f"one of {allowed}"
                ) from exc
        if cache_type is not None and not isinstance(cache_type, CacheTypes):
            raise ConfigurationError(
                f"CacheControl(cache_type={cache_type!r}) must be a CacheTypes member"
            )
        for flag_name, flag in (
            ("immutable", immutable),
            ("no_transform", no_transform),
            ("must_revalidate", must_revalidate),
            ("proxy_revalidate", proxy_revalidate),
        ):
            boolean("CacheControl", flag_name, flag)
        seconds = {
            "max-age": _seconds("max_age", max_age),
            "s-maxage": _seconds("s_maxage", s_maxage),
            "stale-while-revalidate": _seconds("stale_while_revalidate", stale_while_revalidate),
            "stale-if-error": _seconds("stale_if_error", stale_if_error),
        }
        if isinstance(cache_on_status, (str, bytes)) or not isinstance(cache_on_status, Iterable):
            raise ConfigurationError(
                f"CacheControl(cache_on_status={cache_on_status!r}) must be a list of statuses"
            )
        statuses = frozenset(cache_on_status)
        for status in statuses:
            integer("CacheControl", "cache_on_status", status, minimum=100, maximum=599)
        if cache_type is CacheTypes.NO_STORE and (immutable or any(v for v in seconds.values())):
            raise ConfigurationError(
                "CacheControl(CacheTypes.NO_STORE, ...) cannot also set freshness (max_age, "
                "s_maxage, immutable, stale_*): no-store responses are never kept"
            )
        directives = [cache_type.value] if cache_type is not None else []
        directives += [f"{name}={value}" for name, value in seconds.items() if value is not None]
        for directive, on in (
            ("immutable", immutable),
            ("no-transform", no_transform),
            ("must-revalidate", must_revalidate),
            ("proxy-revalidate", proxy_revalidate),
        ):
            if on:
                directives.append(directive)
        if not directives:
            raise ConfigurationError("CacheControl() needs a cache_type or at least one directive")
        self.cache_type = cache_type
        self.cache_on_status = statuses
        self.value = ", ".join(directives)
        """The header value, e.g. ``"public, max-age=60, immutable"``."""

    def __repr__(self) -> str:
        return f"CacheControl({self.value!r}, cache_on_status={sorted(self.cache_on_status)})"

    def apply(self, response: Any, method: str) -> None:
        """Set the header on a Quart/Werkzeug response if the method and status call for it."""
        if (
            method in _METHODS
            and response.status_code in self.cache_on_status
            and "Cache-Control" not in response.headers
        ):
            response.headers["Cache-Control"] = self.value

    def __call__(self, func: F) -> F:
        """Decorate a view (async or sync) so its responses carry this policy.

        The policy is applied as an ``after_this_request`` hook, so it also reaches responses
        built by error handlers (``abort(404)`` with ``cache_on_status=[200, 404]``).
        """
        from quart import after_this_request, current_app, request

        async def apply_hook(response: Any) -> Any:
            self.apply(response, request.method)
            return response

        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def wrapper(*args: Any, **kwargs: Any) -> Any:
                after_this_request(apply_hook)
                return await func(*args, **kwargs)

        else:

            @functools.wraps(func)
            async def wrapper(*args: Any, **kwargs: Any) -> Any:
                after_this_request(apply_hook)
                # Quart runs sync views in a thread; keep doing so under the decorator
                return await current_app.ensure_async(func)(*args, **kwargs)

        setattr(wrapper, _MARK, self)
        return wrapper  # type: ignore[return-value]

    def init_app(self, app: Any) -> None:
        """Make this the default policy of ``app``: routes without their own decorator get it."""
        from quart import request

        policy = self

        async def default_cache_control(response: Any) -> Any:
            view = app.view_functions.get(request.endpoint) if request.endpoint else None
            if view is None or getattr(view, _MARK, None) is None:
                policy.apply(response, request.method)
            return response

        app.extensions["cache_control"] = self
        app.after_request(default_cache_control)
