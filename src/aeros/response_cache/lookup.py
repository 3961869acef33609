"""The route lookup of the response cache: which policy a request's route has. Quart-aware.

The lookup matches (method, path) against ``app.url_map`` once and remembers the answer in a
bounded table, so the hot path is one dict lookup and a hit never enters Quart. It also gives
a ``tags=`` callable the view's arguments when an entry is stored.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from aeros.asgi_entry import direct
from aeros.response_cache.keys import endpoint_tag, tag_name
from aeros.response_cache.policy import CachePolicy, checked_tags, policy_of
from aeros.route_match import Match, RouteMemo, match_route, request_host
from aeros.types import Scope

__all__ = ["RouteLookup"]


class RouteLookup:
    """Finds the :class:`CachePolicy` of a request's route in a Quart app.

    Args:
        app: the Quart app.
        default_timeout: returns the store's default timeout (for ``@app.cache()`` without
            its own).
    """

    def __init__(self, app: Any, default_timeout: Callable[[], float | None]) -> None:
        self.app = app
        self.default_timeout = default_timeout
        self._routes: dict[tuple[str, int], CachePolicy] = {}
        self.policy_for: Callable[[Scope], CachePolicy | None] = direct(
            RouteMemo(app, self._resolve)
        )
        """``policy_for(scope)``: the cache policy of the route a request goes to, or None
        (not cached); remembered per (method, host, path)."""

    def tags_for(self, policy: CachePolicy, scope: Scope) -> tuple[str, ...]:
        """The store tags of an entry of ``policy``'s route: its endpoint tag, then its
        ``tags`` (a ``tags=`` callable is called with the view's arguments).

        Raises:
            ConfigurationError: the callable returned something other than tag names; what
                the callable raises.
        """
        names: tuple[str, ...] | Any = policy.tags
        if callable(names):
            matched = match_route(self.app, scope, request_host(self.app, scope))
            names = checked_tags(policy.route, names(**(matched[1] if matched else {})))
        return (endpoint_tag(policy), *(tag_name(name) for name in names))

    def _resolve(self, scope: Scope, matched: Match | None) -> CachePolicy | None:
        if matched is None:
            return None  # 404, 405, a redirect: nothing to cache
        endpoint = matched[0].endpoint
        view = self.app.view_functions.get(endpoint)
        policy = policy_of(view)
        if policy is None:
            return None
        route_key = (endpoint, id(policy))
        routed = self._routes.get(route_key)
        if routed is None:
            timeout = self.default_timeout() if policy.store_timeout else policy.timeout
            routed = dataclasses.replace(policy, route=endpoint, timeout=timeout)
            self._routes[route_key] = routed
        return routed
