"""Quart's request dispatch, minus the work of features the app does not use.

:meth:`quart.Quart.handle_request` sends four signals, walks the before/after-request hook
tables, opens a session and wraps the view with ``ensure_async`` on every request, whether or
not anything is registered. This does exactly what Quart does, in Quart's order, but skips a
step when it has nothing to run: a signal without receivers, hook tables with no functions, a
session interface that can only give a null session (Quart's cookie sessions without a secret
key), and ``ensure_async`` of a view already wrapped once. It is used only when the app's class
keeps Quart's own dispatch methods; an app that overrides one of them gets Quart's
:meth:`~quart.Quart.handle_request` unchanged.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from quart import Quart
from quart.ctx import RequestContext
from quart.sessions import SecureCookieSessionInterface
from quart.signals import request_finished, request_started

from aeros.fastpath.context import LeanRequestContext

if TYPE_CHECKING:
    from quart.typing import ResponseTypes
    from quart.wrappers import Request

__all__ = ["handle_request", "uses_quart_dispatch"]

_DISPATCH_METHODS = (
    "request_context",
    "app_context",
    "do_teardown_request",
    "do_teardown_appcontext",
    "dispatch_request",
    "ensure_async",
    "handle_request",
    "full_dispatch_request",
    "preprocess_request",
    "finalize_request",
    "process_response",
)
_CHECKED: dict[type, bool] = {}


def uses_quart_dispatch(app: Quart) -> bool:
    """True when ``app``'s class keeps every dispatch method :func:`handle_request` inlines."""
    cls = type(app)
    known = _CHECKED.get(cls)
    if known is None:
        from aeros.app import WebServer  # imported here: the app module imports this one

        known = _CHECKED[cls] = all(
            getattr(cls, name) is getattr(Quart, name)
            # WebServer's own ensure_async only notes sync functions; it is still Quart's
            or (name == "ensure_async" and getattr(cls, name) is WebServer.ensure_async)
            for name in _DISPATCH_METHODS
        )
    return known


def _null_session_only(app: Quart) -> bool:
    """True when opening a session can only give a null one (Quart's cookies, no secret key)."""
    return type(app.session_interface) is SecureCookieSessionInterface and not app.secret_key


def _view(app: Quart, endpoint: str) -> Any:
    """``app.ensure_async(view)``, wrapped once per view function instead of per request."""
    handler = app.view_functions[endpoint]
    views: dict[Any, Any] = app.__dict__.setdefault("_aeros_async_views", {})
    wrapped = views.get(handler)
    if wrapped is None:
        wrapped = views[handler] = app.ensure_async(handler)
    return wrapped


def _has_functions(table: Any) -> bool:
    return any(table.values())


async def handle_request(app: Quart, request: Request) -> ResponseTypes:
    """:meth:`quart.Quart.handle_request`, skipping steps with nothing to run."""
    session = app.session_interface.null_session_class() if _null_session_only(app) else None
    async with LeanRequestContext(app, request, session) as request_context:
        try:
            return await _full_dispatch(app, request_context)
        except asyncio.CancelledError:
            raise  # the serving code handles cancellation, as in Quart
        except Exception as error:
            return await app.handle_exception(error)
        finally:
            if request.scope.get("_quart._preserve_context", False):
                app._preserved_context = request_context.copy()


async def _full_dispatch(app: Quart, ctx: RequestContext) -> ResponseTypes:
    try:
        if request_started.receivers:
            await request_started.send_async(app, _sync_wrapper=app.ensure_async)  # type: ignore[arg-type]
        result: Any = None
        if _has_functions(app.url_value_preprocessors) or _has_functions(app.before_request_funcs):
            result = await app.preprocess_request(ctx)
        if result is None:
            result = await _dispatch(app, ctx)
    except Exception as error:
        result = await app.handle_user_exception(error)
    # finalize_request(result, ctx, from_error_handler=False): errors propagate
    response = await app.make_response(result)
    if (
        ctx._after_request_functions
        or _has_functions(app.after_request_funcs)
        or not app.session_interface.is_null_session(ctx.session)
    ):
        response = await app.process_response(response, ctx)
    if request_finished.receivers:
        await request_finished.send_async(
            app,
            _sync_wrapper=app.ensure_async,  # type: ignore[arg-type]
            response=response,
        )
    return response


async def _dispatch(app: Quart, ctx: RequestContext) -> Any:
    """:meth:`quart.Quart.dispatch_request` with the view's ``ensure_async`` done once."""
    request_ = ctx.request
    if request_.routing_exception is not None:
        app.raise_routing_exception(request_)
    rule: Any = request_.url_rule
    if request_.method == "OPTIONS" and rule.provide_automatic_options:
        return await app.make_default_options_response()
    return await _view(app, rule.endpoint)(**request_.view_args)  # type: ignore[arg-type]
