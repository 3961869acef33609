"""Quart 0.22's request and app contexts, skipping teardown work with nothing registered.

Quart's contexts send ``appcontext_pushed``, ``appcontext_tearing_down``, ``appcontext_popped``
and ``request_tearing_down`` and walk the teardown tables on every request. These subclasses
do the same, in the same order, only when a receiver or a teardown function exists. Everything
else (context variables, sessions, URL matching, preserved contexts, the checks that the right
context is popped) is Quart's own code. Imported only on Quart 0.22, where ``RequestContext``
exists (:mod:`aeros.fastpath._compat`); :mod:`aeros.fastpath.ctx_unified` is the 0.23 form.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable
from typing import Any

from quart.ctx import AppContext, RequestContext, _sentinel
from quart.globals import _cv_app, _cv_request
from quart.signals import (
    appcontext_popped,
    appcontext_pushed,
    appcontext_tearing_down,
    request_tearing_down,
)
from quart.wrappers import Request

from aeros._done import DONE
from aeros.fastpath.later_session import session_of
from aeros.fastpath.route_taking import TakesRoute

__all__ = ["LeanAppContext", "LeanRequestContext", "same_attributes"]

# bound once: a method call on a from-imported name is never specialized (ctx_unified)
_set_app_ctx = _cv_app.set
_get_app_ctx = _cv_app.get
_reset_app_ctx = _cv_app.reset
_set_request_ctx = _cv_request.set
_get_request_ctx = _cv_request.get
_reset_request_ctx = _cv_request.reset


def _has_functions(table: Any) -> bool:
    if isinstance(table, dict):
        return bool(table) and any(table.values())  # an empty table (most apps): no scan
    return bool(table)


class LeanAppContext(AppContext):
    """Quart's app context; signals are sent only when someone listens."""

    async def push(self) -> None:
        """Make this the current app context (``appcontext_pushed`` if it has receivers)."""
        self._cv_tokens.append(_set_app_ctx(self))
        if appcontext_pushed.receivers:
            await appcontext_pushed.send_async(
                self.app,
                _sync_wrapper=self.app.ensure_async,  # type: ignore[arg-type]
            )

    async def pop(self, exc: BaseException | None = _sentinel) -> None:  # type: ignore[assignment]
        """Tear down and reset, as Quart's ``AppContext.pop`` (skipping idle steps)."""
        try:
            if len(self._cv_tokens) == 1 and (
                self.app.teardown_appcontext_funcs or appcontext_tearing_down.receivers
            ):
                if exc is _sentinel:
                    exc = sys.exc_info()[1]
                await self.app.do_teardown_appcontext(exc)
        finally:
            ctx = _get_app_ctx()
            _reset_app_ctx(self._cv_tokens.pop())
            if ctx is not self:
                raise AssertionError(f"Popped wrong app context. ({ctx!r} instead of {self!r})")
        if appcontext_popped.receivers:
            await appcontext_popped.send_async(
                self.app,
                _sync_wrapper=self.app.ensure_async,  # type: ignore[arg-type]
            )


_QUART_REQUEST_CLOSE = Request.close


class LeanRequestContext(TakesRoute, RequestContext):
    """Quart's request context with a lean app context and teardown only when registered."""

    _REQUEST = "request_websocket"

    def __init__(self, app: Any, request: Any, session: Any = None, route: Any = None) -> None:
        """As Quart's ``RequestContext.__init__`` (the same attributes), in one frame.

        ``route``: the rule and arguments remembered for this request
        (:meth:`~aeros.fastpath.routing.LeanMap.remembered_route`); the URL adapter is then
        bound only when something reads it (``url_for``), and pushing sets the rule without
        matching.
        """
        self.app = app
        self.request_websocket = request
        if route is None:
            self._aeros_route = None
            self.url_adapter = app.create_url_adapter(request)
        else:
            # with the request's root path and query as they are now: the late adapter's
            self._aeros_route = (route, request.root_path, request.query_string)
        request.routing_exception = None
        request.json_module = app.json
        self.session = session
        self.preserved = False
        self._cv_tokens: list[tuple[Any, AppContext | None]] = []
        self.flashes = None
        self._after_request_functions: list[Any] = []

    async def _push(self) -> None:
        """Quart's: open the session unless given one, then match; a remembered rule is set
        without binding the URL adapter."""
        if self._aeros_route is None:
            await super()._push()
            return
        if self.session is None:
            interface = self.app.session_interface
            self.session = await self.app.ensure_async(interface.open_session)(
                self.app, self.request_websocket
            )
            if self.session is None:
                self.session = await interface.make_null_session(self.app)
        self.match_request()

    @property
    def session(self) -> Any:
        """The request's session (Quart's attribute); the lean dispatch's null session is made
        here on first access (:mod:`aeros.fastpath.later_session`)."""
        return session_of(self)

    @session.setter
    def session(self, value: Any) -> None:
        self._aeros_session = value

    def enter(self) -> Awaitable[None] | None:
        """:meth:`push`, returned for the caller to await; or, when nothing in it waits (no
        ``appcontext_pushed`` receivers, a session given: the lean dispatch's null session),
        done in place, returning None (awaiting even a done awaitable makes a generator).
        """
        if appcontext_pushed.receivers or self._aeros_session is None:
            return self.push()
        token = _set_request_ctx(self)
        app_ctx = _get_app_ctx(None)
        if app_ctx is None or app_ctx.app is not self.app:
            app_ctx = LeanAppContext(self.app)
            app_ctx._cv_tokens.append(_set_app_ctx(app_ctx))  # its push, with no one to signal
        else:
            app_ctx = None
        self._cv_tokens.append((token, app_ctx))
        taken = self._aeros_route
        if taken is not None:  # what matching would set, remembered
            route = taken[0]
            request: Any = self.request_websocket
            request.url_rule = route[0]
            request.view_args = dict(route[1])  # its own: url_value_preprocessors pop from it
        elif self.url_adapter is not None:
            self.match_request()
        return None

    async def push(self) -> None:
        """As Quart's ``RequestContext.push`` (its ``_push_appctx`` written in), with the lean
        app context."""
        token = _set_request_ctx(self)
        app_ctx = _get_app_ctx(None)
        if app_ctx is None or app_ctx.app is not self.app:
            app_ctx = LeanAppContext(self.app)
            # noted before its push: an appcontext_pushed receiver that raises leaves both
            # variables set, and the pop that follows must reset them (the caller's task
            # goes on to the connection's next request)
            self._cv_tokens.append((token, app_ctx))
            await app_ctx.push()
        else:
            self._cv_tokens.append((token, None))
        await self._push()  # Quart's: opens the session unless given one, then matches

    def leave(self, exc: BaseException | None) -> Awaitable[None] | None:
        """What ``__aexit__`` awaits (Quart's ``auto_pop``), returned for the caller to await;
        or, when :meth:`pop` would only reset the context variables (nothing to tear down,
        no file to close, no signal receiver), done in place, returning None (no coroutine a
        request; round sixteen).

        A context the test client asked to preserve, or one left by an error while the app
        preserves contexts on exceptions, is marked preserved and stays pushed, as in Quart.
        """
        request = self.request_websocket
        if request.scope.get("_quart._preserve_context", False) or (
            exc is not None and self.app.config["PRESERVE_CONTEXT_ON_EXCEPTION"]
        ):
            self.preserved = True
            return DONE
        app = self.app
        tokens = self._cv_tokens
        if (
            len(tokens) == 1
            and not _has_functions(app.teardown_request_funcs)
            and not request_tearing_down.receivers
            and getattr(request, "_files", None) is None
            and getattr(type(request), "close", _QUART_REQUEST_CLOSE) is _QUART_REQUEST_CLOSE
            and (tokens[0][1] is None or _idle_app_pop(app, tokens[0][1]))
        ):
            self._reset()
            return None
        return self.pop(exc)

    def _reset(self) -> None:
        """The end of :meth:`pop`: the request's context variable reset, and its app
        context's when it pushed one whose pop has nothing to do (:func:`_idle_app_pop`)."""
        ctx = _get_request_ctx()
        token, app_ctx = self._cv_tokens.pop()
        _reset_request_ctx(token)
        if app_ctx is not None:
            app_now = _get_app_ctx()
            _reset_app_ctx(app_ctx._cv_tokens.pop())
            if app_now is not app_ctx:
                raise AssertionError(
                    f"Popped wrong app context. ({app_now!r} instead of {app_ctx!r})"
                )
        if ctx is not self:
            raise AssertionError(f"Popped wrong request context. ({ctx!r} instead of {self!r})")

    async def pop(self, exc: BaseException | None = _sentinel) -> None:  # type: ignore[assignment]
        """Tear down and reset, as Quart's ``RequestContext.pop`` (skipping idle steps)."""
        try:
            if len(self._cv_tokens) == 1:
                if exc is _sentinel:
                    exc = sys.exc_info()[1]
                if _has_functions(self.app.teardown_request_funcs) or (
                    request_tearing_down.receivers
                ):
                    await self.app.do_teardown_request(exc, self)
                request = self.request_websocket
                # Quart's Request.close only closes uploaded files: none, nothing to close
                if getattr(request, "_files", None) is not None or (
                    getattr(type(request), "close", _QUART_REQUEST_CLOSE)
                    is not _QUART_REQUEST_CLOSE
                ):
                    request_close = getattr(request, "close", None)
                    if request_close is not None:
                        await request_close()
        finally:
            # an unpushed context: _reset fails as Quart's pop does (LookupError first)
            app_ctx = self._cv_tokens[-1][1] if self._cv_tokens else None
            if app_ctx is None or _idle_app_pop(self.app, app_ctx):
                self._reset()  # LeanAppContext.pop with nothing to do: no coroutine
            else:
                ctx = _get_request_ctx()
                token, _ = self._cv_tokens.pop()
                _reset_request_ctx(token)
                await app_ctx.pop(exc)
                if ctx is not self:
                    raise AssertionError(
                        f"Popped wrong request context. ({ctx!r} instead of {self!r})"
                    )


def _idle_app_pop(app: Any, app_ctx: Any) -> bool:
    """Whether popping ``app_ctx`` (the request's own app context) has nothing to tear down
    or signal: then only its context variable is reset."""
    return (
        len(app_ctx._cv_tokens) == 1
        and not app.teardown_appcontext_funcs
        and not appcontext_tearing_down.receivers
        and not appcontext_popped.receivers
    )


def same_attributes(app: Any) -> bool:
    """Whether :class:`LeanRequestContext` given a remembered route sets the attributes
    Quart's ``RequestContext.__init__`` sets (all but the URL adapter, made on first read;
    the session stored behind its property)."""
    quarts = app.test_request_context("/")  # Quart's context, over a request of its own
    ours = LeanRequestContext(app, quarts.request_websocket, None, route=(None, {}, ()))
    names = {"_aeros_session" if name == "session" else name for name in vars(quarts)}
    return names - {"url_adapter"} == set(vars(ours)) - {"_aeros_route"}
