"""The route template of each request, for the metrics' ``route`` label (never the raw path).

The one Quart-aware module of :mod:`aeros.metrics`. Where a request's count starts (aeros'
server, or the metrics layer) a box goes into the scope (so it survives the copies of the scope
the response cache makes) for the rule's template: the lean dispatch
(:mod:`aeros.fastpath.dispatch`) writes it once the URL is matched; for an app on Quart's own
dispatch, :func:`recording_request_class` makes a subclass of the app's request class whose
``url_rule``, when Quart sets it after routing, also writes it there. :class:`RouteResolver`
finds the template of requests that never reach Quart (cache hits), memoised per method and
path.
"""

from __future__ import annotations

from typing import Any

from quart import Quart

from aeros.metrics.tally import UNMATCHED
from aeros.route_match import Match, RouteMemo
from aeros.types import ROUTE, Scope

__all__ = ["RouteResolver", "recording_request_class"]


def _get_rule(self: Any) -> Any:
    return self.__dict__.get("_aeros_url_rule")


def _set_rule(self: Any, rule: Any) -> None:
    self.__dict__["_aeros_url_rule"] = rule
    if rule is not None:
        box = self.scope.get(ROUTE)
        if box is not None:
            box[0] = rule.rule


def recording_request_class(base: type[Any]) -> type[Any]:
    """A subclass of ``base`` (the app's ``request_class``) that records the matched route."""
    if getattr(base, "__aeros_records_route__", False):
        return base
    namespace = {
        "url_rule": property(_get_rule, _set_rule, doc="The matched rule (Quart's)."),
        "__aeros_records_route__": True,
        "__module__": __name__,
    }
    return type(f"RouteRecording{base.__name__}", (base,), namespace)


def _template(scope: Scope, matched: Match | None) -> str:
    return matched[0].rule if matched is not None else UNMATCHED


class RouteResolver(RouteMemo[str]):
    """``resolver(scope)``: the route template matching the request, or :data:`UNMATCHED`
    (bound as Quart binds it: host and subdomain matching included), remembered per
    (method, host, path)."""

    def __init__(self, app: Quart) -> None:
        super().__init__(app, _template)
