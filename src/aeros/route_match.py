"""Which route of a Quart app an ASGI request goes to, found without entering Quart.

Layers in front of Quart need the route of a request before (or instead of) Quart routing it:
the response cache (its policy, and a ``tags=`` callable's view arguments), the rate limiter
(its limits) and the metrics (the route template of a cache hit or a 429). They bind
``app.url_map`` the way Quart does (host or subdomain matching, ``SERVER_NAME``, root path) in
:func:`match_route`, and remember what they derive from the match per (method, host, path) in
a :class:`RouteMemo`, so their hot path is one dict lookup.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from werkzeug.exceptions import HTTPException
from werkzeug.routing import RoutingException, Rule

from aeros.types import Scope

__all__ = [
    "MEMO_LIMIT",
    "Match",
    "RouteMemo",
    "match_route",
    "matches_host",
    "request_host",
    "rules_version",
]

MEMO_LIMIT = 4096
"""(method, host, path) answers a :class:`RouteMemo` keeps: random 404 paths cannot grow it."""

Match = tuple[Rule, dict[str, Any]]
"""The URL rule a request matched and its view arguments."""

T = TypeVar("T")


def rules_version(url_map: Any) -> int:
    """A number that changes whenever ``url_map`` gains a rule: aeros' map counts its ``add``
    calls; any other map's rules are counted (werkzeug builds the list of every rule for that:
    O(rules), too slow to ask per request)."""
    added: int | None = getattr(url_map, "rules_added", None)
    return len(url_map._rules) if added is None else added


def matches_host(app: Any) -> bool:
    """Whether ``app`` matches routes on host or subdomain (then the Host header counts)."""
    return bool(app.url_map.host_matching or app.subdomain_matching)


def request_host(app: Any, scope: Scope) -> str:
    """The lower-cased Host the route match needs: only for apps matching on host or
    subdomain ("" otherwise, so the memo key does not vary with it)."""
    if matches_host(app):
        for name, value in scope["headers"]:
            if name == b"host":
                return str(value.decode("latin-1").lower())
    return ""


def match_route(app: Any, scope: Scope, host: str) -> Match | None:
    """The rule ``app.url_map`` routes the request to and its view arguments, bound as Quart
    binds it; None for a 404, a 405 or a redirect."""
    root_path: str = scope.get("root_path", "")
    path: str = scope["path"]
    if root_path and path.startswith(root_path):
        path = path[len(root_path) :] or "/"
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
    method = scope["method"]
    try:
        adapter = url_map.bind(bind_host, root_path, subdomain, scope.get("scheme", "http"), method)
        rule, args = adapter.match(path, method, return_rule=True)
    except (HTTPException, RoutingException):
        return None
    return rule, args


class RouteMemo(Generic[T]):
    """``memo(scope)``: ``derive(scope, match)`` of the request's route, remembered per
    (method, host, path), bounded by :data:`MEMO_LIMIT` (first in, first out).

    The table is emptied when the app's URL map gains a rule (a route added after the first
    request, as tests and plugins do), so an answer never outlives the routing it came from.

    Args:
        app: the Quart app.
        derive: what to remember, from the scope and :func:`match_route`'s answer (None: no
            route). Called once per new (method, host, path).
    """

    def __init__(self, app: Any, derive: Callable[[Scope, Match | None], T]) -> None:
        self.app = app
        self.derive = derive
        self._memo: dict[tuple[str, str, str], T] = {}
        self._rules = -1  # rules_version of the map when the table was filled
        self._by_host = False  # whether the app matches on host or subdomain (then)

    def __call__(self, scope: Scope) -> T:
        app = self.app
        memo = self._memo
        url_map = app.url_map
        try:  # rules_version, without its call: this runs on every request of the layers
            rules = url_map.rules_added
        except AttributeError:
            rules = rules_version(url_map)
        fresh = rules != self._rules
        if fresh:
            memo.clear()
            self._rules = rules
            self._by_host = matches_host(app)
        host = request_host(app, scope) if self._by_host else ""
        key = (scope["method"], host, scope["path"])
        if not fresh:
            try:
                return memo[key]
            except KeyError:
                pass
        value = self.derive(scope, match_route(app, scope, host))
        if len(memo) >= MEMO_LIMIT:
            try:
                del memo[next(iter(memo))]
            except (KeyError, RuntimeError, StopIteration):
                memo.clear()  # another thread changed it meanwhile: start over
        memo[key] = value
        return value
