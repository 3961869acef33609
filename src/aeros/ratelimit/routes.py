"""Which limits a request meets: the app-wide rule plus its route's ``@rate_limit`` rules.

The Quart-aware part of rate limiting (the layer itself is pure ASGI). The layer sits in front
of the response cache and of Quart, so the route is found here from ``app.url_map`` without
calling the view, once per (method, host, path), and remembered in a bounded table: the hot
path is one dict lookup.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from limits import RateLimitItem
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RoutingException

from aeros.ratelimit.fields import policy_member
from aeros.ratelimit.keys import KeyFunc
from aeros.ratelimit.policy import RateLimit, Rule, exempt_of, rules_of
from aeros.types import Scope

__all__ = ["Check", "Plan", "RouteLimits"]

_MEMO_LIMIT = 4096  # (method, host, path) answers kept; random 404 paths cannot grow it beyond


class Check(NamedTuple):
    """One limit under one key, as the layer applies it."""

    name: bytes
    """The policy's quoted name in the fields (``b'"app-60s"'``)."""
    item: RateLimitItem
    amount: int
    """The quota: requests allowed per window."""
    window: int
    """The window in seconds."""
    key: KeyFunc
    prefix: str
    """The storage key without the identity: ``<where>/<quota>/<window>/``."""


class Plan(NamedTuple):
    """The checks of one route and its ``RateLimit-Policy`` value, built once per route."""

    checks: tuple[Check, ...]
    policy: bytes


def _checks(where: str, rule: Rule) -> list[Check]:
    out = []
    for item in rule.items:
        window = item.get_expiry()
        name = f"{where}-{window}s"
        out.append(
            Check(
                f'"{name}"'.encode("ascii"),
                item,
                item.amount,
                window,
                rule.key,
                f"{where}/{item.amount}/{window}/",
            )
        )
    return out


def _plan(checks: list[Check]) -> Plan | None:
    if not checks:
        return None
    policy = b", ".join(policy_member(c.name.decode("ascii").strip('"'), c.item) for c in checks)
    return Plan(tuple(checks), policy)


def _safe_name(endpoint: str) -> str:
    # policy names are structured-field strings: keep them to plain printable ASCII
    return "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in endpoint
    )


class RouteLimits:
    """The rate limits of one Quart app, looked up per request.

    Args:
        app: the Quart app (``WebServer``).
        config: the app-wide :class:`RateLimit`, or None (only ``@rate_limit`` routes, with
            the default memory storage).
    """

    def __init__(self, app: Any, config: RateLimit | None) -> None:
        self.app = app
        self.config = config if config is not None else RateLimit()
        app_checks = _checks("app", self.config.rule)
        self._app_checks = app_checks
        self._app_plan = _plan(app_checks)
        self._memo: dict[tuple[str, str, str], Plan | None] = {}
        self._by_endpoint: dict[str, Plan | None] = {}

    def active(self) -> bool:
        """Whether anything is limited: an app-wide limit, or a view marked ``@rate_limit``.

        Asked when the layer stack is built, once every blueprint is registered.
        """
        return self._app_plan is not None or any(
            rules_of(view) for view in self.app.view_functions.values()
        )

    def plan_for(self, scope: Scope) -> Plan | None:
        """The checks for this request's route; None when nothing limits it."""
        url_map = self.app.url_map
        host = ""
        if url_map.host_matching or self.app.subdomain_matching:
            for name, value in scope["headers"]:
                if name == b"host":
                    host = value.decode("latin-1").lower()
                    break
        memo_key = (scope["method"], host, scope["path"])
        try:
            return self._memo[memo_key]
        except KeyError:
            pass
        plan = self._resolve(scope, host)
        memo = self._memo
        if len(memo) >= _MEMO_LIMIT:
            try:
                del memo[next(iter(memo))]  # first in, first out: bounded, and cheap
            except (KeyError, RuntimeError, StopIteration):
                memo.clear()  # another thread changed it meanwhile: start over
        memo[memo_key] = plan
        return plan

    def _resolve(self, scope: Scope, host: str) -> Plan | None:
        endpoint = self._endpoint(scope, host)
        if endpoint is None:
            return self._app_plan  # 404, 405, redirects: the app-wide limit still counts
        try:
            return self._by_endpoint[endpoint]
        except KeyError:
            pass
        view = self.app.view_functions.get(endpoint)
        checks = [] if exempt_of(view) else list(self._app_checks)
        where = _safe_name(endpoint)
        for index, rule in enumerate(reversed(rules_of(view))):  # top decorator first
            checks += _checks(where if index == 0 else f"{where}.{index}", rule)
        plan = self._by_endpoint[endpoint] = _plan(checks)
        return plan

    def _endpoint(self, scope: Scope, host: str) -> str | None:
        """The endpoint ``app.url_map`` routes the request to (as Quart binds it), or None."""
        app = self.app
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
        try:
            adapter = url_map.bind(
                bind_host, root_path, subdomain, scope.get("scheme", "http"), scope["method"]
            )
            rule, _ = adapter.match(path, scope["method"], return_rule=True)
        except (HTTPException, RoutingException):
            return None
        return str(rule.endpoint)
