"""Request-side pieces of the lean path: header conversion and a request that remembers more.

Quart builds werkzeug ``Headers`` one ``add`` at a time (each one re-validates a value the
server has already parsed) and recomputes ``request.blueprints`` in every hook loop (three
times per request). These do the same work once.

Quart's request constructor runs three ``__init__`` methods (Quart's, its base's, werkzeug's)
and makes the body object (two ``asyncio.Event`` or a queue) for every request, though most
views never read the body. :meth:`LeanRequest.complete` sets the same attributes in one step
and makes the body object on first access, already holding the body the connection read. Given
no headers, it builds them (and ``remote_addr``) from the scope on first access too: routing
reads the raw ``Host`` of the scope, so a view that never looks at ``request.headers`` never
pays for converting them (0.6 us for two headers, 1.7 us for a browser's thirteen).
Which attributes Quart's constructor sets is checked once against a request built by Quart
(:func:`complete_requests_match`); when they differ, the connection uses Quart's constructor.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from quart.wrappers import Request
from werkzeug.datastructures import Headers

__all__ = ["LeanHeaders", "LeanRequest", "complete_requests_match", "scope_headers"]

logger = logging.getLogger("aeros.fastpath")

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
    """Quart's request; ``blueprints`` is computed once per matched rule, not per hook loop,
    and a request built by :meth:`complete` makes its body object on first access."""

    _aeros_data: bytes | None = None
    _aeros_max: int | None = None

    @classmethod
    def complete(
        cls,
        method: str,
        scheme: str,
        path: str,
        query_string: bytes,
        headers: Headers | None,
        root_path: str,
        http_version: str,
        scope: Any,
        data: bytes,
        *,
        max_content_length: int | None,
        body_timeout: int | None,
        send_push_promise: Callable[..., Any],
    ) -> LeanRequest:
        """The request Quart's constructor builds, for a body already read in full (``data``)."""
        self = cls.__new__(cls)
        # one dict, given whole (no update of an empty one)
        self.__dict__ = {
            # werkzeug's sansio Request.__init__
            "method": method.upper(),
            "scheme": scheme,
            "server": scope.get("server"),
            "root_path": root_path.rstrip("/"),
            "path": "/" + path.lstrip("/"),
            "query_string": query_string,
            # Quart's BaseRequestWebsocket.__init__
            "http_version": http_version,
            "scope": scope,
            # Quart's Request.__init__ (the body on first access)
            "body_timeout": body_timeout,
            "_aeros_data": data,
            "_aeros_max": max_content_length,
            "_cached_json": {False: Ellipsis, True: Ellipsis},
            "_form": None,
            "_files": None,
            "_send_push_promise": send_push_promise,
        }
        if headers is not None:  # else made from the scope on first access
            self.__dict__["headers"] = headers
            self.__dict__["remote_addr"] = headers.get("Remote-Addr")
        return self

    @property
    def headers(self) -> Headers:
        """The request headers (Quart's ``Headers``), made from the scope on first access
        when :meth:`complete` was given none."""
        headers: Headers | None = self.__dict__.get("headers")
        if headers is None:
            headers = self.__dict__["headers"] = scope_headers(self.scope)
        return headers

    @headers.setter
    def headers(self, value: Headers) -> None:
        self.__dict__["headers"] = value

    @property
    def remote_addr(self) -> str | None:
        """The client's address (the ``Remote-Addr`` Quart puts first in the headers)."""
        known = self.__dict__
        if "remote_addr" not in known:
            known["remote_addr"] = (self.scope.get("client") or ["<local>"])[0]
        address: str | None = known["remote_addr"]
        return address

    @remote_addr.setter
    def remote_addr(self, value: str | None) -> None:
        self.__dict__["remote_addr"] = value

    @property
    def body(self) -> Any:
        """The request body (Quart's ``Body``), made on first access for :meth:`complete`."""
        body = self.__dict__.get("_aeros_body")
        if body is None:
            body = self.__dict__["_aeros_body"] = self.body_class(
                self.content_length, self._aeros_max
            )
            if self._aeros_data is not None:
                body.set_result(self._aeros_data)
        return body

    @body.setter
    def body(self, value: Any) -> None:
        self.__dict__["_aeros_body"] = value

    @property
    def _parsing_lock(self) -> Any:
        """Quart's lock around form parsing, made on first use for :meth:`complete` (most
        requests parse no form)."""
        lock = self.__dict__.get("_parsing_lock")
        if lock is None:
            lock = self.__dict__["_parsing_lock"] = self.lock_class()
        return lock

    @_parsing_lock.setter
    def _parsing_lock(self, value: Any) -> None:
        self.__dict__["_parsing_lock"] = value

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


def complete_requests_match(request_class: Any, args: tuple[Any, ...], kwargs: Any) -> bool:
    """True when :meth:`LeanRequest.complete` sets the attributes Quart's constructor sets.

    Builds one request each way from the same arguments (``request_class(*args, **kwargs)``)
    and compares their attribute names; a Quart release that adds one makes this False, and
    the caller keeps Quart's constructor (logged once). False too for a class with an
    ``__init__`` of its own, which :meth:`LeanRequest.complete` would not run.
    """
    if request_class.__init__ is not LeanRequest.__init__:
        logger.info(
            "%s has an __init__ of its own; using Quart's request constructor",
            request_class.__qualname__,
        )
        return False
    quarts = request_class(*args, **kwargs)
    quarts.body  # noqa: B018 - the body attribute as a lean request stores it
    try:
        lean = request_class.complete(*args, b"", **kwargs)
        lean.body  # noqa: B018 - made on access
        lean._parsing_lock  # noqa: B018 - made on access too
    except Exception as error:  # a subclass that stores these its own way (slots): Quart's
        logger.info(
            "%s cannot be built in one step (%r); using Quart's request constructor",
            request_class.__qualname__,
            error,
        )
        return False
    ours = set(vars(lean)) - {"_aeros_data", "_aeros_max"}
    if set(vars(quarts)) == ours:
        return True
    logger.info(
        "Quart's request constructor sets other attributes (%s); using it",
        ", ".join(sorted(set(vars(quarts)) ^ ours)),
    )
    return False
