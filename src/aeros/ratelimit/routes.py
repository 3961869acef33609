"""Which limits a request meets: the app-wide rule plus its route's ``@rate_limit`` rules.

The Quart-aware part of rate limiting (the layer itself is pure ASGI). The layer sits in front
of the response cache and of Quart, so the route is found here from ``app.url_map`` without
calling the view, once per (method, host, path), and remembered in a bounded table: the hot
path is one dict lookup.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from limits import RateLimitItem

from aeros.headers import header_line
from aeros.ratelimit.fields import POLICY_FIELD, policy_member
from aeros.ratelimit.keys import KeyFunc
from aeros.ratelimit.policy import RateLimit, Rule, exempt_of, rules_of
from aeros.route_match import Match, RouteMemo, rules_version
from aeros.types import Scope

__all__ = ["Check", "Plan", "RouteLimits"]


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
    policy_line: bytes  # its RateLimit-Policy line, for aeros' server (HEADER_LINES)


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
    return Plan(tuple(checks), policy, header_line(POLICY_FIELD, policy))


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
        self._by_endpoint: dict[str, Plan | None] = {}
        self._route_plan = RouteMemo(app, self._resolve)
        self._rules_seen = -1  # rules_version of the app's map when _uniform was decided
        self._uniform = False  # no view has its own limits or an exemption

    @property
    def app_plan(self) -> Plan | None:
        """The plan of the app-wide limit alone (None without one)."""
        return self._app_plan

    def plan_for(self, scope: Scope) -> Plan | None:
        """The checks for this request's route; None when nothing limits it. With only an
        app-wide limit (no ``@rate_limit`` view, no exemption) every request has the same
        plan and no route is matched; else the route's plan, remembered per (method, host,
        path)."""
        if self.uniform():
            return self._app_plan
        return self._route_plan(scope)

    def uniform(self) -> bool:
        """Whether every request has :attr:`app_plan`: no view has limits of its own or an
        exemption (decided again whenever the app's map gains a rule)."""
        rules = rules_version(self.app.url_map)
        if rules != self._rules_seen:  # a view was added: decide again
            self._rules_seen = rules
            self._uniform = not any(
                rules_of(view) or exempt_of(view) for view in self.app.view_functions.values()
            )
        return self._uniform

    def active(self) -> bool:
        """Whether anything is limited: an app-wide limit, or a view marked ``@rate_limit``.

        Asked when the layer stack is built, once every blueprint is registered.
        """
        return self._app_plan is not None or any(
            rules_of(view) for view in self.app.view_functions.values()
        )

    def _resolve(self, scope: Scope, matched: Match | None) -> Plan | None:
        if matched is None:
            return self._app_plan  # 404, 405, redirects: the app-wide limit still counts
        endpoint = str(matched[0].endpoint)
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
