"""Request-side pieces of the lean path: header conversion and a request that remembers more.

Quart builds werkzeug ``Headers`` one ``add`` at a time (each one re-validates a value the
server has already parsed) and recomputes ``request.blueprints`` in every hook loop (three
times per request). These do the same work once.
"""

from __future__ import annotations

from typing import Any

from quart.wrappers import Request
from werkzeug.datastructures import Headers

__all__ = ["LeanHeaders", "LeanRequest", "scope_headers"]

_TITLES: dict[bytes, str] = {}
_TITLES_MAX = 1024  # header names seen in practice are few; a flood of odd ones stops caching


class LeanHeaders(Headers):
    """werkzeug ``Headers`` whose ``get`` of a missing name does not raise internally.

    werkzeug's ``get`` looks the name up through ``__getitem__``, which raises (and builds) a
    ``BadRequestKeyError`` for every absent header; each request asks for several absent ones
    (``Content-Length`` and ``Transfer-Encoding`` of a GET, to begin with). Same results.
    """

    def get(self, key: Any, default: Any = None, type: Any = None) -> Any:  # type: ignore[override]
        """As :meth:`werkzeug.datastructures.Headers.get`."""
        if not isinstance(key, str):
            return super().get(key, default, type)
        ikey = key.lower()
        for name, value in self._list:
            if name.lower() == ikey:
                if type is None:
                    return value
                try:
                    return type(value)
                except ValueError:
                    return default
        return default


def scope_headers(scope: Any) -> Headers:
    """The scope's headers as Quart presents them: ``Title-Case`` names, latin-1 values.

    ``Remote-Addr`` comes first, from the scope's client, as in Quart.
    """
    items = [("Remote-Addr", (scope.get("client") or ["<local>"])[0])]
    titles = _TITLES
    for name, value in scope["headers"]:
        title = titles.get(name)
        if title is None:
            title = name.decode("latin1").title()
            if len(titles) < _TITLES_MAX:
                titles[name] = title
        items.append((title, value.decode("latin1")))
    headers = LeanHeaders()
    # The server parsed and validated these already; werkzeug's per-item checks would only
    # repeat that. ``_list`` is the storage every Headers method reads.
    headers._list = items
    return headers


class LeanRequest(Request):
    """Quart's request; ``blueprints`` is computed once per matched rule, not per hook loop."""

    @property
    def blueprints(self) -> list[str]:
        """Names of the current blueprint and its parents, innermost first (as in Quart)."""
        rule = self.url_rule
        cached = self.__dict__.get("_aeros_blueprints")
        if cached is not None and cached[0] is rule:
            return list(cached[1])
        names: list[str] = super().blueprints
        self.__dict__["_aeros_blueprints"] = (rule, tuple(names))
        return names
