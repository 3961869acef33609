"""A URL map that binds each request without redoing per-host work, and remembers matches.

Quart's :meth:`quart.routing.QuartMap.bind_to_request` lower-cases and normalises the host,
splits it to find the subdomain and IDNA-encodes it on every request; for one host the answer
is always the same. :class:`LeanMap` remembers it per (scheme, host, server name, subdomain),
for a bounded number of hosts, and builds the ``MapAdapter`` directly.

Matching a path walks werkzeug's state machine and runs the converters on every request; for
the paths a service sees again and again the answer is the same too. :class:`LeanMapAdapter`
keeps the last :data:`MATCH_CACHE_SIZE` successful matches (least recently used out), keyed by
exactly what werkzeug's matcher reads: the domain part (host or subdomain), the path, the
method and whether it is a websocket. What is not cached, so behaves as werkzeug decides each
time: every failure (404, 405, a websocket mismatch) and every redirect (strict slashes,
``redirect_to``, ``redirect_defaults``), matches whose converted values are not plain
immutable values, and matches of a rule with a converter that is not werkzeug's own (a custom
converter may answer differently for the same path later: one that looks a value up and
refuses it once it is gone). Adding a rule empties the cache.

Binding builds a ``MapAdapter`` per request (a Python ``__init__`` of ten attributes, the query
string decoded). :class:`LeanMap` also remembers the state of the adapters it bound, for the
last :data:`_MAX_ADAPTERS` distinct requests (host, root path, path, method and query): a
request like an earlier one gets an adapter of its own made from a copy of that state, which
holds the earlier request's match when it was one the cache keeps, so Quart's
``match_request`` answers without building the key. Adapters are never shared: Quart's
``url_for`` sets a scheme on the request's adapter while it builds a URL (a sync view does it
in a thread), and an extension may change its own.

Most requests never use their adapter after matching: only ``url_for`` and automatic OPTIONS
answers read it. :class:`LeanMap` therefore also keeps each match it remembers under what
binding reads (scheme, raw ``Host``, ``SERVER_NAME``, the subdomain Quart passes, path and
method), for the last :data:`_MAX_ADAPTERS` of them: the lean request context
(:mod:`aeros.fastpath.dispatch`) looks a request up there with :meth:`LeanMap.remembered_route`
and, on a hit, sets the request's rule and arguments without binding or matching, binding
the adapter (:func:`late_adapter`) only when something reads it.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any
from uuid import UUID

from quart.routing import QuartMap
from werkzeug.routing import MapAdapter, Rule
from werkzeug.routing.converters import DEFAULT_CONVERTERS

from aeros.headers import get_header

__all__ = ["MATCH_CACHE_SIZE", "LeanMap", "LeanMapAdapter", "Remembered", "Taken", "late_adapter"]

_MAX_HOSTS = 256  # the Host header is the client's: bound what it can make us remember
_MAX_ADAPTERS = 1024  # bound requests remembered: host, root path, path, method and query
_new = object.__new__
MATCH_CACHE_SIZE = 1024
"""Successful matches :class:`LeanMap` remembers; the least recently used goes first."""
Remembered = tuple[Rule, dict[str, Any], tuple[Any, ...]]
"""A match remembered by what bound it: rule, arguments (shared: copy them) and the inputs
(scheme, raw ``Host``, ``SERVER_NAME``, subdomain, path, method)."""
Taken = tuple[Remembered, str, bytes]
"""What a request context keeps of a remembered route it took: the route, and the request's
root path and query string when the context was made (for :func:`late_adapter`)."""

# Converted values shared by every request that hits the cache must not be mutable.
_IMMUTABLE = frozenset({str, int, float, bool, UUID})
# werkzeug's own converters: the same path always converts to the same values
_PURE_CONVERTERS = frozenset(DEFAULT_CONVERTERS.values())


class LeanMapAdapter(MapAdapter):
    """werkzeug's ``MapAdapter``; ``match`` answers a path matched recently from the cache."""

    map: LeanMap
    _aeros_template: dict[str, Any]
    """The remembered state this adapter was bound with (only the first of a request's kind):
    its match is added to it."""
    _aeros_route_key: tuple[Any, ...]
    """What :meth:`LeanMap.remembered_route` looks a request like this adapter's up by (set
    when it was bound for a request of a known host): its match is remembered under it."""

    def match(
        self,
        path_info: str | None = None,
        method: str | None = None,
        return_rule: bool = False,
        query_args: Any = None,
        websocket: bool | None = None,
    ) -> tuple[Any, Any]:
        """As :meth:`werkzeug.routing.MapAdapter.match` (same results and exceptions)."""
        as_bound = (
            path_info is None
            and method is None
            and return_rule
            and query_args is None
            and websocket is None
        )  # Quart's match_request: this adapter's own path and method
        if as_bound:
            last = self.__dict__.get("_aeros_match")
            # matched for an adapter of the same request before, for this path and method (an
            # override of Quart's create_url_adapter may have changed them since)
            if last is not None and last[0] == self.path_info and last[1] == self.default_method:
                self._remember_route(last[2:])
                return last[2], dict(last[3])
        # the inputs of werkzeug's matcher, normalised as MapAdapter.match does
        path = self.path_info if path_info is None else path_info
        key = (
            self.server_name
            if self.map.host_matching or self.subdomain is None
            else self.subdomain,
            f"/{path.lstrip('/')}" if path else "",
            (method or self.default_method).upper(),
            self.websocket if websocket is None else websocket,
        )
        matches = self.map._matches
        known = matches.get(key)
        values: Any
        if known is not None:
            try:  # noqa: SIM105 - contextlib.suppress costs more than the lookup it guards
                matches.move_to_end(key)
            except KeyError:  # dropped by another thread meanwhile: still a valid answer
                pass
            rule, values = known
        else:
            rule, values = super().match(path_info, method, True, query_args, websocket)
            if _IMMUTABLE.issuperset(map(type, values.values())) and _PURE_CONVERTERS.issuperset(
                map(type, rule._converters.values())
            ):
                known = matches[key] = (rule, dict(values))
                if len(matches) > MATCH_CACHE_SIZE:
                    try:  # noqa: SIM105 - as above
                        matches.popitem(last=False)
                    except KeyError:  # another thread emptied it
                        pass
        if known is not None and as_bound:
            # remembered for the next adapter bound to the same request (LeanMap.bind_to_request)
            template = self.__dict__.get("_aeros_template")
            if template is not None:
                template["_aeros_match"] = (self.path_info, self.default_method, *known)
            self._remember_route(known)
        # a fresh dict per request: url_value_preprocessors pop from view_args
        return (rule if return_rule else rule.endpoint), dict(values)

    def _remember_route(self, known: tuple[Rule, dict[str, Any]]) -> None:
        """Remember ``known``, this adapter's own match, by what bound it
        (:meth:`LeanMap.remembered_route`), if it was bound from a request's remembered host
        and still has that request's path and method."""
        key = self.__dict__.get("_aeros_route_key")
        if key is not None and key[4] == self.path_info and key[5] == self.default_method:
            routes = self.map._routes
            if len(routes) >= _MAX_ADAPTERS:
                routes.clear()  # one-off paths filled it: start over
            routes[key] = (known[0], known[1], key)


class LeanMap(QuartMap):
    """Quart's URL map; binding reuses per-host work, matching reuses recent matches."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._matches: OrderedDict[tuple[str, str, str, bool], tuple[Rule, dict[str, Any]]] = (
            OrderedDict()
        )
        self.rules_added = 0
        """How many times :meth:`add` ran: layers that remember what a path matched compare it
        (werkzeug's ``Map._rules`` builds a list of every rule on each access)."""
        super().__init__(*args, **kwargs)
        self._bound_hosts: dict[
            tuple[str, bytes | None, str | None, str | None], tuple[str, str | None]
        ] = {}
        # (host key, root path, path, method, query) -> the state of an adapter bound to it
        self._adapters: dict[tuple[Any, ...], dict[str, Any]] = {}
        # (scheme, raw Host, SERVER_NAME, subdomain, path, method) -> a remembered match
        self._routes: dict[tuple[Any, ...], Remembered] = {}

    def add(self, rulefactory: Any) -> None:
        """As werkzeug's ``Map.add``; forgets remembered matches (the new rule may win)."""
        super().add(rulefactory)
        self.rules_added += 1
        self._matches.clear()
        self._adapters = {}  # their remembered matches may be wrong now
        self._routes = {}

    def bind(self, *args: Any, **kwargs: Any) -> LeanMapAdapter:
        """As werkzeug's ``Map.bind``, returning a :class:`LeanMapAdapter`."""
        adapter = super().bind(*args, **kwargs)
        adapter.__class__ = LeanMapAdapter  # same state, only ``match`` differs
        return adapter  # type: ignore[return-value]

    def remembered_route(self, app: Any, request: Any) -> Remembered | None:
        """The rule and arguments that an adapter bound for a request like ``request`` (same
        scheme, raw ``Host``, path and method) matched, binding as Quart's
        ``app.create_url_adapter`` binds (its subdomain and ``SERVER_NAME``), with what it
        was bound by; None when none is remembered. The arguments are shared: copy them."""
        host = None
        for name, value in request.scope["headers"]:
            if name == b"host":  # get_header written in (a call less a request): the first
                host = value
                break
        query = request.query_string
        if host is None or (query and not query.isascii()):
            return None  # binding decodes the query: Quart's error for one that is not UTF-8
        return self._routes.get(
            (
                request.scheme,
                host,
                app.config["SERVER_NAME"],
                None if app.subdomain_matching else (self.default_subdomain or None),
                request.path,
                request.method,
            )
        )

    def bind_to_request(self, request: Any, subdomain: str | None, server_name: str | None) -> Any:
        """As Quart's: a ``MapAdapter`` for ``request`` (host work cached per host)."""
        # keyed by the raw Host of the scope, not request.host, which would convert every
        # header of the request (werkzeug's get_host reads request.headers)
        scope = getattr(request, "scope", None)
        host = get_header(scope["headers"], b"host") if scope is not None else None
        key = (request.scheme, host, server_name, subdomain)
        known = self._bound_hosts.get(key) if host is not None else None
        if known is None:
            adapter = super().bind_to_request(request, subdomain, server_name)
            # A mismatched server name warns on every request in Quart: never cache that case
            # (nor a request without Host, whose host comes from the config)
            if (
                host is not None
                and adapter.subdomain != "<invalid>"
                and len(self._bound_hosts) < _MAX_HOSTS
            ):
                self._bound_hosts[key] = (adapter.server_name, adapter.subdomain)
            return adapter
        return self._bind_known(
            key, known, request.root_path, request.path, request.method, request.query_string
        )

    def bind_remembered(
        self, route: Remembered, root_path: str, query_string: bytes
    ) -> LeanMapAdapter | None:
        """The adapter :meth:`bind_to_request` gives a request with the inputs ``route`` was
        remembered by (scheme, ``Host``, ``SERVER_NAME``, subdomain, path, method) and this
        root path and query; None if its host is not known here."""
        key = route[2]
        host_key = key[:4]
        known = self._bound_hosts.get(host_key)
        if known is None:
            return None
        return self._bind_known(host_key, known, root_path, key[4], key[5], query_string)

    def _bind_known(
        self,
        key: tuple[Any, ...],
        known: tuple[str, str | None],
        root_path: str,
        path: str,
        method: str,
        query_string: bytes,
    ) -> LeanMapAdapter:
        """An adapter for a request of a known host ``key`` (scheme, ``Host``, server name,
        subdomain) bound to ``known`` (server name, subdomain)."""
        bound = (key, root_path, path, method, query_string)
        adapters = self._adapters
        state = adapters.get(bound)
        if state is not None:  # a request like this one was bound before: a copy of its state
            copy: LeanMapAdapter = _new(LeanMapAdapter)
            copy.__dict__ = state.copy()
            return copy
        fresh = LeanMapAdapter(
            self, known[0], root_path, known[1], key[0], path, method, query_string.decode()
        )
        # what remembered_route looks the request up by, once this adapter has matched
        fresh._aeros_route_key = (*key, path, method)
        if len(adapters) >= _MAX_ADAPTERS:
            adapters.clear()  # one-off paths and queries filled it: start over
        # the copies start from the state before this adapter matched; its match adds itself
        # to that state (LeanMapAdapter.match), so the next copies need not match again
        state = adapters[bound] = fresh.__dict__.copy()
        fresh._aeros_template = state
        return fresh


def late_adapter(app: Any, taken: Taken, request: Any) -> Any:
    """The URL adapter of a request context that took a remembered route instead of binding,
    bound now by what the request was when its context was made (``taken``): the adapter
    Quart would have bound then, whatever a hook changed on the request since. Quart's
    ``create_url_adapter`` of ``request`` if the map cannot (it was replaced)."""
    bind = getattr(app.url_map, "bind_remembered", None)
    adapter = bind(*taken) if bind is not None else None
    return adapter if adapter is not None else app.create_url_adapter(request)
