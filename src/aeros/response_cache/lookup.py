"""The route lookup of the response cache: which policy a request's route has. Quart-aware.

The lookup matches (method, path) against ``app.url_map`` once and remembers the answer in a
bounded table, so the hot path is one dict lookup and a hit never enters Quart. It also gives
a ``tags=`` callable the view's arguments when an entry is stored.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from werkzeug.exceptions import HTTPException
from werkzeug.routing import RoutingException

from aeros.response_cache.keys import endpoint_tag, tag_name
from aeros.response_cache.policy import CachePolicy, checked_tags, policy_of
from aeros.types import Scope

__all__ = ["MEMO_LIMIT", "RouteLookup"]

MEMO_LIMIT = 4096  # (method, host, path) answers kept; random 404 paths cannot grow it beyond


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
        self._memo: dict[tuple[str, str, str], CachePolicy | None] = {}
        self._routes: dict[tuple[str, int], CachePolicy] = {}

    def policy_for(self, scope: Scope) -> CachePolicy | None:
        """Return the cache policy of the route a request goes to, or None (not cached)."""
        host = self._host(scope)
        memo_key = (scope["method"], host, scope["path"])
        try:
            return self._memo[memo_key]
        except KeyError:
            pass
        policy = self._resolve(scope, host)
        memo = self._memo
        if len(memo) >= MEMO_LIMIT:
            try:
                del memo[next(iter(memo))]  # first in, first out: bounded, and cheap
            except (KeyError, RuntimeError, StopIteration):
                memo.clear()  # another thread changed it meanwhile: start over
        memo[memo_key] = policy
        return policy

    def _host(self, scope: Scope) -> str:
        """The Host the route lookup needs: only for apps matching on host or subdomain."""
        if self.app.url_map.host_matching or self.app.subdomain_matching:
            for name, value in scope["headers"]:
                if name == b"host":
                    return str(value.decode("latin-1").lower())
        return ""

    def tags_for(self, policy: CachePolicy, scope: Scope) -> tuple[str, ...]:
        """The store tags of an entry of ``policy``'s route: its endpoint tag, then its
        ``tags`` (a ``tags=`` callable is called with the view's arguments).

        Raises:
            ConfigurationError: the callable returned something other than tag names; what
                the callable raises.
        """
        names: tuple[str, ...] | Any = policy.tags
        if callable(names):
            matched = self._match(scope, self._host(scope))
            names = checked_tags(policy.route, names(**(matched[1] if matched else {})))
        return (endpoint_tag(policy), *(tag_name(name) for name in names))

    def _resolve(self, scope: Scope, host: str) -> CachePolicy | None:
        matched = self._match(scope, host)
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

    def _match(self, scope: Scope, host: str) -> tuple[Any, dict[str, Any]] | None:
        """The URL rule a request matches and the view arguments, or None."""
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
            rule, args = adapter.match(path, scope["method"], return_rule=True)
        except (HTTPException, RoutingException):
            return None
        return rule, args
