"""Quart 0.23's one context, skipping signal and teardown work with nothing registered.

From Quart 0.23 on, the request lives in the ``AppContext`` (there is no ``RequestContext``).
Pushing one sends ``appcontext_pushed``, opens the session and matches the URL; popping it runs
the request and app teardown functions, closes the request's files and sends
``appcontext_tearing_down``, ``request_tearing_down`` and ``appcontext_popped``, on every request.
:class:`LeanRequestContext` does the same, in the same order, but skips a teardown table with no
functions and a signal with no receivers. Everything else (the context variable, sessions, URL
matching, copies, the checks that the right context is popped) is Quart's own code.

Imported only on Quart 0.23+ (:mod:`aeros.fastpath._compat`); the internals it uses are checked
there first. Quart 0.22's form is :mod:`aeros.fastpath.ctx_split`.
"""

from __future__ import annotations

from collections.abc import Awaitable
from types import SimpleNamespace
from typing import Any

from quart.ctx import AppContext
from quart.globals import _cv_app
from quart.helpers import _CollectErrors  # type: ignore[attr-defined]
from quart.signals import (
    appcontext_popped,
    appcontext_pushed,
    appcontext_tearing_down,
    request_tearing_down,
)
from quart.wrappers import Request

from aeros.fastpath.later_session import session_of
from aeros.fastpath.route_taking import TakesRoute

__all__ = ["LeanRequestContext", "same_attributes"]

# Checked against Quart 0.22's stubs by mypy, where AppContext has another shape: the 0.23
# members used below are reached through ``Any``.
_AppContext: Any = AppContext

# bound once: CPython (3.11-3.13) compiles ``name.method()`` on a from-imported name as a
# plain attribute load (it takes the name for a module's), unspecialized and a bound method
# made per call
_set_app_ctx = _cv_app.set
_get_app_ctx = _cv_app.get
_reset_app_ctx = _cv_app.reset


_QUART_REQUEST_CLOSE = Request.close


def _has_functions(table: Any) -> bool:
    return bool(table) and any(table.values())  # an empty table (most apps): no scan


class LeanRequestContext(TakesRoute, _AppContext):  # type: ignore[misc]
    """Quart 0.23's ``AppContext`` for one request; idle signals and teardowns are skipped."""

    _cv_token: Any
    _push_count: int
    _REQUEST = "_request"

    def __init__(
        self,
        app: Any,
        *,
        request: Any = None,
        session: Any = None,
        websocket: Any = None,
        route: Any = None,
    ) -> None:
        """As Quart's ``AppContext.__init__``. ``route``: the rule and arguments remembered
        for this request (:meth:`~aeros.fastpath.routing.LeanMap.remembered_route`); then the
        same attributes are set here in one frame (:func:`same_attributes` checks them), the
        URL adapter is bound only when something reads it (``url_for``), and pushing sets the
        rule without matching."""
        if route is None or request is None:
            self._aeros_route = None
            super().__init__(app, request=request, session=session, websocket=websocket)
            return
        self.app = app
        self.g = app.app_ctx_globals_class()
        self._request = request
        self._aeros_session = session  # Quart's _session (the property below)
        self._websocket = None
        self._flashes = None
        self._after_request_functions: list[Any] = []
        self._after_websocket_functions: list[Any] = []
        self._cv_token = None
        self._push_count = 0
        # with the request's root path and query as they are now: the late adapter's
        self._aeros_route = (route, request.root_path, request.query_string)

    @property
    def _session(self) -> Any:
        """The request's session (Quart's ``_session``, read by its ``session``); the lean
        dispatch's null session is made here on first access
        (:mod:`aeros.fastpath.later_session`)."""
        return session_of(self)

    @_session.setter
    def _session(self, value: Any) -> None:
        self._aeros_session = value

    def enter(self) -> Awaitable[None] | None:
        """:meth:`push`, returned for the caller to await; or, when nothing in it waits (no
        ``appcontext_pushed`` receivers, a session given: the lean dispatch's null session, not
        pushed yet), done in place, returning None (awaiting even a done awaitable makes a
        generator).
        """
        if appcontext_pushed.receivers or self._aeros_session is None or self._cv_token is not None:
            return self.push()
        self._push_count += 1
        self._cv_token = _set_app_ctx(self)
        taken = self._aeros_route
        if taken is not None:  # what matching would set, remembered
            route = taken[0]
            request = self._request
            request.url_rule = route[0]
            request.view_args = dict(route[1])  # its own: url_value_preprocessors pop from it
        elif (self._request is not None or self._websocket is not None) and (
            self.url_adapter is not None
        ):
            self.match_request()
        return None

    async def push(self) -> None:
        """Make this the current context, open the session and match the URL (as Quart)."""
        self._push_count += 1
        if self._cv_token is not None:
            return
        self._cv_token = _set_app_ctx(self)
        app = self.app
        if appcontext_pushed.receivers:
            await appcontext_pushed.send_async(app, _async_wrapper=app.ensure_async)
        if self._request is not None or self._websocket is not None:
            if self._session is None:  # the lean dispatch passes a null session it knows
                await self._open_session()
            # a remembered rule: an adapter would have been bound, and is not needed
            if self._aeros_route is not None or self.url_adapter is not None:
                self.match_request()

    def leave(self, exc: BaseException | None) -> Awaitable[None] | None:
        """What ``__aexit__`` awaits (Quart 0.23 pops), returned for the caller to await; or,
        when :meth:`pop` would only reset the context variable (nothing to tear down, no
        file to close, no signal receiver), done in place, returning None: no coroutine and
        no error collector a request (round sixteen)."""
        app = self.app
        request = self._request
        if (
            self._push_count == 1
            and self._cv_token is not None
            and request is not None
            and self._websocket is None
            # _has_functions written in: a call fewer a request
            and not ((teardowns := app.teardown_request_funcs) and any(teardowns.values()))
            and not request_tearing_down.receivers
            and getattr(request, "_files", None) is None
            and getattr(type(request), "close", _QUART_REQUEST_CLOSE) is _QUART_REQUEST_CLOSE
            and not app.teardown_appcontext_funcs
            and not appcontext_tearing_down.receivers
            and not appcontext_popped.receivers
            and _get_app_ctx(None) is self
        ):
            self._push_count = 0
            _reset_app_ctx(self._cv_token)
            self._cv_token = None
            return None
        return self.pop(exc)

    async def pop(self, exc: BaseException | None = None) -> None:
        """Tear down and reset, as Quart's ``AppContext.pop`` (skipping idle steps)."""
        if self._cv_token is None:
            raise RuntimeError(f"Cannot pop this context ({self!r}), it is not pushed.")
        ctx = _get_app_ctx(None)
        if ctx is None:
            raise RuntimeError(f"Cannot pop this context ({self!r}), there is no active context.")
        if ctx is not self:
            raise RuntimeError(
                f"Cannot pop this context ({self!r}), it is not the active context ({ctx!r})."
            )
        self._push_count -= 1
        if self._push_count > 0:
            return

        app = self.app
        collect_errors = _CollectErrors()
        if self._request is not None:
            if _has_functions(app.teardown_request_funcs) or request_tearing_down.receivers:
                with collect_errors:
                    await app.do_teardown_request(self, exc)
            request = self._request
            # Quart's Request.close only closes uploaded files: none, nothing to close
            if getattr(request, "_files", None) is not None or (
                getattr(type(request), "close", _QUART_REQUEST_CLOSE) is not _QUART_REQUEST_CLOSE
            ):
                with collect_errors:
                    await request.close()
        if self._websocket is not None:
            with collect_errors:
                await app.do_teardown_websocket(self, exc)
        if app.teardown_appcontext_funcs or appcontext_tearing_down.receivers:
            with collect_errors:
                await app.do_teardown_appcontext(self, exc)

        _reset_app_ctx(self._cv_token)
        self._cv_token = None

        if appcontext_popped.receivers:
            with collect_errors:
                await appcontext_popped.send_async(app, _async_wrapper=app.ensure_async)
        collect_errors.raise_any("Errors during context teardown")


def same_attributes(app: Any) -> bool:
    """Whether :class:`LeanRequestContext` given a remembered route sets the attributes
    Quart's ``AppContext.__init__`` sets (all but the URL adapter, made on first read)."""
    quarts = set(vars(LeanRequestContext(app)))  # Quart's __init__
    probe = SimpleNamespace(root_path="", query_string=b"")  # what taking a route reads
    ours = set(vars(LeanRequestContext(app, request=probe, route=(None, {}, ()))))
    return quarts - {"url_adapter", "_aeros_route"} == ours - {"_aeros_route"}
